package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
)

// Server serves /healthz, /readyz, /metrics and, when enabled,
// /debug/pprof/, the ops console (/console/) and webhooks (/webhooks/) over HTTP. Create it with New and run it with Run.
type Server struct {
	cfg     Config
	handler http.Handler
	started time.Time

	mu      sync.Mutex
	running bool
	addr    net.Addr
	bound   *connLimit // bound by Listen, served by the next Run

	readyMu   sync.Mutex
	lastReady *bool // outcome of the previous /readyz, to log changes only
}

// New checks cfg and returns a Server that does not listen yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Server{cfg: cfg, started: time.Now()}
	s.handler = s.routes()
	return s, nil
}

// Metrics is the Metrics /metrics serves (the configured one, or the one New
// made when none was given).
func (s *Server) Metrics() *Metrics { return s.cfg.Metrics }

// Handler is the server's routing, for mounting elsewhere or testing
// without a socket.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address Run is listening on, or nil when it is not. With
// port 0 in Config.Listen this is how the chosen port is found.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// A "GET" pattern also serves HEAD; any other method on these paths is
	// answered 405 with an Allow header by the mux.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	if s.cfg.EnablePprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol) // go tool pprof posts addresses here
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if s.cfg.Console != nil {
		// The console's own routes all start with ConsolePath; the mux
		// redirects /console to /console/.
		mux.Handle(ConsolePath, s.cfg.Console)
	}
	if s.cfg.Webhooks != nil {
		mux.Handle(WebhooksPath, s.cfg.Webhooks)
	}
	return mux
}

// Listen binds the listen address now, so that a port in use is an error
// at start rather than a part that keeps failing; the next Run serves on
// it. Without Listen, Run binds the address itself.
func (s *Server) Listen(ctx context.Context) error {
	ln, err := listen(ctx, s.cfg.Listen)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound != nil {
		_ = ln.Close()
		return ErrRunning
	}
	s.bound, s.addr = ln, ln.Addr()
	return nil
}

// Close releases an address bound by Listen that no Run has served (an
// engine that failed to start). A Run in progress is ended by its context.
func (s *Server) Close() error {
	s.mu.Lock()
	ln := s.bound
	s.bound = nil
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	return ln.Close()
}

// MaxConns is how many connections the server holds open at once. When
// they are all taken and another comes, the one idle longest between
// requests is closed to make room (connLimit); with none idle, the newcomer
// waits for one to close, and the next ones in the kernel's accept queue. The embedded
// nats-server shares the process's open-file limit, and its file store
// fails every later write to a stream once it could not open a block file
// (until a restart): a flood of connections to this port, which needs no
// credentials, must not use up the descriptors the event stream needs.
const MaxConns = 256

// requestReadTimeout bounds reading a request, headers and body: while
// every place is at work on one, that is how long each can keep a
// newcomer waiting.
const requestReadTimeout = 5 * time.Second

// maxHeaderBytes bounds a request's headers (net/http allows 4 KiB more):
// a browser's cookies and a scraper's headers take a few. net/http's
// default of 1 MiB let MaxConns requests that need no credentials, each
// renewed every requestReadTimeout, hold about 600 MB of the process's
// memory.
const maxHeaderBytes = 64 << 10

func listen(ctx context.Context, addr string) (*connLimit, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrListen, addr, err)
	}
	return newConnLimit(ln, MaxConns), nil
}

// Run listens on Config.Listen and serves until ctx ends. It then stops
// accepting, waits up to Config.ShutdownTimeout for requests in flight
// (their contexts are cancelled, so a readiness check or a CPU profile ends
// early), closes whatever is still open and returns nil. It returns an error
// matching ErrListen when the address cannot be bound, ErrRunning when the
// server is already running, and any other error when serving stops on its
// own. After Run returns it may be called again, so a supervisor can restart
// it.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.addr = false, nil
		s.mu.Unlock()
	}()

	s.mu.Lock()
	ln := s.bound
	s.bound = nil
	s.mu.Unlock()
	if ln == nil {
		var err error
		if ln, err = listen(ctx, s.cfg.Listen); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: requestReadTimeout,
		// A request's body (a console form of at most 64 KiB; nothing
		// elsewhere, which the server still reads to reuse the
		// connection) must be in within the same time as its headers: a
		// body sent slowly holds its place no longer than slow headers.
		// It bounds reading the request only (the server clears it once
		// the body is in): /metrics and pprof profiles are answered, not
		// read.
		ReadTimeout:    requestReadTimeout,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: maxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return ctx },
		ErrorLog:       log.New(zerologWriter{s.cfg.Log}, "", 0),
		ConnState:      ln.track,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.cfg.Log.Info().Str("addr", ln.Addr().String()).Bool("pprof", s.cfg.EnablePprof).Msg("ops: serving /healthz, /readyz, /metrics")

	select {
	case err := <-served:
		return fmt.Errorf("ops: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.cfg.Log.Warn().Err(err).Stringer("shutdown_timeout", s.cfg.ShutdownTimeout).Msg("ops: requests still in flight at the shutdown bound; closing their connections")
		_ = srv.Close()
	}
	<-served // http.ErrServerClosed, at once: Shutdown closed the listener
	s.cfg.Log.Info().Msg("ops: stopped")
	return nil
}

// healthReport is the /healthz body.
type healthReport struct {
	Status    string `json:"status"`
	StartedAt string `json:"started_at"` // domain.TimeLayout
	UptimeS   int64  `json:"uptime_s"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthReport{
		Status:    "alive",
		StartedAt: domain.FormatTime(s.started),
		UptimeS:   int64(time.Since(s.started) / time.Second),
	})
}

// ReadyReport is the /readyz body.
type ReadyReport struct {
	// Status is "ready" (HTTP 200) or "not_ready" (HTTP 503).
	Status string `json:"status"`
	// NotReady names each part that is not ready; its entry in Parts says
	// why.
	NotReady []string `json:"not_ready,omitempty"`
	// Error is set when the readiness source itself failed or timed out.
	Error string `json:"error,omitempty"`
	// Parts is every part's status, as the readiness source reported it.
	Parts []PartStatus `json:"parts"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	rep := s.check(ctx)
	code := http.StatusOK
	if rep.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	s.noteReadiness(rep)
	writeJSON(w, code, rep)
}

// check asks the readiness source, bounded by ctx.
func (s *Server) check(ctx context.Context) ReadyReport {
	rep := Check(ctx, s.cfg.Readiness)
	if rep.Error != "" && ctx.Err() != nil {
		rep.Error = fmt.Sprintf("readiness source did not answer within %s: %v", s.cfg.ReadyTimeout, ctx.Err())
	}
	return rep
}

// Check asks r for every part's status, bounded by ctx, and returns the
// report /readyz answers with: Status "ready" only when r answered without
// an error and every part is Ready; each part that is not is named in
// NotReady with a reason. A source that panics or does not answer by the
// time ctx ends makes the report not ready. The ops console shows the
// same report in-process with it.
func Check(ctx context.Context, r Readiness) ReadyReport {
	type result struct {
		parts []PartStatus
		err   error
	}
	done := make(chan result, 1) // buffered: a late source never blocks
	go func() {
		var res result
		defer func() {
			if p := recover(); p != nil {
				res = result{err: fmt.Errorf("readiness source panicked: %v", p)}
			}
			done <- res
		}()
		res.parts, res.err = r.Ready(ctx)
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = fmt.Errorf("readiness source did not answer: %w", ctx.Err())
	}
	rep := ReadyReport{Status: "ready", Parts: slices.Clone(res.parts)}
	if rep.Parts == nil {
		rep.Parts = []PartStatus{}
	}
	if res.err != nil {
		rep.Status, rep.Error = "not_ready", res.err.Error()
	}
	for i := range rep.Parts {
		p := &rep.Parts[i]
		if p.Ready {
			continue
		}
		rep.Status = "not_ready"
		rep.NotReady = append(rep.NotReady, p.Name)
		if p.Reason == "" {
			switch {
			case p.LastError != "":
				p.Reason = p.LastError
			case p.State != "":
				p.Reason = "state " + p.State
			default:
				p.Reason = "not ready"
			}
		}
	}
	return rep
}

// noteReadiness logs when readiness changes, not on every probe.
func (s *Server) noteReadiness(rep ReadyReport) {
	ready := rep.Status == "ready"
	s.readyMu.Lock()
	changed := s.lastReady == nil || *s.lastReady != ready
	s.lastReady = &ready
	s.readyMu.Unlock()
	if !changed {
		return
	}
	if ready {
		s.cfg.Log.Info().Int("parts", len(rep.Parts)).Msg("ops: ready")
		return
	}
	ev := s.cfg.Log.Warn().Strs("not_ready", rep.NotReady)
	if rep.Error != "" {
		ev = ev.Str("error", rep.Error)
	}
	ev.Msg("ops: not ready")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"status":"error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// zerologWriter carries net/http's own error lines (TLS handshakes, broken
// connections) into zerolog.
type zerologWriter struct{ log zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	z.log.Warn().Str("error", msg).Msg("ops: http server")
	return len(p), nil
}
