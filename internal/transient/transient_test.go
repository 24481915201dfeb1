package transient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

// observed is an error a real server (or the client, talking to one) gave,
// and whether it is transient.
type observed struct {
	name string
	err  error
	want bool
}

func checkObserved(t *testing.T, cases []observed) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("the server gave no error")
			}
			t.Logf("%T: %v", c.err, c.err)
			if got := Is(c.err); got != c.want {
				t.Fatalf("Is(%T %v) = %v, want %v", c.err, c.err, got, c.want)
			}
			// Wrapping (as every caller does) changes nothing.
			if got := Is(fmt.Errorf("load order/x: %w", c.err)); got != c.want {
				t.Fatalf("Is(wrapped %v) = %v, want %v", c.err, got, c.want)
			}
			if marked := Mark(c.err); errors.Is(marked, ErrUnavailable) != c.want || !errors.Is(marked, c.err) {
				t.Fatalf("Mark(%v) = %v: matches ErrUnavailable %v (want %v), keeps the cause %v",
					c.err, marked, errors.Is(marked, ErrUnavailable), c.want, errors.Is(marked, c.err))
			}
		})
	}
}

// TestIsOnASingleServer classifies the errors a real embedded server and
// its client give: refusals that a retry cannot change, and failures to
// answer (nobody listening, no answer in time, the server gone, the
// connection closed).
func TestIsOnASingleServer(t *testing.T) {
	srv := testenv.Start(t, "")
	nc, js := srv.Connect(t)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "transient_test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	silent, err := nc.SubscribeSync("silent.service") // subscribed, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	within := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return c
	}
	errOf := func(_ any, err error) error { return err }

	var cases []observed
	add := func(name string, err error, want bool) { cases = append(cases, observed{name, err, want}) }
	add("stream not found", errOf(js.Stream(ctx, "NO_SUCH_STREAM")), false)
	add("message not found", errOf(stream.GetMsg(ctx, 99)), false)
	add("key not found", errOf(kv.Get(ctx, "absent")), false)
	add("key exists", errOf(kv.Create(ctx, "k", []byte("w"))), false)
	add("wrong last sequence", errOf(js.Publish(ctx, "t.a", nil, jetstream.WithExpectLastSequencePerSubject(7))), false)
	add("caller cancelled", errOf(func() (any, error) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		return kv.Get(c, "k")
	}()), false)
	add("no responders", errOf(nc.Request("nobody.home", nil, time.Second)), true)
	add("no response from stream", errOf(js.Publish(within(5*time.Second), "not.in.any.stream", nil)), true)
	add("request timeout", errOf(nc.Request("silent.service", nil, 20*time.Millisecond)), true)
	add("attempt deadline", errOf(nc.RequestWithContext(within(20*time.Millisecond), "silent.service", nil)), true)

	srv.Shutdown()
	add("server shut down: publish", errOf(js.Publish(within(100*time.Millisecond), "t.a", nil)), true)
	add("server shut down: kv get", errOf(kv.Get(within(100*time.Millisecond), "k")), true)
	add("server shut down: stream info", errOf(stream.Info(within(100*time.Millisecond))), true)
	nc.Close()
	closed := errOf(kv.Get(ctx, "k"))
	add("connection closed", closed, true)
	checkObserved(t, cases)

	if !errors.Is(closed, nats.ErrConnectionClosed) || Retryable(closed) {
		t.Errorf("a closed connection (%v) is transient but not worth retrying: Retryable = %v", closed, Retryable(closed))
	}
}

// TestIsOnACluster classifies what a JetStream cluster that lost its
// quorum gives: no answer from the stream, and no peers to place a stream
// on (or no answer at all, depending on how far the survivor has noticed).
func TestIsOnACluster(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	survivor := c.Names()[0]
	nc, err := nats.Connect(c.NodeURL(survivor))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "r3.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, name := range c.Names()[1:] {
		c.Shutdown(name)
	}
	attempt := func() context.Context {
		a, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		t.Cleanup(cancel)
		return a
	}
	_, pubErr := js.Publish(attempt(), "r3.a", []byte("y"))
	_, createErr := js.CreateStream(attempt(), jetstream.StreamConfig{Name: "NEW", Subjects: []string{"new.>"}, Replicas: 3})
	checkObserved(t, []observed{
		{"publish without quorum", pubErr, true},
		{"create a stream without peers", createErr, true},
	})
}

// TestIsOnTheServersErrorTable checks every JetStream API error code the
// package treats as transient, and some it must not, against nats-server's
// own table of API errors, decoded the way the client decodes an answer.
func TestIsOnTheServersErrorTable(t *testing.T) {
	cases := []struct {
		id   server.ErrorIdentifier
		name string
		want bool
	}{
		{server.JSClusterIncompleteErr, "JSClusterIncompleteErr", true},
		{server.JSClusterNoPeersErrF, "JSClusterNoPeersErrF", true},
		{server.JSClusterNotAssignedErr, "JSClusterNotAssignedErr", true},
		{server.JSClusterNotAvailErr, "JSClusterNotAvailErr", true},
		{server.JSClusterNotLeaderErr, "JSClusterNotLeaderErr", true},
		{server.JSNotEnabledForAccountErr, "JSNotEnabledForAccountErr", true},
		{server.JSNotEnabledErr, "JSNotEnabledErr", true},
		{server.JSStreamOfflineErr, "JSStreamOfflineErr", true},
		{server.JSConsumerOfflineErr, "JSConsumerOfflineErr", true},
		{server.JSStreamDuplicateMessageConflict, "JSStreamDuplicateMessageConflict", true},
		{server.JSStreamExpectedLastSeqPerSubjectNotReady, "JSStreamExpectedLastSeqPerSubjectNotReady", true},
		{server.JSStreamOfflineReasonErrF, "JSStreamOfflineReasonErrF", true},
		{server.JSConsumerOfflineReasonErrF, "JSConsumerOfflineReasonErrF", true},

		{server.JSStreamWrongLastSequenceErrF, "JSStreamWrongLastSequenceErrF", false},
		{server.JSStreamWrongLastSequenceConstantErr, "JSStreamWrongLastSequenceConstantErr", false},
		{server.JSStreamNotFoundErr, "JSStreamNotFoundErr", false},
		{server.JSNoMessageFoundErr, "JSNoMessageFoundErr", false},
		{server.JSBadRequestErr, "JSBadRequestErr", false},
		{server.JSStreamMessageExceedsMaximumErr, "JSStreamMessageExceedsMaximumErr", false},
		{server.JSStreamStoreFailedF, "JSStreamStoreFailedF", false},
	}
	listed := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se, ok := server.ApiErrors[c.id]
			if !ok {
				t.Fatalf("nats-server has no %s", c.name)
			}
			raw, err := json.Marshal(struct {
				Error *server.ApiError `json:"error"`
			}{se})
			if err != nil {
				t.Fatal(err)
			}
			var answer struct {
				Error *jetstream.APIError `json:"error"`
			}
			if err := json.Unmarshal(raw, &answer); err != nil {
				t.Fatal(err)
			}
			err = fmt.Errorf("nats: %w", answer.Error) // as jetstream wraps a publish's error
			if got := Is(err); got != c.want {
				t.Fatalf("Is(%v) = %v, want %v", err, got, c.want)
			}
			if name, ok := transientCodes[answer.Error.ErrorCode]; ok && !strings.HasPrefix(name, c.name+":") {
				t.Fatalf("code %d is listed as %q, nats-server calls it %s", answer.Error.ErrorCode, name, c.name)
			}
		})
		if c.want {
			listed++
		}
	}
	if listed != len(transientCodes) {
		t.Fatalf("%d transient codes are checked against the server's table, %d are listed", listed, len(transientCodes))
	}
}

func TestSentinelAndMark(t *testing.T) {
	own := Sentinel("store: unavailable")
	wrapped := fmt.Errorf("append x: %w: %w", own, context.DeadlineExceeded)
	if !errors.Is(wrapped, own) || !errors.Is(wrapped, ErrUnavailable) || !Is(wrapped) {
		t.Fatalf("%v must match its sentinel and ErrUnavailable", wrapped)
	}
	if Mark(wrapped) != wrapped {
		t.Fatal("Mark wrapped an error that already matches ErrUnavailable")
	}
	if Mark(nil) != nil {
		t.Fatal("Mark(nil) is not nil")
	}
	plain := errors.New("refused")
	if Mark(plain) != plain || Is(plain) || Is(nil) {
		t.Fatal("a permanent error was marked transient")
	}
}

func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"defaults", Policy{}, true},
		{"attempt within budget", Policy{AttemptTimeout: time.Second, Budget: 3 * time.Second}, true},
		{"attempt longer than the budget", Policy{AttemptTimeout: 4 * time.Second, Budget: 3 * time.Second}, false},
		{"attempt too short", Policy{AttemptTimeout: time.Millisecond}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.p.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", c.p, err, c.ok)
			}
		})
	}
}

// TestDoRetriesUntilAnAnswer asks a service that is not there yet: the
// attempts get no responders until it subscribes, then an answer.
func TestDoRetriesUntilAnAnswer(t *testing.T) {
	nc, _ := testenv.Start(t, "").Connect(t)
	var attempts atomic.Int32
	got, err := Do(t.Context(), Policy{AttemptTimeout: 500 * time.Millisecond, Budget: 5 * time.Second}, func(ctx context.Context) (string, error) {
		if attempts.Add(1) == 3 {
			sub, err := nc.Subscribe("late.service", func(m *nats.Msg) { _ = m.Respond([]byte("here")) })
			if err != nil {
				return "", err
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			if err := nc.Flush(); err != nil {
				return "", err
			}
		}
		m, err := nc.RequestWithContext(ctx, "late.service", nil)
		if err != nil {
			return "", err
		}
		return string(m.Data), nil
	})
	if err != nil || got != "here" || attempts.Load() != 3 {
		t.Fatalf("Do = %q, %v after %d attempts; want the answer on the third", got, err, attempts.Load())
	}
}

// TestDoGivesUpWithinTheBudget: a service that never answers costs one
// attempt timeout per attempt, and Do stops when the caller's deadline
// leaves no room for another.
func TestDoGivesUpWithinTheBudget(t *testing.T) {
	nc, _ := testenv.Start(t, "").Connect(t)
	sub, err := nc.SubscribeSync("silent.service")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	var attempts atomic.Int32
	err = Run(ctx, Policy{AttemptTimeout: 100 * time.Millisecond}, func(ctx context.Context) error {
		attempts.Add(1)
		_, err := nc.RequestWithContext(ctx, "silent.service", nil)
		return err
	})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want ErrUnavailable wrapping the attempt's deadline", err)
	}
	if n := attempts.Load(); n < 3 {
		t.Fatalf("%d attempts in 600ms of 100ms each, want several", n)
	}
	if ctx.Err() == nil {
		if dl, _ := ctx.Deadline(); time.Until(dl) > maxPause+100*time.Millisecond {
			t.Fatalf("Run gave up with %v of the budget left", time.Until(dl))
		}
	}
}

// TestDoStopsAtOnce: an error that a retry cannot change, and a closed
// connection, end Do after one attempt.
func TestDoStopsAtOnce(t *testing.T) {
	nc, js := testenv.Start(t, "").Connect(t)
	cases := []struct {
		name        string
		op          func(ctx context.Context) error
		unavailable bool
	}{
		{"stream not found", func(ctx context.Context) error { _, err := js.Stream(ctx, "NO_SUCH_STREAM"); return err }, false},
		{"connection closed", func(ctx context.Context) error {
			nc.Close()
			_, err := js.Stream(ctx, "NO_SUCH_STREAM")
			return err
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			attempts := 0
			err := Run(t.Context(), Policy{}, func(ctx context.Context) error { attempts++; return c.op(ctx) })
			if err == nil || attempts != 1 || errors.Is(err, ErrUnavailable) != c.unavailable {
				t.Fatalf("Run = %v after %d attempts; want one attempt, ErrUnavailable %v", err, attempts, c.unavailable)
			}
		})
	}
}

// TestWaitSkipsAPauseThatOutlivesTheDeadline: when the caller's deadline
// comes before the pause would end, Wait says so at once instead of
// sleeping into the deadline.
func TestWaitSkipsAPauseThatOutlivesTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if (Policy{}).Wait(ctx, 10) { // the pause after many attempts is at least 125ms
		t.Fatal("Wait allowed another attempt that could not finish before the deadline")
	}
	if ctx.Err() != nil {
		t.Fatal("Wait slept until the deadline")
	}
	if !(Policy{}).Wait(t.Context(), 1) {
		t.Fatal("Wait refused a pause with time to spare")
	}
}
