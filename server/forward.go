package server

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/bankbook/bankbook/api"
)

// forwardPrefix starts the subjects on which an instance whose read models
// have not caught up since it started (a new instance, one rebuilding a
// projection after an upgrade, one whose read-model file was lost) passes
// its read-model queries on: "bankbook.caughtup." + the query's subject.
// Only instances that have caught up subscribe them, in the queue group of
// the queries, so a deployment answers every query while one instance
// catches up. The subjects are in the engine's account and no account
// imports them: only engine identities publish there.
const forwardPrefix = "bankbook.caughtup."

// forwardPoll is how often an instance catching up looks whether it has.
const forwardPoll = 50 * time.Millisecond

// forwardedWrittenHeader carries, on a query passed on, the highest
// sequence the instance passing it appended: the instance answering waits
// for it as for its own writes (awaitReadModels), so a query without
// min_seq still sees what the instance the client spoke to acknowledged.
// Only read on bankbook.caughtup subjects, which only engines publish to;
// a client's copy is dropped when the query is passed on.
const forwardedWrittenHeader = "Bankbook-Forwarded-Written-Seq"

// forwardedWrittenKey is the context key of a passed-on query's
// forwardedWrittenHeader.
type forwardedWrittenKey struct{}

// withForwardedWritten puts a passed-on query's forwardedWrittenHeader in
// ctx; anything else returns ctx as it is.
func withForwardedWritten(ctx context.Context, req *request) context.Context {
	if !req.forwarded {
		return ctx
	}
	seq, err := strconv.ParseUint(req.headers.Get(forwardedWrittenHeader), 10, 64)
	if err != nil || seq == 0 {
		return ctx
	}
	return context.WithValue(ctx, forwardedWrittenKey{}, seq)
}

// forwardedWritten is the sequence withForwardedWritten put in ctx, or 0.
func forwardedWritten(ctx context.Context) uint64 {
	seq, _ := ctx.Value(forwardedWrittenKey{}).(uint64)
	return seq
}

// serveForwardedOnceCaughtUp waits until the read models have caught up
// since the engine started (readModelsReady, which latches) and then serves
// the queries other instances pass on. It ends early when the server stops.
func (s *Server) serveForwardedOnceCaughtUp() {
	tick := time.NewTicker(forwardPoll)
	defer tick.Stop()
	for s.readModelsReady() != nil {
		if s.svc.isStopped() {
			return
		}
		<-tick.C
	}
	forward := func(info api.Info) bool { return s.routes[info.Name].forward }
	if err := s.svc.startForwarded(s.cfg.Conn, s.dispatch, forward); err != nil && !s.svc.isStopped() {
		// Queries still reach this instance on their own subjects; only
		// the instances catching up lose a place to pass theirs.
		s.cfg.Log.Warn().Err(err).Msg("cannot serve the queries of instances catching up")
	}
}

// forwardWhileCatchingUp passes a read-model query on to an instance that
// has caught up, while this one's read models have not since it started,
// and returns that instance's answer (ok). With no such instance (NATS has
// no responder: this one is alone, or every instance is catching up) it
// returns !ok, and the query is answered here: after its wait, 503
// unavailable. A query passed on is never passed on again.
func (s *Server) forwardWhileCatchingUp(ctx context.Context, req *request) (reply, bool) {
	if req.forwarded || s.readModelsReady() == nil {
		return reply{}, false
	}
	msg := nats.NewMsg(forwardPrefix + req.subject)
	for k, v := range req.headers {
		if !strings.EqualFold(k, forwardedWrittenHeader) {
			msg.Header[k] = v
		}
	}
	msg.Header.Set(forwardedWrittenHeader, strconv.FormatUint(s.written.Load(), 10))
	msg.Data = req.data
	resp, err := s.cfg.Conn.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return reply{}, false
	case err != nil:
		return reply{err: &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "the read models of the instance that took this query are catching up, and the instance it passed the query to did not answer in time; retry"}, cause: err}, true
	}
	return relayed(resp), true
}

// relayed is the reply of another instance, to send on as it is.
func relayed(resp *nats.Msg) reply {
	rep := reply{headers: nats.Header{}}
	for k, v := range resp.Header {
		if k != micro.ErrorCodeHeader && k != micro.ErrorHeader {
			rep.headers[k] = v
		}
	}
	code := resp.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		rep.body = resp.Data
		return rep
	}
	e := api.ParseErrorBody(resp.Data)
	if e == nil {
		e = &api.Error{Code: resp.Header.Get(micro.ErrorHeader)}
	}
	e.Status, _ = strconv.Atoi(code)
	rep.err = e
	return rep
}
