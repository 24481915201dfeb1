package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Part is a named long-running piece of work.
type Part struct {
	// Name identifies the part in statuses, logs and metrics.
	Name string
	// Run does the work until ctx ends. It should then return promptly; any
	// return before that counts as a failure and the part is started again.
	Run func(ctx context.Context) error
	// ReportsReady makes the part not ready after each start until it calls
	// From(ctx).SetReady(true, ...). Without it the part is ready whenever it
	// runs.
	ReportsReady bool
}

// Supervisor runs registered parts and restarts those that return early.
// It is safe for concurrent use.
type Supervisor struct {
	cfg Config

	mu      sync.Mutex
	parts   []*part // in registration order
	ctx     context.Context
	cancel  context.CancelFunc
	stopped bool
}

type part struct {
	Part
	done chan struct{} // closed when the part's goroutine ends; nil before Start
	run  int           // the current run; a Handle of an older run is ignored
	st   Status
	// failures are the current run's sources whose last report was an
	// error (Handle.ReportFrom).
	failures map[string]failure
}

// New returns a Supervisor with no parts.
func New(cfg Config) (*Supervisor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("supervisor config: %w", err)
	}
	return &Supervisor{cfg: cfg}, nil
}

// Add registers a part. After Start it is started at once.
func (s *Supervisor) Add(p Part) error {
	if p.Name == "" || p.Run == nil {
		return errors.New("supervisor: a part needs a name and a Run")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	for _, q := range s.parts {
		if q.Name == p.Name {
			return fmt.Errorf("%w: %s", ErrDuplicate, p.Name)
		}
	}
	q := &part{Part: p, st: Status{Name: p.Name, State: Starting, Since: s.cfg.Now()}}
	s.parts = append(s.parts, q)
	if s.ctx != nil {
		s.start(q)
	}
	return nil
}

// Start starts every registered part. The parts' contexts derive from ctx:
// its values reach them, and its end stops them as Stop does (without
// waiting). Start after Start does nothing.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.ctx != nil {
		return nil
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	for _, p := range s.parts {
		s.start(p)
	}
	return nil
}

// start runs p's loop. s.mu is held.
func (s *Supervisor) start(p *part) {
	p.done = make(chan struct{})
	go s.loop(s.ctx, p)
}

// loop runs p until ctx ends, restarting it with backoff.
func (s *Supervisor) loop(ctx context.Context, p *part) {
	defer close(p.done)
	backoff := s.cfg.MinBackoff
	for {
		h := s.begin(p)
		began := time.Now()
		err := call(context.WithValue(ctx, handleKey{}, h), p.Run)
		if ctx.Err() != nil {
			s.end(p, err)
			return
		}
		if err == nil {
			err = ErrReturned
		}
		if time.Since(began) >= s.cfg.ResetAfter {
			backoff = s.cfg.MinBackoff
		}
		s.failed(p, err, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.end(p, nil)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// call runs run, turning a panic into a *PanicError.
func call(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return run(ctx)
}

// begin marks p running for a new run and returns the run's Handle.
func (s *Supervisor) begin(p *part) *Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.run > 0 {
		p.st.Restarts++
	}
	p.run++
	p.failures = nil
	p.st.State, p.st.Since = Running, s.cfg.Now()
	p.st.Ready, p.st.Detail, p.st.NextStart = !p.ReportsReady, "", time.Time{}
	return &Handle{s: s, p: p, run: p.run}
}

// failed records that p returned early with err and starts again in retryIn.
func (s *Supervisor) failed(p *part, err error, retryIn time.Duration) {
	s.mu.Lock()
	now := s.cfg.Now()
	if p.st.State != Failing {
		p.st.Since = now
	}
	p.st.State, p.st.Ready = Failing, false
	p.st.LastError, p.st.LastErrorAt = Text(err), now
	p.st.NextStart = now.Add(retryIn)
	p.run++ // the run is over: its Handle is ignored from now on
	restarts := p.st.Restarts
	s.mu.Unlock()

	ev := s.cfg.Log.Error().Err(err).Str("part", p.Name).Int("restarts", restarts).Str("retry_in", retryIn.String())
	if pe, ok := errors.AsType[*PanicError](err); ok {
		ev = ev.Str("stack", string(pe.Stack))
	}
	ev.Msg("part returned early; starting it again")
}

// end records that p stopped.
func (s *Supervisor) end(p *part, err error) {
	s.mu.Lock()
	p.run++
	p.st.State, p.st.Since, p.st.Ready, p.st.NextStart = Stopped, s.cfg.Now(), false, time.Time{}
	if err != nil && !errors.Is(err, context.Canceled) {
		p.st.LastError, p.st.LastErrorAt = Text(err), p.st.Since
	}
	s.mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		s.cfg.Log.Warn().Err(err).Str("part", p.Name).Msg("part stopped with an error")
	}
}

// Statuses returns a snapshot of every part, in registration order.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.parts))
	for i, p := range s.parts {
		out[i] = p.st
	}
	return out
}

// Status returns a snapshot of the named part.
func (s *Supervisor) Status(name string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		if p.Name == name {
			return p.st, true
		}
	}
	return Status{}, false
}

// Stop cancels every part and waits for them until ctx ends. It returns nil
// when all stopped, or a *StopError naming the parts still running when ctx
// ended (they keep their goroutines; their status stays until they return).
// Stop may be called more than once; each call waits again.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
	}
	var waiting []*part
	for _, p := range s.parts {
		if p.done == nil {
			p.st.State, p.st.Since, p.st.Ready = Stopped, s.cfg.Now(), false
			continue
		}
		waiting = append(waiting, p)
	}
	s.mu.Unlock()

	var late []string
	for _, p := range waiting {
		select {
		case <-p.done:
			continue
		case <-ctx.Done():
		}
		select {
		case <-p.done:
		default:
			late = append(late, p.Name)
		}
	}
	if len(late) > 0 {
		s.cfg.Log.Error().Str("parts", strings.Join(late, ",")).Msg("parts did not stop in time")
		return &StopError{Parts: late}
	}
	return nil
}
