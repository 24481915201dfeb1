package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
)

// parts is a readiness source whose answer a test sets.
type parts struct {
	mu  sync.Mutex
	ps  []ops.PartStatus
	err error
}

func (p *parts) set(err error, ps ...ops.PartStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ps, p.err = ps, err
}

func (p *parts) Ready(context.Context) ([]ops.PartStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ps), p.err
}

// running is an ops.Server under Run.
type running struct {
	*ops.Server
	base   string // http://127.0.0.1:port
	stop   context.CancelFunc
	result chan error // Run's return value
}

// start runs an ops.Server on a free loopback port until the test ends.
func start(t *testing.T, cfg ops.Config) *running {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := ops.New(cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Server: s, stop: cancel, result: make(chan error, 1)}
	go func() { r.result <- s.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, "the server to listen", func() bool { return s.Addr() != nil })
	r.base = "http://" + s.Addr().String()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.result:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return r
}

// stopped cancels Run and returns what it returned.
func (r *running) stopped(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.result:
		r.result <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
		return nil
	}
}

func do(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	code, _, body := do(t, http.MethodGet, url)
	return code, body
}

// sample returns the value of the exposition line "series value".
func sample(body, series string) (float64, bool) {
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

func wantSample(t *testing.T, body, series string, want float64) {
	t.Helper()
	got, ok := sample(body, series)
	if !ok {
		t.Errorf("no sample %s in /metrics", series)
		return
	}
	if got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// microseconds matches a time as bankbook writes it (domain.TimeLayout).
var microseconds = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"`)

func TestHealthz(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})

	code, h, body := do(t, http.MethodGet, s.base+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("GET /healthz = %d %s, want 200", code, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var rep struct {
		Status    string    `json:"status"`
		StartedAt time.Time `json:"started_at"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if rep.Status != "alive" || rep.StartedAt.IsZero() {
		t.Errorf("body = %s, want status alive and started_at", body)
	}
	if !microseconds.MatchString(body) {
		t.Errorf("body = %s, want started_at in UTC with microseconds", body)
	}

	if code, _, body := do(t, http.MethodHead, s.base+"/healthz"); code != http.StatusOK || body != "" {
		t.Errorf("HEAD /healthz = %d %q, want 200 and no body", code, body)
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			t.Run(method+path, func(t *testing.T) {
				code, h, _ := do(t, method, s.base+path)
				if code != http.StatusMethodNotAllowed {
					t.Errorf("%s %s = %d, want 405", method, path, code)
				}
				if allow := h.Get("Allow"); !strings.Contains(allow, "GET") {
					t.Errorf("Allow = %q, want GET in it", allow)
				}
			})
		}
		t.Run("HEAD"+path, func(t *testing.T) {
			if code, _, _ := do(t, http.MethodHead, s.base+path); code == http.StatusMethodNotAllowed || code == http.StatusNotFound {
				t.Errorf("HEAD %s = %d", path, code)
			}
		})
	}
	if code, _ := get(t, s.base+"/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing = %d, want 404", code)
	}
}

func readyz(t *testing.T, base string) (int, ops.ReadyReport) {
	t.Helper()
	code, h, body := do(t, http.MethodGet, base+"/readyz")
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var rep ops.ReadyReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return code, rep
}

func TestReadyz(t *testing.T) {
	src := &parts{}
	var logs testenv.SyncBuffer
	s := start(t, ops.Config{Readiness: src, Log: zerolog.New(&logs)})
	since := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

	t.Run("a failing part is named with why", func(t *testing.T) {
		src.set(nil,
			ops.PartStatus{Name: "projections", Ready: true, State: ops.StateRunning},
			ops.PartStatus{Name: "timers", State: ops.StateFailing, Since: since, Restarts: 2, LastError: "consumer deleted"},
			ops.PartStatus{Name: "readmodels", State: ops.StateRunning, Reason: "rebuilding orders v2: at seq 40 of 90"},
		)
		code, rep := readyz(t, s.base)
		if code != http.StatusServiceUnavailable || rep.Status != "not_ready" {
			t.Fatalf("/readyz = %d %q, want 503 not_ready", code, rep.Status)
		}
		if !slices.Equal(rep.NotReady, []string{"timers", "readmodels"}) {
			t.Errorf("not_ready = %v, want [timers readmodels]", rep.NotReady)
		}
		if len(rep.Parts) != 3 {
			t.Fatalf("parts = %+v, want all three", rep.Parts)
		}
		timers := rep.Parts[1]
		if timers.Name != "timers" || timers.Reason != "consumer deleted" || timers.LastError != "consumer deleted" ||
			timers.State != ops.StateFailing || timers.Restarts != 2 || !timers.Since.Equal(since) {
			t.Errorf("timers = %+v, want failing since %v after 2 restarts with its error as reason", timers, since)
		}
		if r := rep.Parts[2].Reason; r != "rebuilding orders v2: at seq 40 of 90" {
			t.Errorf("readmodels reason = %q", r)
		}
		// Times as everywhere else: UTC with microseconds; none when unknown.
		_, _, body := do(t, http.MethodGet, s.base+"/readyz")
		if !strings.Contains(body, `"since":"2031-05-06T07:08:09.000000Z"`) || strings.Count(body, `"since"`) != 1 {
			t.Errorf("/readyz = %s, want the timers' since with microseconds and no other", body)
		}
	})

	t.Run("200 once every part is ready", func(t *testing.T) {
		src.set(nil,
			ops.PartStatus{Name: "projections", Ready: true, State: ops.StateRunning},
			ops.PartStatus{Name: "timers", Ready: true, State: ops.StateRunning, Restarts: 2},
			ops.PartStatus{Name: "readmodels", Ready: true, State: ops.StateRunning},
		)
		code, rep := readyz(t, s.base)
		if code != http.StatusOK || rep.Status != "ready" || len(rep.NotReady) != 0 || len(rep.Parts) != 3 {
			t.Errorf("/readyz = %d %+v, want 200 ready with three parts", code, rep)
		}
	})

	t.Run("a failing source is not ready", func(t *testing.T) {
		src.set(errors.New("supervisor gone"))
		code, rep := readyz(t, s.base)
		if code != http.StatusServiceUnavailable || !strings.Contains(rep.Error, "supervisor gone") {
			t.Errorf("/readyz = %d %+v, want 503 with the source's error", code, rep)
		}
	})

	if l := logs.String(); !strings.Contains(l, `"not_ready":["timers","readmodels"]`) || !strings.Contains(l, "ops: ready") {
		t.Errorf("readiness changes not logged:\n%s", l)
	}
}

func TestReadyzSourceTimesOut(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hung := ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) {
		<-release // ignores its context
		return nil, nil
	})
	s := start(t, ops.Config{Readiness: hung, ReadyTimeout: 50 * time.Millisecond})
	code, rep := readyz(t, s.base)
	if code != http.StatusServiceUnavailable || !strings.Contains(rep.Error, "did not answer") {
		t.Errorf("/readyz = %d %+v, want 503 saying the source did not answer", code, rep)
	}
}

func TestMetricsSeries(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	m := ops.NewMetrics(&ops.MetricsOptions{Now: func() time.Time { return now }})
	src := &parts{}
	src.set(nil,
		ops.PartStatus{Name: "projections", Ready: true, State: ops.StateRunning},
		ops.PartStatus{Name: "timers", State: ops.StateFailing, Restarts: 2},
		// Running but not ready: the embedded server refusing a stream's
		// writes after a full disk, say.
		ops.PartStatus{Name: "jetstream", State: ops.StateRunning, Reason: "stream BANKBOOK_EVENTS: no space left on device"},
	)
	m.SetSources(ops.Sources{
		ProjectionLag: func(context.Context) (uint64, error) { return 7, nil },
		ConsumerPending: func(context.Context) (map[string]uint64, error) {
			return map[string]uint64{"projections": 3, "timers": 0}, nil
		},
		TimersPending:          func(context.Context) (uint64, error) { return 4, nil },
		DeadLetters:            func(context.Context) (uint64, error) { return 2, nil },
		StoreAccountsRemaining: func(context.Context) (uint64, error) { return 999_990, nil },
		ScanWatermarks: func(context.Context) (map[string]time.Time, error) {
			return map[string]time.Time{"1002003004": now.Add(-90 * time.Second), "never-scanned": {}}, nil
		},
		Parts: src,
		PartWork: func(context.Context) (map[string]map[string]uint64, error) {
			return map[string]map[string]uint64{"timers": {"processed": 5}}, nil
		},
		GroupCommit: func(context.Context) (map[string]uint64, error) { return map[string]uint64{"syncs": 3}, nil },
		Connections: func(context.Context) (map[string]uint64, error) {
			return map[string]uint64{"open": 12, "max": 15000}, nil
		},
	})
	m.DeclareEndpoints("deposit.record")
	m.ObserveRequest("order.submit", 200, 3*time.Millisecond)
	m.ObserveRequest("order.submit", 404, time.Millisecond)
	s := start(t, ops.Config{Readiness: src, Metrics: m})

	code, h, body := do(t, http.MethodGet, s.base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d\n%s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	for _, name := range []string{
		"bankbook_requests_total", "bankbook_request_duration_seconds", "bankbook_projection_lag_events",
		"bankbook_consumer_pending", "bankbook_timers_pending", "bankbook_dead_letters",
		"bankbook_scan_watermark_age_seconds", "bankbook_part_up", "bankbook_part_ready", "bankbook_part_restarts_total",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("/metrics has no series %s", name)
		}
	}
	wantSample(t, body, `bankbook_requests_total{code="200",endpoint="order.submit"}`, 1)
	wantSample(t, body, `bankbook_requests_total{code="404",endpoint="order.submit"}`, 1)
	wantSample(t, body, `bankbook_requests_total{code="200",endpoint="deposit.record"}`, 0)
	wantSample(t, body, `bankbook_request_duration_seconds_count{endpoint="order.submit"}`, 2)
	wantSample(t, body, `bankbook_request_duration_seconds_bucket{endpoint="order.submit",le="0.0001"}`, 0)
	wantSample(t, body, `bankbook_request_duration_seconds_bucket{endpoint="order.submit",le="0.0025"}`, 1)
	wantSample(t, body, `bankbook_request_duration_seconds_bucket{endpoint="order.submit",le="10"}`, 2)
	wantSample(t, body, `bankbook_request_duration_seconds_count{endpoint="deposit.record"}`, 0)
	wantSample(t, body, `bankbook_projection_lag_events`, 7)
	wantSample(t, body, `bankbook_consumer_pending{consumer="projections"}`, 3)
	wantSample(t, body, `bankbook_consumer_pending{consumer="timers"}`, 0)
	wantSample(t, body, `bankbook_timers_pending`, 4)
	wantSample(t, body, `bankbook_dead_letters`, 2)
	wantSample(t, body, `bankbook_store_accounts_remaining`, 999_990)
	wantSample(t, body, `bankbook_scan_watermark_age_seconds{account="1002003004"}`, 90)
	wantSample(t, body, `bankbook_part_up{part="projections"}`, 1)
	wantSample(t, body, `bankbook_part_up{part="timers"}`, 0)
	wantSample(t, body, `bankbook_part_ready{part="projections"}`, 1)
	wantSample(t, body, `bankbook_part_up{part="jetstream"}`, 1)
	wantSample(t, body, `bankbook_part_ready{part="jetstream"}`, 0)
	wantSample(t, body, `bankbook_part_restarts_total{part="timers"}`, 2)
	wantSample(t, body, `bankbook_part_work_total{outcome="processed",part="timers"}`, 5)
	wantSample(t, body, `bankbook_group_commit_total{count="syncs"}`, 3)
	wantSample(t, body, `bankbook_embedded_connections{count="open"}`, 12)
	wantSample(t, body, `bankbook_embedded_connections{count="max"}`, 15000)
	// Every source set has its error count from the first scrape on.
	for _, src := range []string{"projection_lag", "consumer_pending", "timers_pending", "dead_letters", "scan_watermarks", "parts", "part_work", "group_commit", "store_accounts", "connections"} {
		wantSample(t, body, `bankbook_metrics_source_errors_total{source="`+src+`"}`, 0)
	}
	if strings.Contains(body, "never-scanned") {
		t.Error("an account with no watermark has an age")
	}
}

func TestMetricsFailingSourceDoesNotBreakScrape(t *testing.T) {
	var logs testenv.SyncBuffer
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	m := ops.NewMetrics(&ops.MetricsOptions{Log: zerolog.New(&logs), SourceTimeout: 100 * time.Millisecond})
	m.SetSources(ops.Sources{
		ProjectionLag: func(context.Context) (uint64, error) { return 0, errors.New("stream info: timeout") },
		ConsumerPending: func(context.Context) (map[string]uint64, error) {
			return map[string]uint64{"bad\xffname": 1}, nil // not a valid label value
		},
		TimersPending: func(context.Context) (uint64, error) { <-release; return 1, nil }, // ignores its context
		DeadLetters:   func(context.Context) (uint64, error) { panic("dead letters: nil bucket") },
		Parts: ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) {
			// A duplicate name must not make the whole scrape fail.
			return []ops.PartStatus{{Name: "timers", State: ops.StateRunning}, {Name: "timers", State: ops.StateRunning}}, nil
		}),
		ScanWatermarks: func(context.Context) (map[string]time.Time, error) {
			return map[string]time.Time{"1002003004": time.Now()}, nil
		},
	})
	s := start(t, ops.Config{Readiness: &parts{}, Metrics: m})

	code, first := get(t, s.base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d\n%s", code, first)
	}
	for _, name := range []string{"bankbook_projection_lag_events", "bankbook_consumer_pending", "bankbook_timers_pending", "bankbook_dead_letters"} {
		if _, ok := sample(first, name); ok || strings.Contains(first, "\n"+name+"{") {
			t.Errorf("failed source's series %s is in the scrape", name)
		}
	}
	wantSample(t, first, `bankbook_part_up{part="timers"}`, 1)
	if _, ok := sample(first, `bankbook_scan_watermark_age_seconds{account="1002003004"}`); !ok {
		t.Error("a working source's series is missing when others fail")
	}
	if !strings.Contains(first, "go_goroutines") {
		t.Error("runtime series missing when sources fail")
	}

	// The failures are counted, in the scrape that left their series out
	// and the next, and logged.
	_, second := get(t, s.base+"/metrics")
	for _, src := range []string{"projection_lag", "consumer_pending", "timers_pending", "dead_letters"} {
		series := `bankbook_metrics_source_errors_total{source="` + src + `"}`
		wantSample(t, first, series, 1)
		if v, ok := sample(second, series); !ok || v != 2 {
			t.Errorf("%s = %v (present %v) in the second scrape, want 2", series, v, ok)
		}
		if !strings.Contains(logs.String(), `"source":"`+src+`"`) {
			t.Errorf("failure of source %s not logged", src)
		}
	}
	wantSample(t, second, `bankbook_metrics_source_errors_total{source="scan_watermarks"}`, 0)
}

func TestPprof(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		want    int
	}{
		{"off by default", false, http.StatusNotFound},
		{"on when enabled", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, ops.Config{Readiness: &parts{}, EnablePprof: tc.enabled})
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
				if code, _ := get(t, s.base+path); code != tc.want {
					t.Errorf("GET %s = %d, want %d", path, code, tc.want)
				}
			}
		})
	}
}

func TestRunStops(t *testing.T) {
	t.Run("in-flight request is answered, then Run returns nil", func(t *testing.T) {
		entered := make(chan struct{}, 1)
		slow := ops.ReadinessFunc(func(ctx context.Context) ([]ops.PartStatus, error) {
			entered <- struct{}{}
			<-ctx.Done() // a well-behaved source: ends with its context
			return nil, ctx.Err()
		})
		s := start(t, ops.Config{Readiness: slow, ReadyTimeout: time.Minute})
		answered := make(chan int, 1)
		go func() {
			resp, err := http.Get(s.base + "/readyz")
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
		<-entered
		if err := s.stopped(t); err != nil {
			t.Errorf("Run = %v, want nil after its context ended", err)
		}
		if code := <-answered; code != http.StatusServiceUnavailable {
			t.Errorf("in-flight /readyz got %d, want a 503 answer", code)
		}
		if s.Addr() != nil {
			t.Error("Addr is still set after Run returned")
		}
	})

	t.Run("a request that never ends is cut at the shutdown bound", func(t *testing.T) {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		entered := make(chan struct{}, 1)
		m := ops.NewMetrics(&ops.MetricsOptions{SourceTimeout: time.Hour})
		m.SetSources(ops.Sources{DeadLetters: func(context.Context) (uint64, error) {
			entered <- struct{}{}
			<-release // ignores its context
			return 0, nil
		}})
		s := start(t, ops.Config{Readiness: &parts{}, Metrics: m, ShutdownTimeout: 100 * time.Millisecond})
		go func() {
			if resp, err := http.Get(s.base + "/metrics"); err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		if err := s.stopped(t); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func TestRunAgain(t *testing.T) {
	s, err := ops.New(ops.Config{Listen: "127.0.0.1:0", Readiness: &parts{}})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		testenv.Eventually(t, 5*time.Second, "the server to listen", func() bool { return s.Addr() != nil })
		if code, _ := get(t, "http://"+s.Addr().String()+"/healthz"); code != http.StatusOK {
			t.Errorf("round %d: /healthz = %d", round, code)
		}
		if err := s.Run(ctx); !errors.Is(err, ops.ErrRunning) {
			t.Errorf("round %d: second concurrent Run = %v, want ErrRunning", round, err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Run = %v", round, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Run did not return", round)
		}
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s, err := ops.New(ops.Config{Listen: ln.Addr().String(), Readiness: &parts{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ops.ErrListen) {
		t.Errorf("Run on a taken address = %v, want ErrListen", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ready := &parts{}
	for _, tc := range []struct {
		name string
		cfg  ops.Config
		ok   bool
	}{
		{"defaults", ops.Config{Readiness: ready}, true},
		{"host and port", ops.Config{Listen: "0.0.0.0:8080", Readiness: ready}, true},
		{"name and free port", ops.Config{Listen: "localhost:0", Readiness: ready}, true},
		{"ipv6", ops.Config{Listen: "[::1]:9000", Readiness: ready}, true},
		{"all interfaces", ops.Config{Listen: ":8080", Readiness: ready}, true},
		{"no port", ops.Config{Listen: "127.0.0.1", Readiness: ready}, false},
		{"bad port", ops.Config{Listen: "127.0.0.1:http-ish", Readiness: ready}, false},
		{"port too big", ops.Config{Listen: "127.0.0.1:70000", Readiness: ready}, false},
		{"bad host", ops.Config{Listen: "ex ample:80", Readiness: ready}, false},
		{"no readiness", ops.Config{}, false},
		{"negative ready timeout", ops.Config{Readiness: ready, ReadyTimeout: -time.Second}, false},
		{"negative shutdown timeout", ops.Config{Readiness: ready, ShutdownTimeout: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, ops.ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", err)
			}
			if _, nerr := ops.New(tc.cfg); (nerr == nil) != tc.ok {
				t.Errorf("New = %v, want ok %v", nerr, tc.ok)
			}
		})
	}
}

func TestReadinesses(t *testing.T) {
	a := &parts{}
	a.set(nil, ops.PartStatus{Name: "a", Ready: true})
	b := &parts{}
	b.set(nil, ops.PartStatus{Name: "b"})
	got, err := ops.Readinesses(a, b).Ready(context.Background())
	if err != nil || len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Errorf("Readinesses = %+v, %v; want a then b", got, err)
	}
	b.set(errors.New("b broke"))
	if _, err := ops.Readinesses(a, b).Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "b broke") {
		t.Errorf("Readinesses error = %v, want b's", err)
	}
}

func TestListenBindsBeforeRun(t *testing.T) {
	srv, err := ops.New(ops.Config{Listen: "127.0.0.1:0", Readiness: ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { return nil, nil })})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if addr == nil {
		t.Fatal("no address after Listen")
	}
	// The address is taken: a second server on it fails at Listen.
	other, err := ops.New(ops.Config{Listen: addr.String(), Readiness: ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { return nil, nil })})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Listen(context.Background()); !errors.Is(err, ops.ErrListen) {
		t.Fatalf("second Listen on %s: %v, want ErrListen", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testenv.CheckFor(t, 5*time.Second, func() error {
		resp, err := http.Get("http://" + addr.String() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A scraper that asks for OpenMetrics (as Prometheus does) gets it; one
// that does not gets the Prometheus text format.
func TestMetricsOpenMetricsWhenAsked(t *testing.T) {
	m := ops.NewMetrics(nil)
	m.DeclareEndpoints("order.submit")
	s := start(t, ops.Config{Readiness: &parts{}, Metrics: m})

	req, err := http.NewRequest(http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("asked for OpenMetrics, Content-Type = %q", ct)
	}
	if body := string(b); !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("asked for OpenMetrics, the body does not end with # EOF:\n...%s", body[max(0, len(body)-200):])
	}

	code, h, body := do(t, http.MethodGet, s.base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d\n%s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("not asked for OpenMetrics, Content-Type = %q", ct)
	}
}
