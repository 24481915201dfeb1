package groupcommit_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
)

func stream(t *testing.T, name string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	return streamWith(t, name, embedded.Fast)
}

func streamWith(t *testing.T, name string, d embedded.Durability) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	srv := testenv.StartWith(t, "", d)
	_, js := srv.Connect(t)
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage, AllowAtomicPublish: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

// publishAll publishes msgs at once, one writer each, and returns their
// acks and errors.
func publishAll(p *groupcommit.Publisher, msgs []*nats.Msg) ([]*jetstream.PubAck, []error) {
	acks, errs := make([]*jetstream.PubAck, len(msgs)), make([]error, len(msgs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			acks[i], errs[i] = p.PublishMsg(ctx, m)
		})
	}
	close(start)
	wg.Wait()
	return acks, errs
}

// Concurrent writers share batches, and each ack names the sequence where
// that writer's own message is stored.
func TestConcurrentWritersShareBatchesAndEachAckIsItsOwn(t *testing.T) {
	for _, d := range []embedded.Durability{embedded.Fast, embedded.Safe} {
		t.Run(string(d), func(t *testing.T) { concurrentWriters(t, d) })
	}
}

func concurrentWriters(t *testing.T, d embedded.Durability) {
	js, s := streamWith(t, "GC1", d)
	p := groupcommit.New(js, groupcommit.Options{})
	ctx := context.Background()
	for round := 0; p.Stats().Grouped == 0; round++ {
		if round == 50 {
			t.Fatalf("64 concurrent writers never shared a batch in 50 rounds: %+v", p.Stats())
		}
		msgs := make([]*nats.Msg, 64)
		for i := range msgs {
			msgs[i] = nats.NewMsg(fmt.Sprintf("GC1.%d.%d", round, i))
			msgs[i].Data = []byte(fmt.Sprintf("round %d writer %d", round, i))
			msgs[i].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		}
		acks, errs := publishAll(p, msgs)
		for i, m := range msgs {
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			if m.Header.Get("Nats-Batch-Id") != "" {
				t.Fatalf("the caller's message was changed: %v", m.Header)
			}
			stored, err := s.GetMsg(ctx, acks[i].Sequence)
			if err != nil {
				t.Fatalf("writer %d: seq %d: %v", i, acks[i].Sequence, err)
			}
			if stored.Subject != m.Subject || string(stored.Data) != string(m.Data) {
				t.Fatalf("writer %d's ack says seq %d, which holds %s %q", i, acks[i].Sequence, stored.Subject, stored.Data)
			}
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if info.State.Msgs != st.Messages {
		t.Fatalf("the stream holds %d messages, the publisher acked %d", info.State.Msgs, st.Messages)
	}
	t.Logf("%+v", st)
}

// A batch one message of which fails its expectation stores nothing; each
// message then goes alone, so the others are stored and the stale one gets
// the server's own refusal.
func TestARefusedBatchGivesEachWriterItsOwnAnswer(t *testing.T) {
	js, s := stream(t, "GC2")
	p := groupcommit.New(js, groupcommit.Options{})
	ctx := context.Background()
	for round := 0; p.Stats().Refused == 0; round++ {
		if round == 50 {
			t.Fatalf("no batch was refused in 50 rounds: %+v", p.Stats())
		}
		msgs := make([]*nats.Msg, 32)
		for i := range msgs {
			msgs[i] = nats.NewMsg(fmt.Sprintf("GC2.%d.%d", round, i))
			msgs[i].Data = []byte("x")
			msgs[i].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		}
		msgs[7].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "1") // nothing is there yet
		acks, errs := publishAll(p, msgs)
		for i := range msgs {
			if i == 7 {
				var apiErr *jetstream.APIError
				if !errors.As(errs[i], &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
					t.Fatalf("the stale writer got %v, want the server's wrong-last-sequence", errs[i])
				}
				if _, err := s.GetLastMsgForSubject(ctx, msgs[i].Subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
					t.Fatalf("the stale message was stored: %v", err)
				}
				continue
			}
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			stored, err := s.GetMsg(ctx, acks[i].Sequence)
			if err != nil || stored.Subject != msgs[i].Subject {
				t.Fatalf("writer %d: seq %d: %v %v", i, acks[i].Sequence, stored, err)
			}
		}
	}
}

// A message ID seen before is a duplicate, grouped or not.
func TestADuplicateMessageIDIsAckedAsADuplicate(t *testing.T) {
	js, _ := stream(t, "GC3")
	p := groupcommit.New(js, groupcommit.Options{})
	first := nats.NewMsg("GC3.a")
	first.Header.Set(jetstream.MsgIDHeader, "m-1")
	ack, err := p.PublishMsg(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]*nats.Msg, 16)
	for i := range msgs {
		msgs[i] = nats.NewMsg("GC3.b." + strconv.Itoa(i))
		msgs[i].Header.Set(jetstream.MsgIDHeader, "n-"+strconv.Itoa(i))
	}
	msgs[3] = first
	acks, errs := publishAll(p, msgs)
	for i := range msgs {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
	}
	if !acks[3].Duplicate || acks[3].Sequence != ack.Sequence {
		t.Fatalf("the repeat got %+v, want a duplicate of seq %d", acks[3], ack.Sequence)
	}
}

// A writer whose context has ended gets its error and nothing is stored.
func TestAnEndedContextStoresNothing(t *testing.T) {
	js, s := stream(t, "GC4")
	p := groupcommit.New(js, groupcommit.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.PublishMsg(ctx, nats.NewMsg("GC4.a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := p.PublishMsg(context.Background(), nats.NewMsg("GC4.a"), jetstream.WithMsgID("x")); !errors.Is(err, groupcommit.ErrOptions) {
		t.Fatalf("publish options: got %v, want ErrOptions", err)
	}
	info, err := s.Info(context.Background())
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("stream state %+v, %v; want nothing stored", info.State, err)
	}
}

// A KV bucket through a Publisher keeps the bucket's answers: one of many
// concurrent creates of a key wins, a stale update is ErrKeyExists, and a
// deleted key can be created again.
func TestKeyValueKeepsTheBucketsAnswers(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	raw, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "gckv", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if err := groupcommit.Allow(ctx, js, "KV_gckv"); err != nil {
		t.Fatal(err)
	}
	p := groupcommit.New(js, groupcommit.Options{})
	kv := groupcommit.NewKeyValue(raw, p)

	var wg sync.WaitGroup
	var mu sync.Mutex
	won, exists := 0, 0
	for i := range 24 {
		wg.Go(func() {
			_, err := kv.Create(ctx, "k"+strconv.Itoa(i%3), []byte(strconv.Itoa(i)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, jetstream.ErrKeyExists):
				exists++
			default:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 3 || exists != 21 {
		t.Fatalf("24 creates of 3 keys: %d won, %d found the key, want 3 and 21", won, exists)
	}
	// The writes went through the Publisher, not around it.
	if st := kv.Stats(); st.Messages != 3 {
		t.Fatalf("the Publisher stored %d messages, want the 3 winning creates (%+v)", st.Messages, st)
	}
	e, err := raw.Get(ctx, "k0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "k0", []byte("stale"), e.Revision()-1); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("a stale update got %v, want ErrKeyExists", err)
	}
	rev, err := kv.Update(ctx, "k0", []byte("next"), e.Revision())
	if err != nil {
		t.Fatal(err)
	}
	if st := kv.Stats(); st.Messages != 4 {
		t.Fatalf("the update did not go through the Publisher: %d messages stored, want 4", st.Messages)
	}
	if got, err := raw.Get(ctx, "k0"); err != nil || got.Revision() != rev || string(got.Value()) != "next" {
		t.Fatalf("after the update: %v %v, want revision %d holding next", got, err, rev)
	}
	if err := raw.Delete(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k1", []byte("again")); err != nil {
		t.Fatalf("creating a deleted key: %v", err)
	}
	if _, err := kv.Create(ctx, "bad..key", nil); !errors.Is(err, jetstream.ErrInvalidKey) {
		t.Fatalf("an invalid key got %v, want ErrInvalidKey", err)
	}
}

// A commit acknowledged without the batch's ID and count leaves each writer
// not knowing whether its message is stored: each gets an error matching
// transient.ErrUnavailable, so it retries and checks, as after a lost ack
// (orbit's PublishMsgBatch reports such an ack as ErrInvalidBatchAck).
// The embedded nats-server 2.15.2 never sends such an ack, so a core NATS
// responder on the real server stands in for a JetStream that acknowledges
// every message of a batch as a plain publish (one that ignores
// allow_atomic, as servers before 2.12 do): it stored the messages.
func TestAnAckThatDoesNotAccountForTheBatchIsUnavailable(t *testing.T) {
	srv := testenv.Start(t, "")
	nc, js := srv.Connect(t)
	sub, err := nc.Subscribe("GC5.>", func(m *nats.Msg) {
		_ = m.Respond([]byte(`{"stream":"GC5","seq":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	p := groupcommit.New(js, groupcommit.Options{Timeout: 2 * time.Second})
	for round := 0; ; round++ {
		if round == 50 {
			t.Fatalf("64 concurrent writers never shared a batch in 50 rounds: %+v", p.Stats())
		}
		msgs := make([]*nats.Msg, 64)
		for i := range msgs {
			msgs[i] = nats.NewMsg(fmt.Sprintf("GC5.%d.%d", round, i))
		}
		_, errs := publishAll(p, msgs)
		batched, wrong := 0, 0
		var first error
		for _, err := range errs {
			if err == nil {
				continue // published alone: a plain ack
			}
			batched++
			if !errors.Is(err, transient.ErrUnavailable) {
				wrong++
				first = cmp.Or(first, err)
			}
		}
		if wrong > 0 {
			t.Fatalf("%d of %d writers whose messages the server took got an error that is not transient (%v), so they neither retry nor check", wrong, batched, first)
		}
		if batched > 0 {
			return
		}
	}
}

// A stream whose atomic publish is turned off (a bucket reopened by
// create-or-update) refuses a batch; the Publisher then publishes message
// by message for its pause, and groups again once the stream allows it.
func TestAPublisherGroupsAgainOnceTheStreamAllowsIt(t *testing.T) {
	js, s := stream(t, "GC6")
	ctx := context.Background()
	cfg := s.CachedInfo().Config
	cfg.AllowAtomicPublish = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := groupcommit.New(js, groupcommit.Options{Pause: 200 * time.Millisecond})
	round := 0
	publish := func() {
		msgs := make([]*nats.Msg, 32)
		for i := range msgs {
			msgs[i] = nats.NewMsg(fmt.Sprintf("GC6.%d.%d", round, i))
		}
		round++
		_, errs := publishAll(p, msgs)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, writer %d: %v", round, i, err)
			}
		}
	}
	for p.Stats().Refused == 0 {
		if round == 50 {
			t.Fatalf("no batch met the refusal in 50 rounds: %+v", p.Stats())
		}
		publish()
	}
	if err := groupcommit.Allow(ctx, js, "GC6"); err != nil {
		t.Fatal(err)
	}
	before := p.Stats().Batches
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Batches == before {
		if time.Now().After(deadline) {
			t.Fatalf("no batch 10 s after the stream allowed atomic publish again: %+v", p.Stats())
		}
		publish()
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != p.Stats().Messages {
		t.Fatalf("the stream holds %v messages (%v), the publisher acked %d", info.State.Msgs, err, p.Stats().Messages)
	}
}

// A message over the payload limit fails alone: the writers that would
// have shared its batch are stored.
func TestAnOversizedMessageFailsAlone(t *testing.T) {
	js, _ := stream(t, "GC7")
	p := groupcommit.New(js, groupcommit.Options{})
	for round := 0; p.Stats().Batches == 0; round++ {
		if round == 50 {
			t.Fatalf("no batch in 50 rounds: %+v", p.Stats())
		}
		msgs := make([]*nats.Msg, 32)
		for i := range msgs {
			msgs[i] = nats.NewMsg(fmt.Sprintf("GC7.%d.%d", round, i))
		}
		msgs[5].Data = make([]byte, 2<<20)
		_, errs := publishAll(p, msgs)
		for i, err := range errs {
			switch {
			case i == 5 && !errors.Is(err, nats.ErrMaxPayload):
				t.Fatalf("the oversized message got %v, want nats.ErrMaxPayload", err)
			case i != 5 && err != nil:
				t.Fatalf("writer %d, beside an oversized message: %v", i, err)
			}
		}
	}
}
