package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/worker"
)

// get fetches path from the engine's HTTP operations server.
func (e *testEngine) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + e.HTTPAddr().String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// readyz returns /readyz's status and report.
func (e *testEngine) readyz(t *testing.T) (int, ops.ReadyReport) {
	t.Helper()
	code, body := e.get(t, "/readyz")
	var rep ops.ReadyReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz %d %q: %v", code, body, err)
	}
	return code, rep
}

func part(rep ops.ReadyReport, name string) (ops.PartStatus, bool) {
	for _, p := range rep.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return ops.PartStatus{}, false
}

func TestHealthReadinessAndMetricsOverHTTP(t *testing.T) {
	e := startEngine(t)
	testenv.CheckFor(t, 10*time.Second, func() error {
		if e.HTTPAddr() == nil {
			return fmt.Errorf("HTTP server not listening")
		}
		return nil
	})
	if code, _ := e.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if code, rep := e.readyz(t); code != 200 {
			return fmt.Errorf("/readyz %d: not ready %v", code, rep.NotReady)
		}
		return nil
	})
	_, rep := e.readyz(t)
	for _, want := range []string{"api", "nats", "streams", "storage", "projections", "react-orders", "react-money", "timers", "readmodels"} {
		if p, ok := part(rep, want); !ok || !p.Ready {
			t.Errorf("/readyz part %s: %+v (present %v)", want, p, ok)
		}
	}

	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-m", "buyer_name": "박지훈", "amount": 1000}, &sub, nil)
	e.callErr(t, subjGet, map[string]string{"order_id": "nope"}, nil)
	e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-m", StoreID: "s-m", StoreName: "한울식당"}, nil, nil)
	_, metrics := e.get(t, "/metrics")
	for _, want := range []string{
		`bankbook_requests_total{code="200",endpoint="order_submit"} 1`,
		`bankbook_requests_total{code="404",endpoint="order_get"} 1`,
		`bankbook_request_duration_seconds_count{endpoint="order_submit"} 1`,
		`bankbook_projection_lag_events `,
		`bankbook_consumer_pending{consumer="react-orders"} `,
		`bankbook_consumer_pending{consumer="timers"} `,
		`bankbook_timers_pending 1`, // the order's expiry
		`bankbook_dead_letters 0`,
		`bankbook_store_accounts_remaining 999999`, // the default range less the link's
		`bankbook_part_up{part="react-money"} 1`,
		`bankbook_part_up{part="nats"} 1`,
		`bankbook_part_work_total{outcome="dead_lettered",part="react-orders"} 0`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The runner's batches: the order's commit is in one of them.
	testenv.CheckFor(t, 10*time.Second, func() error {
		_, metrics := e.get(t, "/metrics")
		for _, series := range []string{"bankbook_projection_batch_seconds_count", "bankbook_projection_batch_commits_total"} {
			if v, ok := metricValue(metrics, series); !ok || v < 1 {
				return fmt.Errorf("%s = %v (present %v), want 1 or more", series, v, ok)
			}
		}
		return nil
	})
}

// metricValue is the value of the series named exactly series (with its
// labels, if any) in a Prometheus text exposition.
func metricValue(metrics, series string) (float64, bool) {
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func TestDeletedConsumerIsRecreatedAndReported(t *testing.T) {
	e := startEngine(t)
	testenv.CheckFor(t, 10*time.Second, func() error {
		if code, rep := e.readyz(t); code != 200 {
			return fmt.Errorf("/readyz %d: not ready %v", code, rep.NotReady)
		}
		return nil
	})
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctxT(t), "BANKBOOK_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		_, err := stream.Consumer(ctxT(t), "react-orders")
		return err
	})
	if err := stream.DeleteConsumer(ctxT(t), "react-orders"); err != nil {
		t.Fatal(err)
	}
	// The part notices, is restarted, recreates its consumer and is ready again.
	testenv.CheckFor(t, 20*time.Second, func() error {
		_, rep := e.readyz(t)
		p, _ := part(rep, "react-orders")
		if p.Restarts < 1 || !p.Ready {
			return fmt.Errorf("react-orders %+v", p)
		}
		if _, err := stream.Consumer(ctxT(t), "react-orders"); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		return nil
	})
}

func TestPoisonMessageIsDeadLetteredListedAndSetAside(t *testing.T) {
	e := startEngine(t)
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	// Not a commit: the order reactor must record it and go on.
	if _, err := js.Publish(ctxT(t), "bankbook.evt.order.poison", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	var list api.DeadLettersReply
	testenv.CheckFor(t, 20*time.Second, func() error {
		if _, err := e.c.Call(ctxT(t), "bankbook.q.deadletter.list", map[string]any{"part": "react-orders"}, &list, nil); err != nil {
			return err
		}
		if len(list.DeadLetters) != 1 {
			return fmt.Errorf("dead letters %+v", list.DeadLetters)
		}
		return nil
	})
	dl := list.DeadLetters[0]
	if dl.Stream != "BANKBOOK_EVENTS" || dl.Subject != "bankbook.evt.order.poison" || dl.Error == "" || dl.ID == 0 {
		t.Fatalf("dead letter %+v", dl)
	}
	// The read models and the notify reactor (which reads order commits
	// too) record it as well: three dead letters.
	testenv.CheckFor(t, 20*time.Second, func() error {
		_, metrics := e.get(t, "/metrics")
		if !strings.Contains(metrics, "bankbook_dead_letters 3") || !strings.Contains(metrics, `bankbook_part_work_total{outcome="dead_lettered",part="react-orders"} 1`) ||
			!strings.Contains(metrics, `bankbook_part_work_total{outcome="dead_lettered",part="react-notify"} 1`) {
			return errors.New("/metrics does not count the dead letters")
		}
		return nil
	})
	// /readyz names the read models, which cannot apply it either.
	testenv.CheckFor(t, 20*time.Second, func() error {
		code, rep := e.readyz(t)
		if code != 503 || !strings.Contains(strings.Join(rep.NotReady, ","), "projections") {
			return fmt.Errorf("/readyz %d, not ready %v", code, rep.NotReady)
		}
		return nil
	})

	// Redriving it fails again and keeps it; discarding needs a reason and records it.
	if ce := e.callErr(t, "bankbook.cmd.deadletter.redrive", map[string]any{"id": dl.ID}, nil); ce.Status != 409 || ce.Code != "redrive_failed" {
		t.Fatalf("redrive of poison: %v", ce)
	}
	if ce := e.callErr(t, "bankbook.cmd.deadletter.discard", map[string]any{"id": dl.ID}, nil); ce.Status != 400 {
		t.Fatalf("discard without reason: %v", ce)
	}
	// A reason of white space alone is no reason (as payout.resolve and
	// event.set_aside have it), from the CLI or the console's form.
	if ce := e.callErr(t, "bankbook.cmd.deadletter.discard", map[string]any{"id": dl.ID, "reason": " \n\t "}, nil); ce.Status != 400 || ce.Code != "invalid_input" {
		t.Fatalf("discard with a blank reason: %+v", ce)
	}
	var rep api.DeadLetterReply
	e.call(t, "bankbook.cmd.deadletter.discard", map[string]any{"id": dl.ID, "reason": "forged by a test"}, &rep, nil)
	if rep.Status != "discarded" || rep.DeadLetter.ID != dl.ID {
		t.Fatalf("discard: %+v", rep)
	}
	// The record of the discard names who decided it, and why.
	dead, err := e.js.Stream(ctxT(t), "BANKBOOK_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dead.GetLastMsgForSubject(ctxT(t), "bankbook.dead.react-orders.discarded")
	if err != nil {
		t.Fatal(err)
	}
	var res worker.Resolution
	if err := json.Unmarshal(msg.Data, &res); err != nil || res.DeadLetterID != dl.ID || res.Reason != "forged by a test" || res.Actor != "operator" {
		t.Fatalf("the discard's record: %s (%v)", msg.Data, err)
	}
	if ce := e.callErr(t, "bankbook.cmd.deadletter.discard", map[string]any{"id": dl.ID, "reason": "again"}, nil); ce.Status != 404 {
		t.Fatalf("second discard: %v", ce)
	}
	e.call(t, "bankbook.q.deadletter.list", map[string]any{"part": "react-orders"}, &list, nil)
	if len(list.DeadLetters) != 0 {
		t.Fatalf("after discard: %+v", list.DeadLetters)
	}
}

func TestStartFailsWhenTheHTTPPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := engine.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen, cfg.HTTPListen, cfg.Durability = "127.0.0.1:0", ln.Addr().String(), "fast"
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err == nil {
		_ = e.Stop(context.Background())
		t.Fatal("started with its HTTP port taken")
	}
	if !errors.Is(err, ops.ErrListen) {
		t.Fatalf("start: %v, want ops.ErrListen", err)
	}
}

// TestIdleEngineReturnsMemory checks the memory-trim part end to end: it runs
// under the supervisor, trims once the engine is idle, counts each trim in
// /metrics, does not trim again while nothing happens, and trims again after
// new work.
func TestIdleEngineReturnsMemory(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.IdleTrim = engine.Duration(300 * time.Millisecond) })
	trims := func() (int, error) {
		_, metrics := e.get(t, "/metrics")
		const series = `bankbook_part_work_total{outcome="processed",part="memory-trim"}`
		v, ok := metricValue(metrics, series)
		if !ok {
			return 0, fmt.Errorf("/metrics lacks %s", series)
		}
		return int(v), nil
	}
	atLeast := func(n int) int {
		t.Helper()
		var got int
		testenv.CheckFor(t, 20*time.Second, func() (err error) {
			if got, err = trims(); err == nil && got < n {
				err = fmt.Errorf("%d trims, want %d or more", got, n)
			}
			return err
		})
		return got
	}
	first := atLeast(1)
	if _, rep := e.readyz(t); !func() bool { p, ok := part(rep, "memory-trim"); return ok && p.Ready }() {
		t.Errorf("/readyz: part memory-trim not ready: %+v", rep.Parts)
	}
	// Idle on: once per idle spell, not once per --idle-trim. (A slow
	// machine only looks fewer times in this window.)
	time.Sleep(5 * 300 * time.Millisecond)
	if n, err := trims(); err != nil || n != first {
		t.Fatalf("%d trims (%v) after more idle time, want still %d", n, err, first)
	}
	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-trim", "buyer_name": "박지훈", "amount": 1000}, &sub, nil)
	atLeast(first + 1)
}

// projection.status with hash and a lock_id hashes the read models only on
// the instance whose lock_id it is: another answers without the hash (what
// audit verify --data-dir relies on to ask until the right one answers).
func TestProjectionStatusHashesOnlyForItsLockID(t *testing.T) {
	e := startEngine(t)
	var plain api.ProjectionStatusReply
	e.call(t, "bankbook.q.projection.status", map[string]any{}, &plain, nil)
	if plain.LockID == "" || plain.Hash != "" {
		t.Fatalf("status without hash: %+v", plain)
	}
	if want := projections.Versions(projections.DefaultProjections()); !maps.Equal(plain.ProjectionVersions, want) {
		t.Errorf("projection_versions %v, want %v", plain.ProjectionVersions, want)
	}
	var other api.ProjectionStatusReply
	e.call(t, "bankbook.q.projection.status", map[string]any{"hash": true, "lock_id": "SOMEONEELSE234"}, &other, nil)
	if other.Hash != "" || other.HashAtSeq != 0 {
		t.Errorf("hashed for another instance's lock_id: %+v", other)
	}
	var own api.ProjectionStatusReply
	e.call(t, "bankbook.q.projection.status", map[string]any{"hash": true, "lock_id": plain.LockID}, &own, nil)
	if own.Hash == "" {
		t.Errorf("no hash for its own lock_id: %+v", own)
	}
	for _, bad := range []string{"a/b", strings.Repeat("A", 65), "Ä"} {
		if ce := e.callErr(t, "bankbook.q.projection.status", map[string]any{"hash": true, "lock_id": bad}, nil); ce.Status != 400 || ce.Code != "invalid_input" {
			t.Errorf("lock_id %q: %+v", bad, ce)
		}
	}
}
