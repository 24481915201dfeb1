package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/projections"
)

// Observer is told about every answered request (ops.Metrics).
type Observer interface {
	ObserveRequest(endpoint string, code int, d time.Duration)
}

// Config wires the server to the rest of the engine.
type Config struct {
	Conn     *nats.Conn
	Orders   *commands.Orders
	Deposits *commands.Deposits
	Wallets  *commands.Wallets
	Links    *commands.Links
	Payouts  *commands.Payouts
	// PayoutStatus asks the firm-banking provider for a payout's status:
	// "pending", "settled" or "failed", or "" if it does not know the
	// payout. Nil without a provider.
	PayoutStatus func(ctx context.Context, id string) (string, error)
	// PayoutStatusLag is how long the provider may take to show a transfer
	// it accepted (--firmbank-status-lag).
	PayoutStatusLag time.Duration
	Events          *eventstore.Store
	Idempotency     *idempotency.Store
	ReadModels      *projections.Store
	Runner          *projections.Runner
	// DeadLetters is the work background parts gave up on.
	DeadLetters DeadLetters
	// ReadModelsReady says why the read models cannot answer yet (nil once
	// they have caught up after the engine started); until then read-model
	// queries answer 503. Nil: always ready.
	ReadModelsReady func() error
	// BankSim, when set, serves bankbook.sim.bank.transfer.
	BankSim BankSim
	// Notifications records redrives; nil answers notify.redrive 503.
	Notifications *commands.Notifications
	// Limiter answers bankbook.q.notify.limiter; nil answers it 503.
	Limiter Limiter
	// ChatSim, when set, serves bankbook.sim.chat.messages.
	ChatSim ChatSim
	// Observer, when set, is told about every answered request.
	Observer Observer
	Log      zerolog.Logger
	// LockID is the ID of this engine's lock on its data directory
	// (datadir.Holder), reported by bankbook.q.projection.status.
	LockID string
	// Tenant is the tenant this engine serves on a shared deployment
	// (auth.Tenant); it is stripped from the requester's account name.
	Tenant string
	// MaxInFlight bounds the requests executing at once. Default 1024.
	MaxInFlight int
	// MaxPerIdentity bounds the requests one identity (the account in
	// the request's subject, auth.AccountOf) has executing at once on this
	// instance: beyond it a request is answered 429 throttled at once,
	// unexecuted, so that one identity's slow or many requests leave the
	// other identities slots. 0: no bound.
	MaxPerIdentity int
	// MaxWaiting bounds the requests of one endpoint waiting for a slot
	// (delivered to this instance, not dispatched yet): beyond it a request
	// is answered 503 overloaded at once, unexecuted, so that a flood
	// neither grows the engine's memory without bound nor has everyone's
	// requests executed long after their clients gave up. Default
	// MaxInFlight.
	MaxWaiting int
	// MaxWaitingBytes bounds the bytes of those requests likewise: under
	// the client library's own limit (64 MiB a subscription), beyond which
	// it drops requests unanswered. Default 32 MiB.
	MaxWaitingBytes int
	// CommandTimeout bounds one command. Default 10s.
	CommandTimeout time.Duration
	// QueryWait bounds how long a query waits for the read models to apply
	// its min_seq (or this instance's own writes). Default 2s.
	QueryWait time.Duration
	// Durable, when set (group commit), is waited for before a command
	// replies: the command's own writes are durable already, but what it
	// read of other commands' writes may not be yet, and its answer must
	// not show what a crash could take back (groupcommit.Syncer.WaitDirty).
	Durable func(context.Context) error
}

// Server is the running micro service.
type Server struct {
	cfg    Config
	routes map[string]route // by endpoint name
	svc    *service
	slots  chan struct{}
	// lastDispatch is the UnixNano of the last request handed to a goroutine;
	// Stop waits for a quiet period after the subscriptions are drained.
	lastDispatch atomic.Int64

	mu      sync.Mutex
	closing bool          // Stop has drained: refuse what still arrives
	active  int           // requests being handled
	idle    chan struct{} // closed when closing and active reaches 0
	// written is the highest stream sequence this instance appended.
	written atomic.Uint64
	// caughtUp latches ReadModelsReady's first nil.
	caughtUp atomic.Bool
	// completing holds the successes this instance has answered whose
	// idempotency record is still being written (completion).
	completing sync.Map

	idMu       sync.Mutex
	byIdentity map[string]int // requests executing, per account (MaxPerIdentity)
}

// New checks the configuration and returns a server; Start serves.
func New(cfg Config) (*Server, error) {
	if cfg.Conn == nil || cfg.Orders == nil || cfg.Deposits == nil || cfg.Wallets == nil || cfg.Links == nil || cfg.Payouts == nil || cfg.Events == nil || cfg.Idempotency == nil || cfg.ReadModels == nil || cfg.Runner == nil || cfg.DeadLetters == nil {
		return nil, errors.New("server: Conn, Orders, Deposits, Wallets, Links, Payouts, Events, Idempotency, ReadModels, Runner and DeadLetters are required")
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = cfg.MaxInFlight
	}
	if cfg.MaxWaitingBytes == 0 {
		cfg.MaxWaitingBytes = 32 << 20
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.QueryWait == 0 {
		cfg.QueryWait = 2 * time.Second
	}
	s := &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), routes: map[string]route{}, byIdentity: map[string]int{}}
	var infos []api.Info
	for _, r := range s.routeTable() {
		if r.off {
			continue
		}
		s.routes[r.info.Name] = r
		infos = append(infos, r.info)
	}
	s.svc = newService("bankbook payments engine: commands and queries", infos)
	return s, nil
}

// Endpoints lists the endpoints this server serves, as $SRV.INFO reports them.
func (s *Server) Endpoints() []api.Info {
	var infos []api.Info
	for _, e := range s.svc.endpoints {
		infos = append(infos, e.info)
	}
	return infos
}

// route binds an endpoint to its handler.
type route struct {
	info   api.Info
	handle func(ctx context.Context, r *request) reply
	// off leaves the endpoint out: a simulator that is not running.
	off bool
	// forward: a read-model query, which an instance that has caught up
	// also serves for the instances that have not (forward.go).
	forward bool
}

// request is an immutable copy of what a handler needs from a message.
type request struct {
	subject string
	reply   string
	data    []byte
	headers nats.Header
	// forwarded: passed on by an instance catching up; never passed on again.
	forwarded bool
}

// reply is what a handler answers: a JSON body or an error, plus headers.
type reply struct {
	body    []byte
	err     *api.Error
	headers nats.Header
	// cause is what err was made of, logged with a 5xx (never sent).
	cause error
	// after, if set, runs once the reply is sent, before the request
	// counts as finished (Stop waits for it): the bookkeeping a client
	// need not wait for.
	after func()
	// correlation is the command's correlation ID (generated when the
	// request carried none), for the log of a failure.
	correlation string
}

// failed answers err, mapped to its API status and code (toAPIError); the
// error itself is kept as the cause of a 5xx for the log.
func failed(err error) reply { return reply{err: toAPIError(err), cause: err} }

// Start subscribes the service's monitoring verbs and endpoints.
func (s *Server) Start() error {
	if err := s.svc.start(s.cfg.Conn, s.dispatch); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	// Make sure the server has the subscriptions before anyone is told we serve.
	if err := s.cfg.Conn.Flush(); err != nil {
		s.svc.stop()
		return fmt.Errorf("server: flush subscriptions: %w", err)
	}
	go s.serveForwardedOnceCaughtUp()
	return nil
}

// dispatch runs each request on its own goroutine, bounded by MaxInFlight.
func (s *Server) dispatch(ep *serviceEndpoint, m *nats.Msg) {
	rt := s.routes[ep.info.Name]
	req := &request{subject: m.Subject, reply: m.Reply, data: m.Data, headers: m.Header, forwarded: strings.HasPrefix(m.Subject, forwardPrefix)}
	start := time.Now()
	if !s.enter() {
		s.respond(req, ep, start, reply{err: &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "the engine is shutting down; retry"}})
		return
	}
	s.lastDispatch.Store(time.Now().UnixNano())
	if n, bytes := ep.waiting(); n > s.cfg.MaxWaiting || bytes > s.cfg.MaxWaitingBytes {
		// Shed: nothing executed, the client's retry (same key) is safe.
		s.respond(req, ep, start, reply{err: &api.Error{Status: 503, Code: api.CodeOverloaded,
			Message: fmt.Sprintf("overloaded: %d requests wait on this instance; retry in a moment", n),
			Details: map[string]any{"waiting": n, "retry_after_s": 1}}})
		s.leave()
		return
	}
	account := auth.AccountOf(strings.TrimPrefix(m.Subject, forwardPrefix))
	if n, ok := s.admit(account); !ok {
		// Its share is taken: nothing executed, the retry (same key) is safe.
		s.respond(req, ep, start, reply{err: &api.Error{Status: 429, Code: api.CodeThrottled,
			Message: fmt.Sprintf("throttled: this identity has %d requests executing on this instance, its share; retry in a moment", n),
			Details: map[string]any{"in_flight": n, "retry_after_s": 1}}})
		s.leave()
		return
	}
	s.slots <- struct{}{}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Log.Error().Interface("panic", p).Str("subject", ep.info.Subject).Msg("handler panicked")
				s.respond(req, ep, start, reply{err: &api.Error{Status: 500, Code: api.CodeInternal, Message: "internal error"}})
			}
			<-s.slots
			s.release(account)
			s.leave()
		}()
		timeout := s.cfg.CommandTimeout
		if ep.info.Kind == api.KindQuery {
			timeout = s.cfg.QueryWait + 5*time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		rep := rt.handle(ctx, req)
		s.respond(req, ep, start, rep)
		if rep.after != nil {
			s.runAfter(ep, rep.after)
		}
	}()
}

// runAfter runs a reply's bookkeeping; the reply is out, so a panic there
// is logged, not answered a second time.
func (s *Server) runAfter(ep *serviceEndpoint, after func()) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Log.Error().Interface("panic", p).Str("subject", ep.info.Subject).Msg("bookkeeping after a reply panicked")
		}
	}()
	after()
}

// logFailure logs a 5xx reply with its cause: a 503 (retryable by design:
// shutting down, NATS away or electing a leader) as a warning, not caught
// up at debug, any other 5xx as an error. Nothing else is logged here.
func (s *Server) logFailure(subject, correlationID string, rep reply) {
	if rep.err == nil || rep.err.Status < 500 {
		return
	}
	ev := s.cfg.Log.Error()
	switch {
	case rep.err.Code == api.CodeNotCaughtUp, rep.err.Code == api.CodeOverloaded:
		// The client asked for a sequence the read models had not applied
		// in time, or came in a flood: its retry, not an engine fault (the
		// projection lag and bankbook_requests_total{code="503"} are
		// metrics). Any client can cause these, so they stay at debug.
		ev = s.cfg.Log.Debug()
	case rep.err.Status == 503, rep.err.Code == api.CodeReplyTooLarge:
		// Retryable by design, or a page the client chose too large.
		ev = s.cfg.Log.Warn()
	}
	ev.Err(rep.cause).Str("subject", subject).Str("code", rep.err.Code).Str("correlation_id", correlationID).Msg(rep.err.Message)
}

// respond publishes the reply, with micro's error headers
// (Nats-Service-Error-Code, Nats-Service-Error) on an error, and counts it.
func (s *Server) respond(req *request, ep *serviceEndpoint, start time.Time, rep reply) {
	rep = fit(rep, s.cfg.Conn.MaxPayload(), ep.info.Kind == api.KindCommand)
	msg := nats.NewMsg(req.reply)
	for k, v := range rep.headers {
		msg.Header[k] = v
	}
	code := 200
	if rep.err != nil {
		code = rep.err.Status
		correlation := rep.correlation
		if correlation == "" {
			correlation = req.headers.Get(api.HeaderCorrelationID)
		}
		if !idempotency.ValidKey(correlation) {
			correlation = "" // a query's is not checked: never log what a client may put there
		}
		s.logFailure(ep.info.Subject, correlation, rep)
		msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(code))
		msg.Header.Set(micro.ErrorHeader, rep.err.Code)
		if ra, ok := retryAfterHeader(rep.err.Details); ok {
			msg.Header.Set(api.HeaderRetryAfter, ra)
		}
		msg.Data = rep.err.Body()
	} else {
		msg.Data = rep.body
	}
	d := time.Since(start)
	ep.record(d, rep.err)
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveRequest(ep.info.Name, code, d)
	}
	if req.reply == "" {
		return // a publish without a reply subject: nobody to answer
	}
	if err := s.cfg.Conn.PublishMsg(msg); err != nil {
		s.cfg.Log.Warn().Err(err).Str("subject", ep.info.Subject).Msg("reply not sent")
	}
}

// retryAfterHeader is the Retry-After header of an error whose details say
// when to retry (retry_after_s): the same whole seconds.
func retryAfterHeader(details map[string]any) (string, bool) {
	switch v := details["retry_after_s"].(type) {
	case int:
		return strconv.Itoa(max(v, 0)), true
	case int64:
		return strconv.FormatInt(max(v, 0), 10), true
	case float64:
		return strconv.FormatInt(max(int64(math.Ceil(v)), 0), 10), true
	}
	return "", false
}

// replyHeaderRoom is the room a reply's headers may take of the
// connection's maximum payload.
const replyHeaderRoom = 8 << 10

// fit turns a success whose body the connection cannot carry (its maximum
// payload, less room for headers) into a 500 reply_too_large, which does
// reach the client: a reply is never lost on the way as a silent timeout.
// A command's says that it was carried out: only its answer does not fit.
func fit(rep reply, maxPayload int64, command bool) reply {
	limit := max(maxPayload-replyHeaderRoom, maxPayload/2)
	if rep.err != nil || int64(len(rep.body)) <= limit {
		return rep
	}
	msg := fmt.Sprintf("the reply is %d bytes, more than a NATS message carries here (%d): ask for a smaller page (limit)", len(rep.body), limit)
	details := map[string]any{"bytes": len(rep.body), "max_bytes": limit}
	if command {
		msg = fmt.Sprintf("the command was carried out (its commits are in the log: bankbook audit history), but its reply is %d bytes, more than a NATS message carries here (%d)", len(rep.body), limit)
		details["carried_out"] = true
	}
	rep.err = &api.Error{Status: 500, Code: api.CodeReplyTooLarge, Message: msg, Details: details}
	rep.cause = fmt.Errorf("reply of %d bytes not sent: the connection carries at most %d", len(rep.body), maxPayload)
	rep.body = nil
	return rep
}

// admit counts a request of account in, unless account has
// MaxPerIdentity executing already; n is how many it has.
func (s *Server) admit(account string) (n int, ok bool) {
	if s.cfg.MaxPerIdentity <= 0 {
		return 0, true
	}
	s.idMu.Lock()
	defer s.idMu.Unlock()
	n = s.byIdentity[account]
	if n >= s.cfg.MaxPerIdentity {
		return n, false
	}
	s.byIdentity[account] = n + 1
	return n + 1, true
}

// release counts a request of account out.
func (s *Server) release(account string) {
	if s.cfg.MaxPerIdentity <= 0 {
		return
	}
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.byIdentity[account] <= 1 {
		delete(s.byIdentity, account)
		return
	}
	s.byIdentity[account]--
}

// enter counts a request in, unless Stop has finished draining.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

// leave counts a request out and wakes Stop when it was the last.
func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.closing && s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// Stop stops taking requests and waits until those in flight are answered
// or ctx ends.
//
// Draining the subscriptions is asynchronous: requests that NATS had already
// delivered are still dispatched after it starts. Stop waits until none has
// been dispatched for a quiet period, then closes the door (anything later
// is answered 503 unavailable, so it is never acknowledged without being
// done) and waits for the requests being handled.
func (s *Server) Stop(ctx context.Context) error {
	s.svc.stop()
	const quiet = 100 * time.Millisecond
	for time.Since(time.Unix(0, s.lastDispatch.Load())) <= quiet {
		select {
		case <-ctx.Done():
			return fmt.Errorf("server: stop: %w", ctx.Err())
		case <-time.After(quiet):
		}
	}
	s.mu.Lock()
	s.closing = true
	if s.active == 0 {
		s.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	s.idle = idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("server: stop: %w", ctx.Err())
	}
}

// awaitCaughtUp waits, at most QueryWait, until the read models have caught
// up after the engine started.
func (s *Server) awaitCaughtUp(ctx context.Context) error {
	err := s.readModelsReady()
	if err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
		if err = s.readModelsReady(); err == nil {
			return nil
		}
	}
}

// readModelsReady is nil once the read models have caught up after start.
// It latches: afterwards a stall is reported by /readyz, and queries answer
// with what the read models hold (and min_seq still refuses what they lack).
func (s *Server) readModelsReady() error {
	if s.cfg.ReadModelsReady == nil || s.caughtUp.Load() {
		return nil
	}
	if err := s.cfg.ReadModelsReady(); err != nil {
		return err
	}
	s.caughtUp.Store(true)
	return nil
}

// wrote records that this instance appended up to seq.
func (s *Server) wrote(seq api.Seq) {
	for {
		cur := s.written.Load()
		if uint64(seq) <= cur || s.written.CompareAndSwap(cur, uint64(seq)) {
			return
		}
	}
}

// awaitReadModels waits until the read models have applied minSeq (503
// not_caught_up after QueryWait); a query without min_seq waits, briefly,
// for this instance's own writes instead (a read model that lags longer
// answers with what it has, one that applied nothing meanwhile 503
// unavailable), as
// docs/api.md says. Under load a query with
// min_seq would otherwise wait for other clients' later writes too.
func (s *Server) awaitReadModels(ctx context.Context, minSeq api.Seq) *api.Error {
	if err := s.awaitCaughtUp(ctx); err != nil {
		// Empty or half-rebuilt views would answer wrong balances and missing orders.
		return &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "the read models are not caught up yet (" + err.Error() + "); retry"}
	}
	if minSeq > 0 {
		// The client said what it needs to see; later writes of others
		// are not worth a wait.
		return s.awaitSeq(ctx, minSeq)
	}
	// A query passed on by an instance catching up waits for that
	// instance's writes too: they are the ones its client was told of.
	own := eventstore.Seq(max(s.written.Load(), forwardedWritten(ctx)))
	before := s.cfg.Runner.Checkpoint()
	if before >= own {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.QueryWait)
	defer cancel()
	if err := s.cfg.Runner.WaitFor(wctx, own); err != nil {
		applied := s.cfg.Runner.Checkpoint()
		// Read models that applied nothing for the whole wait have
		// stalled (stopped on a full disk, say, or restarted and stopped
		// again): they catch up only once the cause is gone, and an
		// answer without what this instance acknowledged (a 404 for an
		// order it took) would mislead. Ones that moved are only behind,
		// and answer what they have. The cause, which may name files, is
		// for /readyz and the log.
		if applied == before && ctx.Err() == nil {
			_, why := s.cfg.Runner.Ready()
			s.cfg.Log.Warn().Uint64("seq", uint64(own)).Uint64("checkpoint", uint64(applied)).Str("cause", why).Msg("read models stalled short of this instance's writes: queries answer 503")
			return &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "the read models have stopped short of this instance's writes (/readyz says why); retry",
				Details: map[string]any{"applied_seq": applied, "written_seq": own}}
		}
		s.cfg.Log.Warn().Uint64("seq", uint64(own)).Uint64("checkpoint", uint64(applied)).Msg("read models lag behind this instance's writes")
	}
	return nil
}

// awaitSeq waits until the read models have applied minSeq, at most
// QueryWait; a sequence the stream has not reached yet is refused at once.
func (s *Server) awaitSeq(ctx context.Context, minSeq api.Seq) *api.Error {
	if s.cfg.Runner.Checkpoint() >= eventstore.Seq(minSeq) {
		return nil
	}
	// A sequence the stream has not reached yet cannot be applied within
	// the wait: answer at once rather than hold a request slot for it. A
	// sequence this instance has seen exist (its own appends, the commits
	// its read models follow) needs no question to the server.
	if eventstore.Seq(minSeq) > s.cfg.Events.KnownSeq() {
		if last, err := s.cfg.Events.LastSeq(ctx); err == nil && eventstore.Seq(minSeq) > last {
			return &api.Error{Status: 503, Code: api.CodeNotCaughtUp, Message: fmt.Sprintf("min_seq %d is beyond the event stream's last sequence %d; use the seq of a command reply", minSeq, last),
				Details: map[string]any{"min_seq": minSeq, "applied_seq": s.cfg.Runner.Checkpoint(), "last_seq": uint64(last)}}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.QueryWait)
	defer cancel()
	if err := s.cfg.Runner.WaitFor(wctx, eventstore.Seq(minSeq)); err != nil {
		return &api.Error{Status: 503, Code: api.CodeNotCaughtUp, Message: "the read models have not applied min_seq yet; retry",
			Details: map[string]any{"min_seq": minSeq, "applied_seq": s.cfg.Runner.Checkpoint()}}
	}
	return nil
}

func okJSON(v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return failed(err)
	}
	return reply{body: b}
}
