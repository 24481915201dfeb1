package supervisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/supervisor"
)

func start(t *testing.T, cfg supervisor.Config, parts ...supervisor.Part) (*supervisor.Supervisor, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	cfg.Log = zerolog.New(logs)
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 10 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 40 * time.Millisecond
	}
	s, err := supervisor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if err := s.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s, logs
}

// untilStopped blocks until ctx ends: a well-behaved part.
func untilStopped(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func status(t *testing.T, s *supervisor.Supervisor, name string) supervisor.Status {
	t.Helper()
	st, ok := s.Status(name)
	if !ok {
		t.Fatalf("no part %s", name)
	}
	return st
}

func TestPanickingPartIsRestarted(t *testing.T) {
	var runs atomic.Int32
	s, logs := start(t, supervisor.Config{}, supervisor.Part{Name: "reactor", Run: func(ctx context.Context) error {
		if runs.Add(1) <= 2 {
			panic("reactor bug: nil map")
		}
		return untilStopped(ctx)
	}})
	testenv.Eventually(t, 5*time.Second, "running after two panics", func() bool {
		st := status(t, s, "reactor")
		return st.State == supervisor.Running && st.Restarts == 2
	})
	st := status(t, s, "reactor")
	if !strings.Contains(st.LastError, "panic") || !strings.Contains(st.LastError, "nil map") || st.LastErrorAt.IsZero() || !st.OK() {
		t.Fatalf("status %+v", st)
	}
	out := logs.String()
	for _, want := range []string{`"part":"reactor"`, `"restarts":1`, `"retry_in":"20ms"`, `"stack":"goroutine`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
}

func TestPartReturningEarlyIsRestartedWithBackoff(t *testing.T) {
	var runs atomic.Int32
	s, logs := start(t, supervisor.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, ResetAfter: time.Hour},
		supervisor.Part{Name: "flaky", Run: func(ctx context.Context) error {
			switch runs.Add(1) {
			case 1:
				return errors.New("consumer gone")
			case 2, 3, 4:
				return nil // returning nil before stop is a failure too
			}
			return untilStopped(ctx)
		}})
	testenv.Eventually(t, 5*time.Second, "fifth run", func() bool { return status(t, s, "flaky").Restarts == 4 })
	if st := status(t, s, "flaky"); st.LastError != supervisor.ErrReturned.Error() {
		t.Fatalf("last error %q", st.LastError)
	}
	var delays []string
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var l struct {
			RetryIn string `json:"retry_in"`
		}
		if err := json.Unmarshal([]byte(line), &l); err == nil && l.RetryIn != "" {
			delays = append(delays, l.RetryIn)
		}
	}
	if strings.Join(delays, " ") != "10ms 20ms 40ms 40ms" {
		t.Fatalf("retry_in %v, want doubling capped at 40ms", delays)
	}
}

// TestBackoffStartsOverAfterAHealthyRun: runs 1 and 2 fail at once (well
// under ResetAfter, however busy the machine), run 3 lasts twice ResetAfter:
// the backoff doubles after run 2 and starts over after run 3.
func TestBackoffStartsOverAfterAHealthyRun(t *testing.T) {
	var runs atomic.Int32
	const resetAfter = 500 * time.Millisecond
	s, logs := start(t, supervisor.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, ResetAfter: resetAfter},
		supervisor.Part{Name: "steady", Run: func(ctx context.Context) error {
			n := runs.Add(1)
			if n == 3 {
				time.Sleep(2 * resetAfter) // a healthy run, longer than ResetAfter
			}
			if n <= 3 {
				return errors.New("boom")
			}
			return untilStopped(ctx)
		}})
	testenv.Eventually(t, 5*time.Second, "fourth run", func() bool { return status(t, s, "steady").Restarts == 3 })
	if !strings.Contains(logs.String(), `"retry_in":"20ms"`) || strings.Count(logs.String(), `"retry_in":"10ms"`) != 2 {
		t.Fatalf("backoff did not start over after a healthy run:\n%s", logs.String())
	}
}

func TestStopIsBoundedForAPartThatIgnoresCtx(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s, _ := start(t, supervisor.Config{},
		supervisor.Part{Name: "polite", Run: untilStopped},
		supervisor.Part{Name: "stubborn", Run: func(context.Context) error { <-release; return nil }})
	testenv.Eventually(t, 5*time.Second, "both running", func() bool {
		return status(t, s, "polite").State == supervisor.Running && status(t, s, "stubborn").State == supervisor.Running
	})
	// Long enough for the polite part to stop on a busy machine; the
	// stubborn one never does.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.Stop(ctx)
	var se *supervisor.StopError
	if !errors.Is(err, supervisor.ErrStopTimeout) || !errors.As(err, &se) || len(se.Parts) != 1 || se.Parts[0] != "stubborn" {
		t.Fatalf("stop = %v, want a StopError naming stubborn only", err)
	}
	if st := status(t, s, "polite"); st.State != supervisor.Stopped {
		t.Fatalf("polite %+v", st)
	}
	if err := s.Add(supervisor.Part{Name: "late", Run: untilStopped}); !errors.Is(err, supervisor.ErrStopped) {
		t.Fatalf("add after stop: %v", err)
	}
}

func TestPartReportsItsOwnHealth(t *testing.T) {
	step := make(chan func(*supervisor.Handle))
	s, _ := start(t, supervisor.Config{}, supervisor.Part{Name: "projection", ReportsReady: true, Run: func(ctx context.Context) error {
		h := supervisor.From(ctx)
		for {
			select {
			case f := <-step:
				f(h)
			case <-ctx.Done():
				return nil
			}
		}
	}})
	do := func(f func(*supervisor.Handle)) { step <- f; step <- func(*supervisor.Handle) {} } // the second send waits for the first to be done

	testenv.Eventually(t, 5*time.Second, "running", func() bool { return status(t, s, "projection").State == supervisor.Running })
	if st := status(t, s, "projection"); st.Ready || st.OK() {
		t.Fatalf("a ReportsReady part is ready before it says so: %+v", st)
	}
	do(func(h *supervisor.Handle) { h.SetReady(false, "catching up: 1200 behind") })
	if st := status(t, s, "projection"); st.Ready || st.Detail != "catching up: 1200 behind" {
		t.Fatalf("%+v", st)
	}
	do(func(h *supervisor.Handle) { h.SetReady(true, "") })
	if st := status(t, s, "projection"); !st.OK() || st.Detail != "" {
		t.Fatalf("%+v", st)
	}
	do(func(h *supervisor.Handle) { h.Report(errors.New("server away")) })
	failing := status(t, s, "projection")
	if failing.State != supervisor.Failing || failing.LastError != "server away" || failing.OK() {
		t.Fatalf("%+v", failing)
	}
	do(func(h *supervisor.Handle) { h.Report(errors.New("still away")) })
	if st := status(t, s, "projection"); !st.Since.Equal(failing.Since) || st.LastError != "still away" {
		t.Fatalf("failing since moved: %+v, was %+v", st, failing)
	}
	do(func(h *supervisor.Handle) { h.Report(nil) })
	if st := status(t, s, "projection"); !st.OK() || st.Restarts != 0 {
		t.Fatalf("%+v", st)
	}
	// Sources fail and recover apart: one's recovery does not hide another's failure.
	do(func(h *supervisor.Handle) { h.ReportFrom("consumer", errors.New("no heartbeat")) })
	do(func(h *supervisor.Handle) { h.ReportFrom("dead letters", errors.New("lease stream away")) })
	do(func(h *supervisor.Handle) { h.ReportFrom("lookups", nil) }) // never failed: changes nothing
	failing = status(t, s, "projection")
	if failing.State != supervisor.Failing || failing.LastError != "lease stream away" {
		t.Fatalf("two sources failing: %+v", failing)
	}
	do(func(h *supervisor.Handle) { h.ReportFrom("dead letters", nil) })
	if st := status(t, s, "projection"); st.State != supervisor.Failing || st.LastError != "no heartbeat" || !st.Since.Equal(failing.Since) {
		t.Fatalf("one source recovered, the other still failing: %+v", st)
	}
	do(func(h *supervisor.Handle) { h.ReportFrom("consumer", nil) })
	if st := status(t, s, "projection"); !st.OK() {
		t.Fatalf("every source recovered: %+v", st)
	}
	// Outside a supervisor the handle is nil and ignores every call.
	h := supervisor.From(context.Background())
	h.SetReady(true, "x")
	h.Report(errors.New("x"))
	h.ReportFrom("x", errors.New("x"))
}

func TestStatusesAndRegistration(t *testing.T) {
	s, _ := start(t, supervisor.Config{}, supervisor.Part{Name: "a", Run: untilStopped})
	if err := s.Add(supervisor.Part{Name: "a", Run: untilStopped}); !errors.Is(err, supervisor.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.Add(supervisor.Part{Name: "b", Run: untilStopped}); err != nil {
		t.Fatal(err)
	}
	// Both run in their own goroutines: on a busy machine a may not have
	// started yet either.
	testenv.Eventually(t, 5*time.Second, "a running, and b started after Start", func() bool {
		return status(t, s, "a").State == supervisor.Running && status(t, s, "b").State == supervisor.Running
	})
	sts := s.Statuses()
	if len(sts) != 2 || sts[0].Name != "a" || sts[1].Name != "b" || !sts[0].OK() || !sts[1].OK() {
		t.Fatalf("statuses %+v", sts)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Statuses() {
		if st.State != supervisor.Stopped || st.Ready {
			t.Fatalf("after stop %+v", st)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := supervisor.New(supervisor.Config{MinBackoff: time.Minute, MaxBackoff: time.Second})
	if err == nil || !strings.Contains(err.Error(), "max backoff") {
		t.Fatalf("validate: %v", err)
	}
}
