package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/reservations"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/watermarks"
	"github.com/bankbook/bankbook/worker"
)

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{domain.Invalid("amount", "must be greater than 0"), 400, "invalid_input"},
		{fmt.Errorf("wrapped: %w", domain.ErrOrderNotFound), 404, "order_not_found"},
		{domain.ErrWrongState, 409, "wrong_state"},
		{commands.ErrContention, 409, "conflict"},
		{idempotency.ErrInProgress, 409, "in_progress"},
		{idempotency.ErrKeyReused, 422, "idempotency_key_reused"},
		{fmt.Errorf("append order/x: %w: no response", eventstore.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("kv: %w", context.DeadlineExceeded), 503, "unavailable"},
		{nats.ErrNoResponders, 503, "unavailable"},
		{fmt.Errorf("load: %w", jetstream.ErrNoStreamResponse), 503, "unavailable"},
		{fmt.Errorf("nats: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}), 503, "unavailable"},
		{fmt.Errorf("kv create x: %w: %w", transient.ErrUnavailable, nats.ErrConnectionClosed), 503, "unavailable"},
		{fmt.Errorf("get: %w", jetstream.ErrStreamNotFound), 500, "internal"},
		{context.Canceled, 500, "internal"},
		{errors.New("something broke"), 500, "internal"},
	}
	for _, tc := range cases {
		got := toAPIError(tc.err)
		if got.Status != tc.status || got.Code != tc.code {
			t.Errorf("%v → %d %s, want %d %s", tc.err, got.Status, got.Code, tc.status, tc.code)
		}
	}
	if definitive(&api.Error{Status: 409, Code: "conflict"}) || definitive(&api.Error{Status: 503, Code: "unavailable"}) ||
		!definitive(&api.Error{Status: 409, Code: "wrong_state"}) || !definitive(&api.Error{Status: 404, Code: "order_not_found"}) {
		t.Error("definitive: only final refusals are stored for repeats")
	}
}

// TestTransientNATSFailuresAre503 runs the real command path (a real
// embedded server, the real stores and handlers, the micro service) and
// then shuts the server down mid-run: every command, with or without an
// Idempotency-Key, answers 503 unavailable with the same-key advice, never
// 500, and the cause is logged.
func TestTransientNATSFailuresAre503(t *testing.T) {
	h := startCommandPath(t)
	submit := func(key string) reply {
		t.Helper()
		body, _ := json.Marshal(api.SubmitOrderRequest{BuyerID: "u-1", BuyerName: "Kim", Amount: 15000})
		hdr := nats.Header{}
		if key != "" {
			hdr.Set(api.HeaderIdempotencyKey, key)
		}
		ctx, cancel := context.WithTimeout(t.Context(), h.srv.cfg.CommandTimeout)
		defer cancel()
		// On the subject the operator's import maps it to.
		rep := h.srv.routes[api.OrderSubmit.Name].handle(ctx, &request{subject: auth.FromSubject("operator", api.OrderSubmit.Subject), data: body, headers: hdr})
		if rep.after != nil {
			rep.after() // what dispatch runs once the reply is out
		}
		return rep
	}

	// Healthy: the command goes through, over NATS too.
	if rep := submit("k-0"); rep.err != nil {
		t.Fatalf("submit before the outage: %v", rep.err)
	}
	msg, err := h.ns.ConnectRole(t, auth.App).Request(api.OrderSubmit.Subject, []byte(`{"buyer_id":"u-2","buyer_name":"Lee","amount":15000}`), 5*time.Second)
	if err != nil || msg.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("submit over NATS before the outage: %v %s %s", err, msg.Header, msg.Data)
	}

	h.ns.Shutdown()
	for _, key := range []string{"", "k-1", "k-0"} {
		rep := submit(key)
		if rep.err == nil || rep.err.Status != 503 || rep.err.Code != api.CodeUnavailable {
			t.Fatalf("submit (key %q) with NATS down: %+v, want 503 unavailable", key, rep.err)
		}
		if !strings.Contains(rep.err.Message, "same Idempotency-Key") {
			t.Errorf("503 message %q does not advise a retry with the same key", rep.err.Message)
		}
		// The request had no correlation ID: the log of the failure
		// names the one the command generated and stamped on its events.
		if rep.correlation == "" {
			t.Errorf("submit (key %q): the failed reply carries no correlation ID for its log", key)
		}
	}
}

// TestEvery500IsLoggedWithItsCause: a 500 is logged at error level with
// the subject, the correlation ID and the error, and a transient failure's
// 503 at warn level with its cause; a 4xx is not logged.
func TestEvery500IsLoggedWithItsCause(t *testing.T) {
	var buf testenv.SyncBuffer
	s := &Server{cfg: Config{Log: zerolog.New(&buf)}}
	for _, c := range []struct {
		subject, correlation string
		err                  error
		status               int
	}{
		{"order_submit", "corr-1", errors.New("disk on fire"), 500},
		{"order_cancel", "corr-2", fmt.Errorf("load: %w", jetstream.ErrNoStreamResponse), 503},
		{"order_get", "corr-3", domain.ErrOrderNotFound, 404},
	} {
		rep := failed(c.err)
		if rep.err.Status != c.status || (c.status == 500 && rep.err.Message != "internal error") {
			t.Fatalf("failed(%v) = %+v, want a %d that does not show the cause to the client", c.err, rep.err, c.status)
		}
		s.logFailure(c.subject, c.correlation, rep)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want 2 (a 404 is not logged): %s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "error", "subject": "order_submit", "correlation_id": "corr-1", "error": "disk on fire"},
		{"level": "warn", "subject": "order_cancel", "correlation_id": "corr-2", "error": "load: nats: no response from stream"},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
}

// commandPath is a server over the real stores on a real embedded server.
type commandPath struct {
	ns  *testenv.Server
	nc  *nats.Conn
	srv *Server
}

// startCommandPath wires the command path the way the engine does, with
// short timeouts: attempts of 100ms within commands of 1.5s.
func startCommandPath(t *testing.T) *commandPath {
	t.Helper()
	ns := testenv.Start(t, "")
	nc, js := ns.Connect(t)
	ctx := t.Context()
	const attempt = 100 * time.Millisecond
	log := zerolog.New(io.Discard)
	codec := domain.Events()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec, AttemptTimeout: attempt})
	if err != nil {
		t.Fatal(err)
	}
	idem, err := idempotency.Open(ctx, js, idempotency.Config{AttemptTimeout: attempt})
	if err != nil {
		t.Fatal(err)
	}
	names, err := reservations.Open(ctx, js, reservations.Config{AttemptTimeout: attempt})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := timers.Open(ctx, js, timers.Config{Log: log, Dead: dead})
	if err != nil {
		t.Fatal(err)
	}
	marks, err := watermarks.OpenWith(ctx, js, watermarks.Config{AttemptTimeout: attempt})
	if err != nil {
		t.Fatal(err)
	}
	accts, err := accounts.Open(ctx, js, accounts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := commands.New(commands.Deps{Events: events, Codec: codec, Names: names, Timers: tm, Watermarks: marks, Accounts: accts},
		commands.Config{CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "bankbook"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	models, err := projections.Open(filepath.Join(t.TempDir(), "readmodels.db"), &projections.Options{Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = models.Close() })
	srv, err := New(Config{
		Conn: nc, Orders: cmds.Orders, Deposits: cmds.Deposits, Wallets: cmds.Wallets, Links: cmds.Links, Payouts: cmds.Payouts, Events: events, Idempotency: idem,
		ReadModels: models, Runner: projections.NewRunner(events, models, log), DeadLetters: noDeadLetters{}, Log: log,
		CommandTimeout: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	return &commandPath{ns: ns, nc: nc, srv: srv}
}

// noDeadLetters stands in for the engine's dead-letter desk, which these
// tests do not use.
type noDeadLetters struct{}

func (noDeadLetters) List(context.Context, string, uint64, int) ([]api.DeadLetter, uint64, error) {
	return nil, 0, nil
}

func (noDeadLetters) Get(context.Context, uint64) (api.DeadLetter, error) {
	return api.DeadLetter{}, errors.New("no dead letters here")
}

func (noDeadLetters) Redrive(context.Context, uint64) (api.DeadLetter, error) {
	return api.DeadLetter{}, errors.New("no dead letters here")
}

func (noDeadLetters) Discard(context.Context, uint64, string) (api.DeadLetter, error) {
	return api.DeadLetter{}, errors.New("no dead letters here")
}

func (noDeadLetters) Hold(context.Context, uint64, string, time.Duration) (time.Time, func(), error) {
	return time.Time{}, nil, errors.New("no dead letters here")
}

func (noDeadLetters) Uncertainty(context.Context, string, string) (worker.Uncertainty, error) {
	return worker.Uncertainty{Now: time.Now()}, nil
}

func (noDeadLetters) Decide(_ context.Context, _, _ string, _ worker.Uncertainty, reason string) (string, error) {
	return reason, nil
}
