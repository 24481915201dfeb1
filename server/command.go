package server

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
)

// validator is a request that can check its own fields.
type validator interface{ Validate() error }

// commandSpec says how the generic command path runs one command.
type commandSpec[Req validator, Rep any] struct {
	subject string
	// plan fills in the IDs the engine generates for req and returns them.
	// A repeat that takes over an unfinished attempt gets them back through
	// resume, so both attempts address the same aggregate. Nil: no IDs.
	plan   func(req *Req) json.RawMessage
	resume func(req *Req, plan json.RawMessage) error
	exec   func(ctx context.Context, meta commands.Meta, req Req) (Rep, eventstore.Seq, error)
}

// runCommand decodes, validates, claims the idempotency key if any,
// executes, and stores the outcome for repeats.
func runCommand[Req validator, Rep any](s *Server, ctx context.Context, r *request, spec commandSpec[Req, Rep]) reply {
	var req Req
	if err := decodeStrict(r.data, &req); err != nil {
		return reply{err: toAPIError(err)}
	}
	if err := req.Validate(); err != nil {
		return reply{err: toAPIError(err)}
	}
	key, keyPresent := header(r.headers, HeaderIdempotencyKey)
	correlation, _ := header(r.headers, HeaderCorrelationID)
	actor, _ := header(r.headers, HeaderActor)
	meta := commands.Meta{Command: spec.subject, CorrelationID: correlation, IdempotencyKey: key, Actor: actor}
	if meta.CorrelationID == "" {
		meta.CorrelationID = s.cfg.Commands.NewID()
	}
	if keyPresent && !idempotency.ValidKey(meta.IdempotencyKey) {
		return reply{err: badRequest("invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters", nil)}
	}
	if meta.IdempotencyKey == "" {
		if spec.plan != nil {
			spec.plan(&req)
		}
		return execCommand(s, ctx, meta, req, spec)
	}

	canonical, _ := json.Marshal(req) // the client's request, before planned IDs
	var plan json.RawMessage
	if spec.plan != nil {
		plan = spec.plan(&req)
	}
	claim, stored, err := s.cfg.Idempotency.Begin(ctx, spec.subject, meta.IdempotencyKey, idempotency.HashBody(canonical), plan)
	switch {
	case err != nil:
		return reply{err: toAPIError(err)}
	case stored != nil:
		h := nats.Header{HeaderIdempotencyReplayed: []string{"true"}}
		if stored.Status != 200 {
			var body struct{ Error *apiError }
			if json.Unmarshal(stored.Body, &body) != nil || body.Error == nil {
				return reply{err: &apiError{status: 500, Code: "internal", Message: "stored reply unreadable"}, headers: h}
			}
			body.Error.status = stored.Status
			return reply{err: body.Error, headers: h}
		}
		return reply{body: stored.Body, headers: h}
	}
	if claim.Resumed && spec.resume != nil {
		if err := spec.resume(&req, claim.Plan); err != nil {
			return reply{err: toAPIError(err)}
		}
	}
	meta.Resumed = claim.Resumed
	rep := execCommand(s, ctx, meta, req, spec)

	// Store the outcome with a fresh deadline: the command's may be spent.
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommandTimeout)
	defer cancel()
	var ferr error
	switch {
	case rep.err == nil:
		ferr = s.cfg.Idempotency.Complete(sctx, claim, idempotency.Reply{Status: 200, Body: rep.body})
	case definitive(rep.err):
		ferr = s.cfg.Idempotency.Complete(sctx, claim, idempotency.Reply{Status: rep.err.status, Body: rep.err.body()})
	default:
		ferr = s.cfg.Idempotency.Abandon(sctx, claim)
	}
	if ferr != nil {
		// A repeat resumes with the same plan and finds the events by key.
		s.cfg.Log.Warn().Err(ferr).Str("subject", spec.subject).Str("correlation_id", meta.CorrelationID).Msg("idempotency record not updated")
	}
	return rep
}

// execCommand executes a decided-to-run command and encodes its reply.
func execCommand[Req validator, Rep any](s *Server, ctx context.Context, meta commands.Meta, req Req, spec commandSpec[Req, Rep]) reply {
	rep, seq, err := spec.exec(ctx, meta, req)
	if err != nil {
		return reply{err: toAPIError(err)}
	}
	s.wrote(seq)
	return okJSON(rep)
}

// header returns the first value of the named header, matching the name
// case-insensitively as HTTP does (NATS headers are case-sensitive maps).
func header(h nats.Header, name string) (string, bool) {
	if v, ok := h[name]; ok && len(v) > 0 {
		return v[0], true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}
