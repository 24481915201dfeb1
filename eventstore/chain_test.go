package eventstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
)

// rawMessages reads every message of the stream with direct gets.
func rawMessages(t *testing.T, js jetstream.JetStream, stream string) []eventstore.RawMessage {
	t.Helper()
	var out []eventstore.RawMessage
	if _, err := eventstore.ReadDirect(context.Background(), js, stream, 5*time.Second, func(m eventstore.RawMessage) error {
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAppendChainsToTheStoredBytes: on JetStream, every appended commit's
// PrevHash is the SHA-256 of the stored data of the message at its PrevSeq,
// read back from the stream, whether the Store appended or read that
// message itself (cached) or not (another Store, a cache miss).
func TestAppendChainsToTheStoredBytes(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	s := open(t, js, eventstore.Config{})
	a := eventstore.Ref{Type: "order", ID: "a"}
	b := eventstore.Ref{Type: "wallet", ID: "b"}
	var last eventstore.Commit
	for i := range 3 {
		for _, ref := range []eventstore.Ref{a, b} {
			c, err := storetest.AppendOne(ctx, s, ref, fmt.Sprintf("%s-%d", ref, i), storetest.Event("t", i))
			if err != nil {
				t.Fatal(err)
			}
			last = c
		}
	}
	// A Store that never saw the last commit appends on top of it.
	fresh := open(t, js, eventstore.Config{})
	c, err := fresh.Append(ctx, b, last.Seq, 3, "b-fresh", []eventstore.Envelope{storetest.Event("t", 9)})
	if err != nil {
		t.Fatal(err)
	}
	if c.PrevHash == "" || c.PrevSeq != last.Seq {
		t.Fatalf("fresh store's commit: prev seq %d, prev hash %q", c.PrevSeq, c.PrevHash)
	}

	msgs := rawMessages(t, js, s.Config().Stream)
	if len(msgs) != 7 {
		t.Fatalf("%d messages, want 7", len(msgs))
	}
	for _, m := range msgs {
		var body struct {
			Format   int            `json:"format"`
			PrevSeq  eventstore.Seq `json:"prev_seq"`
			PrevHash string         `json:"prev_hash"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatal(err)
		}
		if body.Format != 2 {
			t.Fatalf("seq %d: format %d, want 2", m.Seq, body.Format)
		}
		want := ""
		if body.PrevSeq != 0 {
			want = eventstore.HashOf(msgs[body.PrevSeq-1].Data).String()
		}
		if body.PrevHash != want {
			t.Fatalf("seq %d: prev_hash %q, want %q (sha-256 of seq %d as stored)", m.Seq, body.PrevHash, want, body.PrevSeq)
		}
		if m.Seq == c.Seq && eventstore.HashOf(m.Data) != c.Hash {
			t.Fatalf("Append returned hash %s, the stored bytes hash to %s", c.Hash, eventstore.HashOf(m.Data))
		}
	}
}

// TestFormat1CommitsAreReadUnchained: a format 1 commit (no prev_hash) is
// loaded, a format 2 commit appended on top chains to its stored bytes,
// and VerifyChain reports it as unchained, not broken.
func TestFormat1CommitsAreReadUnchained(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	s := open(t, js, eventstore.Config{})
	ref := eventstore.Ref{Type: "order", ID: "old"}
	old := `{"format":1,"commit_id":"c1","aggregate_type":"order","aggregate_id":"old","prev_seq":0,"events":[{"event_id":"e1","aggregate_type":"order","aggregate_id":"old","aggregate_version":1,"event_type":"t","schema_version":1,"occurred_at":"2026-01-01T00:00:00Z","recorded_at":"2026-01-01T00:00:00Z","data":{}}]}`
	ack, err := js.Publish(ctx, s.Subject(ref), []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.AppendOne(ctx, s, ref, "c2", storetest.Event("t", 2)); err != nil {
		t.Fatal(err)
	}
	commits, err := s.Load(ctx, ref, 0)
	if err != nil || len(commits) != 2 {
		t.Fatalf("load: %d commits, %v", len(commits), err)
	}
	if commits[0].Format != 1 || commits[0].Chained() || commits[1].Format != 2 {
		t.Fatalf("formats %d, %d", commits[0].Format, commits[1].Format)
	}
	if want := eventstore.HashOf([]byte(old)).String(); commits[1].PrevHash != want {
		t.Fatalf("prev hash %q, want %q", commits[1].PrevHash, want)
	}
	if breaks := eventstore.VerifyChain(commits); len(breaks) != 0 {
		t.Fatalf("breaks in an intact chain: %v", breaks)
	}
	if u := eventstore.Unchained(commits); len(u) != 1 || u[0] != eventstore.Seq(ack.Sequence) {
		t.Fatalf("unchained = %v, want [%d]", u, ack.Sequence)
	}
}

func TestParseCommitRefusesMalformedLinks(t *testing.T) {
	h := eventstore.HashOf([]byte("x")).String()
	ev := `"events":[{"event_id":"e","event_type":"t","schema_version":1,"data":{}}]`
	for _, c := range []struct{ name, body string }{
		{"format 3", `{"format":3,"commit_id":"c","prev_seq":0,` + ev + `}`},
		{"format 1 with a prev hash", `{"format":1,"commit_id":"c","prev_seq":1,"prev_hash":"` + h + `",` + ev + `}`},
		{"format 2 without a prev hash", `{"format":2,"commit_id":"c","prev_seq":1,` + ev + `}`},
		{"format 2 first commit with a prev hash", `{"format":2,"commit_id":"c","prev_seq":0,"prev_hash":"` + h + `",` + ev + `}`},
		{"upper-case prev hash", `{"format":2,"commit_id":"c","prev_seq":1,"prev_hash":"` + string(bytes.ToUpper([]byte(h))) + `",` + ev + `}`},
		{"short prev hash", `{"format":2,"commit_id":"c","prev_seq":1,"prev_hash":"abc",` + ev + `}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := eventstore.ParseCommit([]byte(c.body), 5); !errors.Is(err, eventstore.ErrCorrupt) {
				t.Fatalf("parse: %v, want ErrCorrupt", err)
			}
		})
	}
	body := []byte(`{"format":2,"commit_id":"c","prev_seq":1,"prev_hash":"` + h + `",` + ev + `}`)
	c, err := eventstore.ParseCommit(body, 5)
	if err != nil || c.Seq != 5 || c.Hash != eventstore.HashOf(body) || c.PrevHash != h {
		t.Fatalf("parse: %+v, %v", c, err)
	}
}

// chainFixture appends four commits of one aggregate, interleaved with
// another's, and returns the stream's messages as stored.
func chainFixture(t *testing.T) (jetstream.JetStream, *eventstore.Store, []eventstore.RawMessage) {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	s := open(t, js, eventstore.Config{})
	for i := range 4 {
		for _, ref := range []eventstore.Ref{{Type: "order", ID: "a"}, {Type: "order", ID: "z"}} {
			if _, err := storetest.AppendOne(ctx, s, ref, fmt.Sprintf("%s-%d", ref, i), storetest.Event("t", map[string]int{"amount": 1000 + i})); err != nil {
				t.Fatal(err)
			}
		}
	}
	return js, s, rawMessages(t, js, s.Config().Stream)
}

// aggregate parses the messages of order/a among msgs, in order.
func aggregate(t *testing.T, msgs []eventstore.RawMessage) []eventstore.Commit {
	t.Helper()
	var out []eventstore.Commit
	for _, m := range msgs {
		if m.Subject != "bankbook.evt.order.a" {
			continue
		}
		c, err := eventstore.ParseCommit(m.Data, m.Seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestVerifyChainNamesEachTampering: order/a's commits are at seqs 1, 3, 5
// and 7. An edited payload, a removed commit and two reordered commits are
// each found, at the sequence whose link they break.
func TestVerifyChainNamesEachTampering(t *testing.T) {
	_, _, msgs := chainFixture(t)
	if breaks := eventstore.VerifyChain(aggregate(t, msgs)); len(breaks) != 0 {
		t.Fatalf("intact chain: %v", breaks)
	}
	clone := func() []eventstore.RawMessage {
		out := make([]eventstore.RawMessage, len(msgs))
		for i, m := range msgs {
			m.Data = bytes.Clone(m.Data)
			out[i] = m
		}
		return out
	}
	type want struct {
		seq  eventstore.Seq
		kind eventstore.BreakKind
	}
	for _, c := range []struct {
		name   string
		tamper func([]eventstore.RawMessage) []eventstore.RawMessage
		want   []want
	}{
		{"edited payload", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			m[2].Data = bytes.Replace(m[2].Data, []byte(`"amount":1001`), []byte(`"amount":9001`), 1)
			return m
		}, []want{{5, eventstore.BreakPrevHash}}},
		{"removed commit", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			return append(m[:2:2], m[3:]...) // seq 3 gone, the others keep their sequences
		}, []want{{5, eventstore.BreakPrevSeq}}},
		{"removed first commit", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			return m[1:]
		}, []want{{3, eventstore.BreakPrevSeq}}},
		{"two reordered commits", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			// Seq 3 holds the commit of seq 5 and back; seq 7 still chains
			// to the bytes seq 5 held.
			m[2].Data, m[4].Data = m[4].Data, m[2].Data
			return m
		}, []want{{3, eventstore.BreakPrevSeq}, {5, eventstore.BreakPrevSeq}, {7, eventstore.BreakPrevHash}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			breaks := eventstore.VerifyChain(aggregate(t, c.tamper(clone())))
			var got []want
			for _, b := range breaks {
				got = append(got, want{b.Seq, b.Kind})
				if b.String() == "" || b.Ref != (eventstore.Ref{Type: "order", ID: "a"}) {
					t.Fatalf("break %+v", b)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("breaks %v, want %v", breaks, c.want)
			}
			t.Log(breaks)
		})
	}
}

// copyStream publishes msgs, in order, to a new stream name holding
// subjects copy.>: a copy of the event stream to tamper with.
func copyStream(t *testing.T, js jetstream.JetStream, name string, msgs []eventstore.RawMessage) *eventstore.Reader {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		msg := nats.NewMsg(name + "." + m.Subject)
		msg.Data = m.Data
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	return eventstore.NewReader(js, eventstore.Config{Stream: name})
}

// TestDigestDetectsAChangedByteAndATruncatedTail: a copy of the stream
// digests as the stream does; changing one byte of one message changes
// the digest at every later sequence; a copy without its last message has
// no digest at the original's last sequence, and its digest at its own
// last sequence differs from the original's at the original's.
func TestDigestDetectsAChangedByteAndATruncatedTail(t *testing.T) {
	js, s, msgs := chainFixture(t)
	ctx := context.Background()
	digest := func(r *eventstore.Reader, at eventstore.Seq) eventstore.DigestResult {
		t.Helper()
		d, err := eventstore.Digest(ctx, r, at)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	orig := digest(s.Reader(), 0)
	if orig.Seq != 8 || orig.Commits != 8 || len(orig.Digest) != 64 {
		t.Fatalf("digest %+v", orig)
	}
	if at5 := digest(s.Reader(), 5); at5.Seq != 5 || at5.Commits != 5 || at5.Digest == orig.Digest {
		t.Fatalf("digest at 5 %+v, at 8 %+v", at5, orig)
	}
	same := copyStream(t, js, "SAME", msgs)
	if d := digest(same, 0); d != orig {
		t.Fatalf("an exact copy digests to %+v, the stream to %+v", d, orig)
	}

	edited := make([]eventstore.RawMessage, len(msgs))
	copy(edited, msgs)
	edited[3].Data = bytes.Replace(bytes.Clone(msgs[3].Data), []byte(`"amount":1001`), []byte(`"amount":1002`), 1)
	if bytes.Equal(edited[3].Data, msgs[3].Data) {
		t.Fatal("sanity: nothing edited")
	}
	ed := copyStream(t, js, "EDITED", edited)
	if d := digest(ed, 3); d != digest(s.Reader(), 3) {
		t.Fatalf("digest before the edit differs: %+v", d)
	}
	for _, at := range []eventstore.Seq{4, 8} {
		if d := digest(ed, at); d.Digest == digest(s.Reader(), at).Digest {
			t.Fatalf("digest at %d unchanged by an edit at seq 4", at)
		}
	}

	tr := copyStream(t, js, "TRUNCATED", msgs[:7])
	if _, err := eventstore.Digest(ctx, tr, 8); !errors.Is(err, eventstore.ErrNoMessage) {
		t.Fatalf("digest of a truncated stream at 8: %v, want ErrNoMessage", err)
	}
	if d := digest(tr, 0); d.Seq != 7 || d.Digest == orig.Digest || d != digest(s.Reader(), 7) {
		t.Fatalf("truncated: %+v", d)
	}

	empty := copyStream(t, js, "EMPTY", nil)
	if d := digest(empty, 0); d.Seq != 0 || d.Commits != 0 || d.Digest != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty: %+v", d)
	}
}

// TestDigestIsDocumented pins the digest's definition: SHA-256 over, per
// message, its sequence (8 bytes big-endian) and the SHA-256 of its data.
func TestDigestIsDocumented(t *testing.T) {
	js, s, msgs := chainFixture(t)
	_ = js
	var buf bytes.Buffer
	for _, m := range msgs[:3] {
		var seq [8]byte
		for i := range 8 {
			seq[7-i] = byte(uint64(m.Seq) >> (8 * i))
		}
		h := eventstore.HashOf(m.Data)
		buf.Write(seq[:])
		buf.Write(h[:])
	}
	d, err := eventstore.Digest(context.Background(), s.Reader(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := eventstore.HashOf(buf.Bytes()).String(); d.Digest != want {
		t.Fatalf("digest %s, want %s", d.Digest, want)
	}
}
