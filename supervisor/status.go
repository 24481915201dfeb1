package supervisor

import (
	"context"
	"time"
)

// State is where a part is in its life.
type State string

const (
	// Starting: registered, not yet started.
	Starting State = "starting"
	// Running: Run is in progress and the part reports no failure.
	Running State = "running"
	// Failing: Run returned early and waits to be started again, or the
	// part reported a failure through its Handle while it keeps running.
	Failing State = "failing"
	// Stopped: Run returned after Stop (or after Start's context ended).
	Stopped State = "stopped"
)

// Status is a snapshot of one part.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Since is when the part entered State.
	Since time.Time `json:"since"`
	// Ready is false while a running part says it cannot serve yet (for
	// example a projection catching up). A part registered without
	// ReportsReady is ready whenever it runs.
	Ready bool `json:"ready"`
	// Detail is the part's own note on its health ("catching up: 1200 behind").
	Detail string `json:"detail,omitempty"`
	// LastError is the last error the part returned or reported; while the
	// part is Failing, the newest error of a source still failing
	// (Handle.ReportFrom).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Restarts counts how often the part was started again after returning early.
	Restarts int `json:"restarts"`
	// NextStart is when a failing part that returned early is started again.
	NextStart time.Time `json:"next_start,omitzero"`
}

// OK reports whether the part is running, reports no failure, and is ready:
// what /readyz asks of every part.
func (s Status) OK() bool { return s.State == Running && s.Ready }

// Handle lets a running part report its own health. From(ctx) returns it;
// all methods are safe for concurrent use, and a nil Handle (a part run
// outside a supervisor) ignores every call. A Handle belongs to one run of a
// part: calls after that run returned are ignored.
type Handle struct {
	s   *Supervisor
	p   *part
	run int
}

type handleKey struct{}

// From returns the Handle of the part whose context ctx is, or nil (which
// ignores every call) outside a supervisor.
func From(ctx context.Context) *Handle {
	h, _ := ctx.Value(handleKey{}).(*Handle)
	return h
}

// SetReady says whether the part can serve, with a detail line for /readyz
// ("catching up: 1200 behind"; "" clears it).
func (h *Handle) SetReady(ready bool, detail string) {
	if h == nil {
		return
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.p.run != h.run {
		return
	}
	if h.p.st.Ready != ready {
		h.s.cfg.Log.Info().Str("part", h.p.Name).Bool("ready", ready).Str("detail", detail).Msg("part readiness changed")
	}
	h.p.st.Ready, h.p.st.Detail = ready, detail
}

// Report says how the part's work is going while it keeps running: a
// non-nil err makes it Failing (since the first such report) with err as its
// last error; nil makes it Running again. It is ReportFrom with the source
// "": a part with several sources of trouble reports each with ReportFrom.
func (h *Handle) Report(err error) { h.ReportFrom("", err) }

// ReportFrom says how one source of the part's work is going (a consumer,
// the dead letters it records, ...) while the part keeps running. The part
// is Failing while the last report of any source is an error, since the
// first such report, and Running once every source has reported nil: one
// source's recovery does not hide another's failure. While Failing, the
// part's LastError is the newest error of a source still failing.
func (h *Handle) ReportFrom(source string, err error) {
	if h == nil {
		return
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	p := h.p
	if p.run != h.run || p.st.State == Stopped {
		return
	}
	now := h.s.cfg.Now()
	if err == nil {
		if _, ok := p.failures[source]; !ok {
			return
		}
		delete(p.failures, source)
		if len(p.failures) > 0 {
			newest := failure{}
			for _, f := range p.failures {
				if !f.at.Before(newest.at) {
					newest = f
				}
			}
			p.st.LastError, p.st.LastErrorAt = newest.err, newest.at
			return
		}
		if p.st.State == Failing {
			p.st.State, p.st.Since = Running, now
			h.s.cfg.Log.Info().Str("part", p.Name).Msg("part recovered")
		}
		return
	}
	if p.failures == nil {
		p.failures = map[string]failure{}
	}
	p.failures[source] = failure{err: Text(err), at: now}
	if p.st.State != Failing {
		p.st.State, p.st.Since = Failing, now
		h.s.cfg.Log.Warn().Err(err).Str("part", p.Name).Str("source", source).Msg("part failing")
	}
	p.st.LastError, p.st.LastErrorAt = Text(err), now
}

// failure is a source's open failure.
type failure struct {
	err string
	at  time.Time
}
