package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// maxHistoryMessages is how many of the aggregate's messages one page of
// audit.history reads at most (one direct get each), historyChunk at a time.
const (
	maxHistoryMessages = 1000
	historyChunk       = 50
)

// auditHistory serves bankbook.q.audit.history: one page of an aggregate's
// events with their envelopes and commit hashes, read from the event stream
// (eventstore.Store.History), not the read models. A page ends after
// q.WholeLimit() events (without a limit, the whole history unless it is
// larger than one reply carries), or earlier when the next event would take
// the reply past api.MaxPageBytes (a page holds at least one event, which
// its commit, one message, bounds); the cursor can point into a commit, so a
// commit with more events than a page is split across pages. A damaged
// message of the subject is one entry with Damaged set.
func (s *Server) auditHistory(ctx context.Context, q api.AuditHistoryRequest) (api.AuditHistoryReply, error) {
	ref := eventstore.Ref{Type: q.AggregateType, ID: q.AggregateID}
	from, skip, err := parseHistoryCursor(q.Cursor)
	if err != nil {
		return api.AuditHistoryReply{}, err
	}
	limit := q.WholeLimit()
	rep := api.AuditHistoryReply{AggregateType: ref.Type, AggregateID: ref.ID, Events: []api.AuditEvent{}}
	// The page reads the aggregate's messages historyChunk at a time (and
	// one more, to know whether more follow), so that it stops reading once
	// it is full, at most maxHistoryMessages in all.
	size, read := 0, 0
	for first := true; ; first = false {
		n := min(limit, historyChunk)
		recs, err := s.cfg.Events.History(ctx, ref, from, n+1)
		if err != nil {
			return api.AuditHistoryReply{}, err
		}
		if first && (len(recs) == 0 || q.Cursor != "" && recs[0].Commit.Seq != from) {
			return api.AuditHistoryReply{}, s.noHistory(ctx, ref, q.Cursor)
		}
		for i, r := range recs[:min(len(recs), n)] {
			entries := auditEntries(r)
			start := 0
			if first && i == 0 {
				if skip >= len(entries) {
					return api.AuditHistoryReply{}, badCursor()
				}
				start = skip
			}
			for j := start; j < len(entries); j++ {
				b, err := json.Marshal(entries[j])
				if err != nil {
					return api.AuditHistoryReply{}, err
				}
				if len(rep.Events) == limit || len(rep.Events) > 0 && size+len(b)+1 > api.MaxPageBytes {
					rep.NextCursor = historyCursor(r.Commit.Seq, j)
					return rep, nil
				}
				rep.Events = append(rep.Events, entries[j])
				size += len(b) + 1 // and a comma
			}
		}
		if len(recs) <= n {
			return rep, nil // the history's end
		}
		from, read = recs[n].Commit.Seq, read+n
		if read >= maxHistoryMessages {
			rep.NextCursor = historyCursor(from, 0)
			return rep, nil
		}
	}
}

// noHistory is the answer when a page finds nothing: 404 for an aggregate
// without messages, else the cursor was not one this query handed out for
// it.
func (s *Server) noHistory(ctx context.Context, ref eventstore.Ref, cursor string) error {
	if cursor != "" {
		found, err := s.cfg.Events.History(ctx, ref, 0, 1)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return badCursor()
		}
	}
	return &api.Error{Status: 404, Code: api.CodeAggregateNotFound,
		Message: "the event stream holds nothing for this aggregate",
		Details: map[string]any{"aggregate_type": ref.Type, "aggregate_id": ref.ID}}
}

// auditEntries renders one message of the history: an entry per event,
// or one entry for a damaged message.
func auditEntries(r eventstore.Recorded) []api.AuditEvent {
	c, hash := r.Commit, r.Hash.String()
	if c.Damaged != nil {
		d := &api.AuditDamage{Problem: c.Damaged.Error()}
		if c.Damaged.Err != nil {
			d.Problem = c.Damaged.Err.Error()
		}
		if c.Damaged.SetAside != nil {
			sa := wireSetAside(*c.Damaged.SetAside)
			d.SetAside = &sa
		}
		return []api.AuditEvent{{Seq: api.Seq(c.Seq), RecordedAt: domain.FormatTime(r.StoredAt), CommitHash: hash, Damaged: d}}
	}
	out := make([]api.AuditEvent, len(c.Events))
	for i, e := range c.Events {
		out[i] = api.AuditEvent{
			Seq: api.Seq(c.Seq), Version: e.Version, EventID: e.EventID, EventType: e.EventType, SchemaVersion: e.SchemaVersion,
			OccurredAt: domain.FormatTime(e.OccurredAt), RecordedAt: domain.FormatTime(e.RecordedAt),
			Actor: e.Actor, CorrelationID: e.CorrelationID, CausationID: e.CausationID, IdempotencyKey: e.IdempotencyKey,
			Data: e.Data, CommitHash: hash,
		}
	}
	return out
}

// A history cursor is 24 lowercase hex digits: the stream sequence of the
// commit the next page starts in (16) and the index of its first event in
// that commit (8).
const historyCursorLen = 24

func historyCursor(seq eventstore.Seq, index int) string {
	return fmt.Sprintf("%016x%08x", uint64(seq), uint32(index))
}

// parseHistoryCursor returns where a page starts: the sequence to read
// from and the events of that commit to skip. No cursor: the start.
func parseHistoryCursor(cursor string) (eventstore.Seq, int, error) {
	if cursor == "" {
		return 0, 0, nil
	}
	if len(cursor) != historyCursorLen {
		return 0, 0, badCursor()
	}
	seq, err1 := strconv.ParseUint(cursor[:16], 16, 64)
	index, err2 := strconv.ParseUint(cursor[16:], 16, 32)
	if err1 != nil || err2 != nil || seq == 0 || historyCursor(eventstore.Seq(seq), int(index)) != cursor {
		return 0, 0, badCursor()
	}
	return eventstore.Seq(seq), int(index), nil
}

func badCursor() *api.Error {
	return badRequest(api.CodeInvalidInput, "cursor: not a cursor this query handed out", map[string]any{"field": "cursor"})
}

// streamHas refuses a history query whose min_seq the event stream has
// not reached (503 not_caught_up). History reads the stream itself, from
// its leader, so any sequence the stream holds is already visible: there
// is nothing to wait for.
func (s *Server) streamHas(ctx context.Context, q api.AuditHistoryRequest) *api.Error {
	if q.MinSeq == 0 {
		return nil
	}
	last, err := s.cfg.Events.LastSeq(ctx)
	if err != nil {
		return toAPIError(err)
	}
	if eventstore.Seq(q.MinSeq) > last {
		return &api.Error{Status: 503, Code: api.CodeNotCaughtUp,
			Message: fmt.Sprintf("min_seq %d is beyond the event stream's last sequence %d; use the seq of a command reply", q.MinSeq, last),
			Details: map[string]any{"min_seq": q.MinSeq, "last_seq": uint64(last)}}
	}
	return nil
}
