package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/projections"
)

// Request and reply headers beyond micro's error headers.
const (
	HeaderIdempotencyKey      = "Idempotency-Key"
	HeaderIdempotencyReplayed = "Idempotency-Replayed"
	HeaderCorrelationID       = "Correlation-Id"
	HeaderActor               = "Actor"
)

// ServiceName is the micro service name clients and $SRV.* tooling use.
const ServiceName = "bankbook"

// Version is the engine version reported in $SRV.INFO.
const Version = "0.1.0"

// Config wires the server to the rest of the engine.
type Config struct {
	Conn        *nats.Conn
	Commands    *commands.Handler
	Events      *eventstore.Store
	Idempotency *idempotency.Store
	ReadModels  *projections.Store
	Runner      *projections.Runner
	// BankSim, when set, serves bankbook.sim.bank.transfer.
	BankSim BankSim
	Log     zerolog.Logger
	// MaxInFlight bounds the requests executing at once. Default 1024.
	MaxInFlight int
	// CommandTimeout bounds one command. Default 10s.
	CommandTimeout time.Duration
	// QueryWait bounds how long a query waits for the read models to catch up
	// with this instance's own writes. Default 2s.
	QueryWait time.Duration
}

// Server is the running micro service.
type Server struct {
	cfg   Config
	svc   micro.Service
	slots chan struct{}
	// lastDispatch is the UnixNano of the last request handed to a goroutine;
	// Stop waits for a quiet period after micro has drained.
	lastDispatch atomic.Int64

	mu      sync.Mutex
	closing bool          // Stop has drained: refuse what still arrives
	active  int           // requests being handled
	idle    chan struct{} // closed when closing and active reaches 0
	// written is the highest stream sequence this instance appended.
	written atomic.Uint64
	stats   map[string]*endpointStats // by endpoint name
}

// New checks the configuration and returns a server; Start serves.
func New(cfg Config) (*Server, error) {
	if cfg.Conn == nil || cfg.Commands == nil || cfg.Events == nil || cfg.Idempotency == nil || cfg.ReadModels == nil || cfg.Runner == nil {
		return nil, errors.New("server: Conn, Commands, Events, Idempotency, ReadModels and Runner are required")
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.QueryWait == 0 {
		cfg.QueryWait = 2 * time.Second
	}
	s := &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), stats: map[string]*endpointStats{}}
	for _, ep := range s.endpoints() {
		s.stats[ep.name] = &endpointStats{}
	}
	return s, nil
}

// endpoint is one API subject.
type endpoint struct {
	name    string // micro endpoint name
	subject string
	kind    string // "command" or "query"
	handle  func(ctx context.Context, r *request) reply
}

// request is an immutable copy of what a handler needs from a micro request.
// Handlers run on their own goroutines and reply through the connection, never
// through micro.Request: micro reads the request's state when its (serial)
// handler returns, which is before ours has answered.
type request struct {
	subject string
	reply   string
	data    []byte
	headers nats.Header
}

// endpointStats are the counters of one endpoint, reported in
// $SRV.STATS.bankbook as the endpoint's data.
type endpointStats struct {
	requests   atomic.Uint64
	errors     atomic.Uint64
	processing atomic.Int64 // nanoseconds
	lastError  atomic.Value // string
}

// StatsData is the "data" of each endpoint in $SRV.STATS.bankbook: counters
// of requests answered by this instance's handlers.
type StatsData struct {
	Requests              uint64 `json:"requests"`
	Errors                uint64 `json:"errors"`
	AverageProcessingTime string `json:"average_processing_time"`
	LastError             string `json:"last_error,omitempty"`
}

// reply is what a handler answers: a JSON body or an error, plus headers.
type reply struct {
	body    []byte
	err     *apiError
	headers nats.Header
}

func (s *Server) endpoints() []endpoint {
	eps := []endpoint{
		{"order_submit", "bankbook.cmd.order.submit", "command", s.submitOrder},
		{"order_cancel", "bankbook.cmd.order.cancel", "command", s.cancelOrder},
		{"order_get", "bankbook.q.order.get", "query", s.getOrder},
		{"deposit_record", "bankbook.cmd.deposit.record", "command", s.recordDeposit},
		{"deposit_resolve", "bankbook.cmd.deposit.resolve", "command", s.resolveDeposit},
		{"deposit_scan_complete", "bankbook.cmd.deposit.scan_complete", "command", s.scanComplete},
		{"deposit_orphans", "bankbook.q.deposit.orphans", "query", s.orphans},
		{"wallet_get", "bankbook.q.wallet.get", "query", s.getWallet},
		{"wallet_withdraw", "bankbook.cmd.wallet.withdraw", "command", s.withdraw},
		{"ledger_trial_balance", "bankbook.q.ledger.trial_balance", "query", s.trialBalance},
		{"ledger_account", "bankbook.q.ledger.account", "query", s.ledgerAccount},
		{"projection_status", "bankbook.q.projection.status", "query", s.projectionStatus},
	}
	if s.cfg.BankSim != nil {
		eps = append(eps, endpoint{"sim_bank_transfer", "bankbook.sim.bank.transfer", "simulator", s.simTransfer})
	}
	return eps
}

// Start registers the micro service and its endpoints.
func (s *Server) Start() error {
	svc, err := micro.AddService(s.cfg.Conn, micro.Config{
		Name:        ServiceName,
		Version:     Version,
		Description: "bankbook payments engine: commands and queries",
		StatsHandler: func(e *micro.Endpoint) any {
			st, ok := s.stats[e.Name]
			if !ok {
				return nil
			}
			d := StatsData{Requests: st.requests.Load(), Errors: st.errors.Load()}
			if d.Requests > 0 {
				d.AverageProcessingTime = (time.Duration(st.processing.Load()) / time.Duration(d.Requests)).String()
			}
			d.LastError, _ = st.lastError.Load().(string)
			return d
		},
	})
	if err != nil {
		return fmt.Errorf("server: add service: %w", err)
	}
	for _, ep := range s.endpoints() {
		err := svc.AddEndpoint(ep.name, s.dispatch(ep),
			micro.WithEndpointSubject(ep.subject),
			micro.WithEndpointMetadata(map[string]string{"kind": ep.kind}))
		if err != nil {
			_ = svc.Stop()
			return fmt.Errorf("server: endpoint %s: %w", ep.subject, err)
		}
	}
	// Make sure the server has the subscriptions before anyone is told we serve.
	if err := s.cfg.Conn.Flush(); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("server: flush subscriptions: %w", err)
	}
	s.svc = svc
	return nil
}

// dispatch runs each request on its own goroutine, bounded by MaxInFlight.
func (s *Server) dispatch(ep endpoint) micro.HandlerFunc {
	st := s.stats[ep.name]
	return func(r micro.Request) {
		req := &request{subject: r.Subject(), reply: r.Reply(), data: r.Data(), headers: nats.Header(r.Headers())}
		if !s.enter() {
			s.respond(req, ep, st, reply{err: &apiError{status: 503, Code: "unavailable", Message: "the engine is shutting down; retry"}})
			return
		}
		s.lastDispatch.Store(time.Now().UnixNano())
		s.slots <- struct{}{}
		go func() {
			start := time.Now()
			defer func() {
				if p := recover(); p != nil {
					s.cfg.Log.Error().Interface("panic", p).Str("subject", ep.subject).Msg("handler panicked")
					s.respond(req, ep, st, reply{err: &apiError{status: 500, Code: "internal", Message: "internal error"}})
				}
				st.processing.Add(int64(time.Since(start)))
				<-s.slots
				s.leave()
			}()
			timeout := s.cfg.CommandTimeout
			if ep.kind == "query" {
				timeout = s.cfg.QueryWait + 5*time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			s.respond(req, ep, st, ep.handle(ctx, req))
		}()
	}
}

// respond publishes the reply with the headers micro itself would set on an
// error (Nats-Service-Error-Code, Nats-Service-Error).
func (s *Server) respond(req *request, ep endpoint, st *endpointStats, rep reply) {
	st.requests.Add(1)
	msg := nats.NewMsg(req.reply)
	for k, v := range rep.headers {
		msg.Header[k] = v
	}
	if rep.err != nil {
		st.errors.Add(1)
		st.lastError.Store(strconv.Itoa(rep.err.status) + " " + rep.err.Code)
		if rep.err.status >= 500 {
			s.cfg.Log.Error().Str("subject", ep.subject).Str("code", rep.err.Code).Msg(rep.err.Message)
		}
		msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(rep.err.status))
		msg.Header.Set(micro.ErrorHeader, rep.err.Code)
		msg.Data = rep.err.body()
	} else {
		msg.Data = rep.body
	}
	if req.reply == "" {
		return // a publish without a reply subject: nobody to answer
	}
	if err := s.cfg.Conn.PublishMsg(msg); err != nil {
		s.cfg.Log.Warn().Err(err).Str("subject", ep.subject).Msg("reply not sent")
	}
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
// micro drains its subscriptions asynchronously: requests that NATS had
// already delivered are still dispatched after the service stops. Stop waits
// until none has been dispatched for a quiet period, then closes the door
// (anything later is answered 503 unavailable, so it is never acknowledged
// without being done) and waits for the requests being handled.
func (s *Server) Stop(ctx context.Context) error {
	if s.svc == nil {
		return nil
	}
	if err := s.svc.Stop(); err != nil {
		return fmt.Errorf("server: stop: %w", err)
	}
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

// wrote records that this instance appended up to seq.
func (s *Server) wrote(seq eventstore.Seq) {
	for {
		cur := s.written.Load()
		if uint64(seq) <= cur || s.written.CompareAndSwap(cur, uint64(seq)) {
			return
		}
	}
}

// awaitOwnWrites waits until the read models include this instance's writes.
// A read model that lags longer than QueryWait answers with what it has.
func (s *Server) awaitOwnWrites(ctx context.Context) {
	seq := eventstore.Seq(s.written.Load())
	if s.cfg.Runner.Checkpoint() >= seq {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryWait)
	defer cancel()
	if err := s.cfg.Runner.WaitFor(ctx, seq); err != nil {
		s.cfg.Log.Warn().Uint64("seq", uint64(seq)).Uint64("checkpoint", uint64(s.cfg.Runner.Checkpoint())).Msg("read models lag behind this instance's writes")
	}
}

func okJSON(v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return reply{err: toAPIError(err)}
	}
	return reply{body: b}
}
