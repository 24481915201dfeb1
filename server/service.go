package server

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
)

// queueGroup is the queue group every instance's endpoints join, micro's default.
const queueGroup = "q"

// service speaks nats.go micro's protocol — $SRV.PING, $SRV.INFO and
// $SRV.STATS with micro's own reply types — for endpoints whose handlers
// answer on their own goroutines. micro.AddService calls a handler serially
// per endpoint and counts an error only when the handler answers before it
// returns; bankbook answers later, so it keeps the counters itself and
// reports them here, where standard tooling (nats micro stats) reads them.
type service struct {
	id      string
	started time.Time
	desc    string

	mu        sync.Mutex
	endpoints []*serviceEndpoint
	subs      []*nats.Subscription
	stopped   bool // stop has run: a later subscription is undone at once
}

// serviceEndpoint is one endpoint and its counters.
type serviceEndpoint struct {
	info api.Info
	// sub is the endpoint's subscription once started: its pending count
	// is how many requests wait to be dispatched.
	sub atomic.Pointer[nats.Subscription]

	mu             sync.Mutex
	requests       int
	errors         int
	processingTime time.Duration
	lastError      string
}

// waiting is how many requests, and how many bytes of them, wait in the
// endpoint's subscription to be dispatched (0 before it starts).
func (e *serviceEndpoint) waiting() (n, bytes int) {
	sub := e.sub.Load()
	if sub == nil {
		return 0, 0
	}
	n, bytes, err := sub.Pending()
	if err != nil {
		return 0, 0
	}
	return n, bytes
}

// record counts one answered request.
func (e *serviceEndpoint) record(d time.Duration, apiErr *api.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests++
	e.processingTime += d
	if apiErr != nil {
		e.errors++
		e.lastError = fmt.Sprintf("%d %s", apiErr.Status, apiErr.Code)
	}
}

func (e *serviceEndpoint) stats() *micro.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &micro.EndpointStats{
		Name: e.info.Name, Subject: e.info.Subject, QueueGroup: queueGroup,
		NumRequests: e.requests, NumErrors: e.errors, LastError: e.lastError, ProcessingTime: e.processingTime,
	}
	if e.requests > 0 {
		st.AverageProcessingTime = e.processingTime / time.Duration(e.requests)
	}
	return st
}

func newService(description string, infos []api.Info) *service {
	s := &service{id: nuid.Next(), started: time.Now().UTC(), desc: description}
	for _, info := range infos {
		s.endpoints = append(s.endpoints, &serviceEndpoint{info: info})
	}
	return s
}

func (s *service) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{Name: api.ServiceName, ID: s.id, Version: api.Version, Metadata: map[string]string{}}
}

func (s *service) info() micro.Info {
	eps := make([]micro.EndpointInfo, len(s.endpoints))
	for i, e := range s.endpoints {
		eps[i] = micro.EndpointInfo{Name: e.info.Name, Subject: e.info.Subject, QueueGroup: queueGroup, Metadata: map[string]string{"kind": string(e.info.Kind)}}
	}
	return micro.Info{ServiceIdentity: s.identity(), Type: micro.InfoResponseType, Description: s.desc, Endpoints: eps}
}

func (s *service) stats() micro.Stats {
	st := micro.Stats{ServiceIdentity: s.identity(), Type: micro.StatsResponseType, Started: s.started, Endpoints: []*micro.EndpointStats{}}
	for _, e := range s.endpoints {
		st.Endpoints = append(st.Endpoints, e.stats())
	}
	return st
}

// How many messages (and bytes) a subscription holds before its handler
// takes them; past that the client library drops them (a slow consumer),
// unanswered, instead of the engine's memory growing with a flood (nats.go's
// default holds 512k messages or 64 MiB per subscription). An endpoint's
// handler sheds what it cannot run (503 overloaded) far faster than it
// runs requests, so its queue stays short unless it is flooded faster
// than it can shed; the monitoring verbs answer at once.
const (
	endpointPendingMsgs  = 16_384
	endpointPendingBytes = 32 << 20
	verbPendingMsgs      = 1_024
	verbPendingBytes     = 1 << 20
)

// start subscribes the monitoring verbs (for all services, this service's
// name, and its ID) and then each endpoint with handle.
func (s *service) start(nc *nats.Conn, handle func(*serviceEndpoint, *nats.Msg)) error {
	verbs := map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: s.identity(), Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return s.info() },
		micro.StatsVerb: func() any { return s.stats() },
	}
	for verb, answer := range verbs {
		for _, subject := range []string{
			fmt.Sprintf("$SRV.%s", verb), fmt.Sprintf("$SRV.%s.%s", verb, api.ServiceName), fmt.Sprintf("$SRV.%s.%s.%s", verb, api.ServiceName, s.id),
		} {
			answer := answer
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
				b, _ := json.Marshal(answer())
				_ = m.Respond(b)
			})
			if err != nil {
				s.stop()
				return fmt.Errorf("subscribe %s: %w", subject, err)
			}
			_ = sub.SetPendingLimits(verbPendingMsgs, verbPendingBytes)
			s.add(sub)
		}
	}
	for _, e := range s.endpoints {
		e := e
		subject := e.info.Subject
		if e.info.Kind == api.KindCommand {
			// Each identity's account maps the command under its own
			// name: that is who sent it (auth.Actor).
			subject = auth.FromAnySubject(subject)
		}
		sub, err := s.subscribe(nc, subject, e, handle)
		if err != nil {
			s.stop()
			return err
		}
		e.sub.Store(sub)
		s.add(sub)
	}
	return nil
}

// subscribe subscribes subject in the queue group for endpoint e's
// requests, with the endpoints' pending limits.
func (s *service) subscribe(nc *nats.Conn, subject string, e *serviceEndpoint, handle func(*serviceEndpoint, *nats.Msg)) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(subject, queueGroup, func(m *nats.Msg) { handle(e, m) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	_ = sub.SetPendingLimits(endpointPendingMsgs, endpointPendingBytes)
	return sub, nil
}

// add keeps sub for stop; after stop it drains sub at once and says so.
func (s *service) add(sub *nats.Subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		_ = sub.Drain()
		return false
	}
	s.subs = append(s.subs, sub)
	return true
}

// startForwarded subscribes, for each endpoint forward names, the subject
// on which instances catching up pass that endpoint's requests on
// (forwardPrefix), in the same queue group, with handle.
func (s *service) startForwarded(nc *nats.Conn, handle func(*serviceEndpoint, *nats.Msg), forward func(api.Info) bool) error {
	for _, e := range s.endpoints {
		if !forward(e.info) {
			continue
		}
		sub, err := s.subscribe(nc, forwardPrefix+e.info.Subject, e, handle)
		if err != nil {
			return err
		}
		if !s.add(sub) {
			return nil
		}
	}
	return nil
}

// stop drains every subscription: messages already delivered are still handled.
func (s *service) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		_ = sub.Drain()
	}
	s.subs = nil
	s.stopped = true
}

// isStopped says whether stop has run.
func (s *service) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}
