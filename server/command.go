package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/groupcommit"
)

// validator is a request that can check its own fields.
type validator interface{ Validate() error }

// canonicaler is a request with a canonical form (api's Canonical methods):
// defaults written one way, bank accounts without their grouping spaces,
// times in UTC. The engine validates, compares (Idempotency-Key) and
// executes the canonical form, so two requests that mean the same are the
// same request.
type canonicaler[Req any] interface{ Canonical() Req }

// keyFormer is a request whose canonical form keeps something as the client
// wrote it (deposit.record's account number, recorded as the bank gave it)
// that a repeat may write differently and still mean the same: KeyForm is
// the form compared under an Idempotency-Key.
type keyFormer[Req any] interface{ KeyForm() Req }

// keyForm returns the form of req compared under an Idempotency-Key: its
// KeyForm, or req itself.
func keyForm[Req any](req Req) Req {
	if k, ok := any(req).(keyFormer[Req]); ok {
		return k.KeyForm()
	}
	return req
}

// canonical returns req's canonical form (req itself if it has none).
func canonical[Req any](req Req) Req {
	if c, ok := any(req).(canonicaler[Req]); ok {
		return c.Canonical()
	}
	return req
}

// written is a command reply: it carries the consistency token.
type written interface{ WrittenSeq() api.Seq }

// commandSpec says how the generic command path runs one command.
type commandSpec[Req validator, Rep written] struct {
	// plan fills in the IDs the engine generates for req and returns them,
	// and whether it generated the ID of the aggregate the command creates
	// (the client gave none). A repeat that takes over an unfinished
	// attempt gets them back through resume, so both attempts address the
	// same aggregate. Nil: no IDs.
	plan   func(req *Req) (ids json.RawMessage, generated bool)
	resume func(req *Req, plan json.RawMessage) error
	exec   func(ctx context.Context, meta commands.Meta, req Req) (Rep, error)
}

// commandRoute serves ep with the generic command path.
func commandRoute[Req validator, Rep written](s *Server, ep api.Endpoint[Req, Rep], spec commandSpec[Req, Rep]) route {
	return route{info: ep.Info, handle: func(ctx context.Context, r *request) reply { return runCommand(s, ctx, r, ep.Info, spec) }}
}

// runCommand decodes, validates, claims the idempotency key if any,
// executes, and stores the outcome for repeats.
func runCommand[Req validator, Rep written](s *Server, ctx context.Context, r *request, ep api.Info, spec commandSpec[Req, Rep]) (rep reply) {
	subject := ep.Subject
	var req Req
	if err := decodeStrict(r.data, &req, ep.MaxBodyBytes); err != nil {
		return failed(err)
	}
	req = canonical(req)
	if err := req.Validate(); err != nil {
		if rep, ok := replayRefused(s, ctx, r, ep, req); ok {
			return rep
		}
		return failed(err)
	}
	key, keyPresent, err := header(r.headers, api.HeaderIdempotencyKey)
	switch {
	case !ep.Idempotent:
		// Idempotent by nature (deposit.scan_complete): the header is
		// ignored, so that a repeat shows the state as it is now.
		key, keyPresent = "", false
	case err != nil:
		return reply{err: badRequest(api.CodeInvalidIdemKey, err.Error(), nil)}
	}
	correlation, correlationPresent, err := header(r.headers, api.HeaderCorrelationID)
	if err != nil {
		return failed(domain.Invalid(api.HeaderCorrelationID, "%v", err))
	}
	if correlationPresent && !idempotency.ValidKey(correlation) {
		// It is stamped on every event of the command and logged.
		return failed(domain.Invalid(api.HeaderCorrelationID, "must be 1-255 printable ASCII characters"))
	}
	// The actor is the account the NATS server mapped the request under,
	// never what the request says of itself.
	actor, err := auth.Actor(r.subject, s.cfg.Tenant)
	if err != nil {
		return reply{err: &api.Error{Status: 403, Code: api.CodeForbidden, Message: err.Error()}}
	}
	meta := commands.Meta{Command: subject, CorrelationID: correlation, IdempotencyKey: key, Actor: actor}
	if meta.CorrelationID == "" {
		meta.CorrelationID = s.cfg.Orders.NewID() // every area shares one Core, so one ID source
	}
	// A failure's log names the command's correlation ID, generated or not.
	defer func() { rep.correlation = meta.CorrelationID }()
	if keyPresent && !idempotency.ValidKey(meta.IdempotencyKey) {
		return reply{err: badRequest(api.CodeInvalidIdemKey, "Idempotency-Key must be 1-255 printable ASCII characters", nil)}
	}
	// Under group commit the command's writes wait for no sync of their own:
	// it syncs before its append (commands.Config.BeforeAppend) and before
	// it answers (execCommand).
	ctx = s.deferred(ctx)
	if meta.IdempotencyKey == "" {
		if spec.plan != nil {
			_, meta.FreshID = spec.plan(&req)
		}
		return execCommand(s, ctx, meta, req, spec)
	}

	body, _ := json.Marshal(keyForm(req)) // the client's request, canonical, before planned IDs
	var (
		plan      json.RawMessage
		generated bool
	)
	if spec.plan != nil {
		plan, generated = spec.plan(&req)
	}
	// Keys are per identity: nobody can replay, or block, another's key.
	scope, bodyHash := subject+"."+actor, idempotency.HashBody(body)
	claim, stored, err := s.cfg.Idempotency.Begin(ctx, scope, meta.IdempotencyKey, bodyHash, plan)
	switch {
	case err != nil:
		if c, ok := s.completing.Load(completionKey(scope, meta.IdempotencyKey)); ok && errors.Is(err, idempotency.ErrInProgress) && c.(*completion).bodyHash == bodyHash {
			// Answered, its record not written yet: the same answer.
			return reply{body: c.(*completion).body, headers: nats.Header{api.HeaderIdempotencyReplayed: []string{"true"}}}
		}
		if derr := s.durable(ctx); derr != nil {
			return failed(derr) // a refusal (key reused, in progress) may rest on a claim not synced yet
		}
		return failed(err)
	case stored != nil:
		return replayStored(s, ctx, stored)
	}
	if claim.Resumed && spec.resume != nil {
		if err := spec.resume(&req, claim.Plan); err != nil {
			return failed(err)
		}
	}
	meta.Resumed, meta.ClaimedAt = claim.Resumed, claim.Since
	// A resumed claim runs with the first attempt's IDs, which it may have
	// written under.
	meta.FreshID = generated && !claim.Resumed
	meta.FoundEarlier, meta.Appended = new(atomic.Bool), new(atomic.Bool)
	rep = execCommand(s, ctx, meta, req, spec)
	if rep.err == nil && meta.FoundEarlier.Load() && !meta.Appended.Load() {
		// The first attempt appended (and may have answered) before it
		// died: this is its reply, found again by key. One that also
		// appended now (the rest of a bulk issue, say) did more than
		// repeat it.
		rep.headers = nats.Header{api.HeaderIdempotencyReplayed: []string{"true"}}
	}

	// Store the outcome with a fresh deadline: the command's may be spent.
	finish := func(store func(context.Context) error) {
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommandTimeout)
		defer cancel()
		if err := store(sctx); err != nil {
			// A repeat resumes with the same plan and finds the events by key.
			s.cfg.Log.Warn().Err(err).Str("subject", subject).Str("correlation_id", meta.CorrelationID).Msg("idempotency record not updated")
		}
	}
	switch {
	case rep.err == nil:
		// What the reply tells is durable (execCommand waited for its
		// append, and synced under group commit), so the reply goes
		// before its record is written: a repeat after a crash that lost
		// the record resumes and finds the commit by key, and a repeat
		// meanwhile gets the reply from completing.
		k, c := completionKey(scope, meta.IdempotencyKey), &completion{bodyHash: bodyHash, body: rep.body}
		s.completing.Store(k, c)
		rep.after = func() {
			defer s.completing.CompareAndDelete(k, c)
			completeHook(meta.IdempotencyKey)
			finish(func(ctx context.Context) error {
				return s.cfg.Idempotency.Complete(s.deferred(ctx), claim, idempotency.Reply{Status: 200, Body: rep.body})
			})
		}
	case definitive(rep.err):
		// A refusal leaves no commit to find again: its record is durable
		// before the reply, so a repeat gets the same refusal.
		finish(func(ctx context.Context) error {
			return s.cfg.Idempotency.Complete(ctx, claim, idempotency.Reply{Status: rep.err.Status, Body: rep.err.Body()})
		})
	default:
		// Before the reply, so that the client's retry can take over.
		finish(func(ctx context.Context) error { return s.cfg.Idempotency.Abandon(s.deferred(ctx), claim) })
	}
	return rep
}

// replayStored answers a repeat with the reply its first attempt stored.
func replayStored(s *Server, ctx context.Context, stored *idempotency.Reply) reply {
	if err := s.durable(ctx); err != nil {
		return failed(err) // the first attempt may not have synced its record yet
	}
	h := nats.Header{api.HeaderIdempotencyReplayed: []string{"true"}}
	if stored.Status != 200 {
		e := api.ParseErrorBody(stored.Body)
		if e == nil {
			return reply{err: &api.Error{Status: 500, Code: api.CodeInternal, Message: "stored reply unreadable"}, headers: h}
		}
		e.Status = stored.Status
		return reply{err: e, headers: h}
	}
	return reply{body: stored.Body, headers: h}
}

// replayRefused answers a keyed request that fails validation with the
// reply stored for it, when there is one: an engine before this one, whose
// validation was looser (a reason with a zero-width space, a payout holder
// with a variation selector), executed it, and its repeat after the upgrade
// is answered as any repeat is, not refused as if it had never run. ok is
// false when there is no such reply (or it cannot be read): the request is
// refused as invalid. Nothing is claimed.
func replayRefused[Req any](s *Server, ctx context.Context, r *request, ep api.Info, req Req) (_ reply, ok bool) {
	if !ep.Idempotent {
		return reply{}, false
	}
	key, present, err := header(r.headers, api.HeaderIdempotencyKey)
	if err != nil || !present || !idempotency.ValidKey(key) {
		return reply{}, false
	}
	actor, err := auth.Actor(r.subject, s.cfg.Tenant)
	if err != nil {
		return reply{}, false
	}
	body, _ := json.Marshal(keyForm(req)) // as the first attempt hashed it: canonical, before planned IDs
	stored, err := s.cfg.Idempotency.Replayed(ctx, ep.Subject+"."+actor, key, idempotency.HashBody(body))
	if err != nil {
		s.cfg.Log.Warn().Err(err).Str("subject", ep.Subject).Msg("idempotency record of a refused request unreadable; refusing it")
		return reply{}, false
	}
	if stored == nil {
		return reply{}, false
	}
	return replayStored(s, ctx, stored), true
}

// completion is a success answered to a keyed request whose idempotency
// record is still being written.
type completion struct {
	bodyHash string
	body     []byte
}

// completionKey is the key of a completion in Server.completing.
func completionKey(scope, key string) string { return scope + "\x00" + key }

// testCompleteHook, if set (tests only), runs before a success's
// idempotency record is written, with its key.
var testCompleteHook atomic.Pointer[func(key string)]

// completeHook runs testCompleteHook, if set.
func completeHook(key string) {
	if h := testCompleteHook.Load(); h != nil {
		(*h)(key)
	}
}

// testExecHook, if set (tests only), runs before a command executes, with
// its Idempotency-Key.
var testExecHook atomic.Pointer[func(key string)]

// execCommand executes a decided-to-run command and encodes its reply. A
// panic is answered 500 here, like any other failure, so that a keyed
// command's claim is abandoned and the client's retry runs at once, not
// after the claim's lease.
func execCommand[Req validator, Rep written](s *Server, ctx context.Context, meta commands.Meta, req Req, spec commandSpec[Req, Rep]) (r reply) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Log.Error().Str("panic", fmt.Sprint(p)).Str("correlation_id", meta.CorrelationID).Bytes("stack", debug.Stack()).Msg("command panicked")
			r = failed(fmt.Errorf("command panicked: %v", p))
		}
	}()
	if h := testExecHook.Load(); h != nil {
		(*h)(meta.IdempotencyKey)
	}
	rep, err := spec.exec(ctx, meta, req)
	if derr := s.durable(ctx); derr != nil {
		return failed(derr) // the outcome is not durable yet: unknown to the client, as after a timeout
	}
	if err != nil {
		return failed(err)
	}
	s.wrote(rep.WrittenSeq())
	return okJSON(rep)
}

// readAfter is a query request: it carries the consistency token it must see.
type readAfter interface {
	validator
	ReadAfterSeq() api.Seq
}

// queryRoute serves a read-model query: it answers once the read models
// have applied the query's min_seq. While they have not caught up since the
// engine started (a new instance, a projection rebuilt), the query is
// passed to an instance that has (forwardWhileCatchingUp).
func queryRoute[Req readAfter, Rep any](s *Server, ep api.Endpoint[Req, Rep], answer func(ctx context.Context, q Req) (Rep, error)) route {
	r := requestRoute(ep, func(ctx context.Context, q Req) *api.Error { return s.awaitReadModels(ctx, q.ReadAfterSeq()) }, answer)
	local := r.handle
	r.handle = func(ctx context.Context, req *request) reply {
		if rep, ok := s.forwardWhileCatchingUp(ctx, req); ok {
			return rep
		}
		return local(withForwardedWritten(ctx, req), req)
	}
	r.forward = true
	return r
}

// plainRoute serves a request that reads no read model (statuses,
// simulators): decoded, validated, answered.
func plainRoute[Req validator, Rep any](ep api.Endpoint[Req, Rep], answer func(ctx context.Context, q Req) (Rep, error)) route {
	return requestRoute(ep, nil, answer)
}

// simulatorRoute serves a simulator's endpoint when it runs (present).
func simulatorRoute[Req validator, Rep any](ep api.Endpoint[Req, Rep], answer func(ctx context.Context, q Req) (Rep, error), present bool) route {
	r := requestRoute(ep, nil, answer)
	r.off = !present
	return r
}

// requestRoute decodes and validates a request (an empty body is {}), lets
// gate refuse it, and answers.
func requestRoute[Req validator, Rep any](ep api.Endpoint[Req, Rep], gate func(context.Context, Req) *api.Error, answer func(ctx context.Context, q Req) (Rep, error)) route {
	return route{info: ep.Info, handle: func(ctx context.Context, r *request) reply {
		var q Req
		data := r.data
		if len(data) == 0 {
			data = []byte("{}")
		}
		if err := decodeStrict(data, &q, ep.MaxBodyBytes); err != nil {
			return failed(err)
		}
		q = canonical(q)
		if err := q.Validate(); err != nil {
			return failed(err)
		}
		if gate != nil {
			if err := gate(ctx, q); err != nil {
				return reply{err: err}
			}
		}
		v, err := answer(ctx, q)
		if err != nil {
			return failed(err)
		}
		return okJSON(v)
	}}
}

// header returns the value of the named header, matching the name
// case-insensitively as HTTP does (NATS headers are case-sensitive maps).
// A request that carries it twice (in one spelling or two) is refused: which
// of them counts would be a guess.
func header(h nats.Header, name string) (value string, present bool, err error) {
	for k, v := range h {
		if !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		for _, x := range v {
			if present {
				return "", false, fmt.Errorf("a request carries one %s header, not several", name)
			}
			value, present = x, true
		}
	}
	return value, present, nil
}

// deferred returns ctx whose writes wait for no sync (groupcommit.Deferred)
// when the engine runs group commit; the command syncs at its own points.
func (s *Server) deferred(ctx context.Context) context.Context {
	if s.cfg.Durable == nil {
		return ctx
	}
	return groupcommit.Deferred(ctx)
}

// durable waits, under group commit, until everything the command wrote or
// read is durable; without group commit everything already is.
func (s *Server) durable(ctx context.Context) error {
	if s.cfg.Durable == nil {
		return nil
	}
	return s.cfg.Durable(ctx)
}
