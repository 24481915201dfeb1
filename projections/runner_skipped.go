package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/worker"
)

// DeadLetterPart is the part the Runner's dead letters belong to.
const DeadLetterPart = "projections"

// SetDeadLetters makes the Runner record each damaged commit it skips as a
// dead letter of part DeadLetterPart in dead. Without it, the Runner opens
// the default dead-letter stream on the event store's connection when it
// first needs it. Call it before Run.
func (r *Runner) SetDeadLetters(dead *worker.DeadLetters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = dead
}

// Damaged returns the damaged commits the read models skipped that no
// operator has set aside yet, by sequence. While there is one, Run reports
// its part not ready through its supervisor Handle, naming them, although
// the read models keep following the stream and answering queries.
func (r *Runner) Damaged() []SkippedCommit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.SortedFunc(maps.Values(r.damaged), func(a, b SkippedCommit) int { return cmp.Compare(a.Seq, b.Seq) })
}

// loadDamaged reads, at the start of a run, the skipped commits the file
// records that are not set aside. One that this engine can read now (an
// upgrade taught it the event type) is missing from the read models: then
// every projection is rebuilt from sequence 1.
func (r *Runner) loadDamaged(ctx context.Context) error {
	all, err := r.st.Skipped()
	if err != nil {
		return err
	}
	var open []SkippedCommit
	for _, sc := range all {
		if !sc.SetAside {
			open = append(open, sc)
		}
	}
	for _, sc := range open {
		c, err := r.es.Get(ctx, sc.Seq)
		if err != nil || r.st.decodable(c) != nil {
			continue // still damaged, or the stream did not answer: the next run looks again
		}
		r.log.Warn().Uint64("seq", uint64(sc.Seq)).Str("was", sc.Problem).
			Msg("read models: a commit they skipped as damaged can be read now (an upgrade?); rebuilding every projection from seq 1")
		if err := r.st.Rebuild(); err != nil {
			return fmt.Errorf("read models: rebuild: %w", err)
		}
		r.mu.Lock()
		r.cp, r.damaged, r.unfiled = 0, map[eventstore.Seq]SkippedCommit{}, map[eventstore.Seq]bool{}
		r.mu.Unlock()
		r.report()
		return nil
	}
	r.mu.Lock()
	for _, sc := range open {
		if _, ok := r.damaged[sc.Seq]; !ok {
			r.damaged[sc.Seq], r.unfiled[sc.Seq] = r.withSubject(sc), true
		}
	}
	r.mu.Unlock()
	r.report()
	return nil
}

// withSubject fills in the subject of a commit the codec could not decode.
func (r *Runner) withSubject(sc SkippedCommit) SkippedCommit {
	if sc.Subject == "" && sc.AggregateType != "" {
		sc.Subject = r.es.Subject(eventstore.Ref{Type: sc.AggregateType, ID: sc.AggregateID})
	}
	return sc
}

// noteSkipped reports the damaged commits a batch skipped: each is logged
// with its sequence, recorded as a dead letter and named by the part's
// readiness until an operator sets it aside.
func (r *Runner) noteSkipped(ctx context.Context, skipped []SkippedCommit) {
	if len(skipped) == 0 {
		return
	}
	for _, sc := range skipped {
		sc = r.withSubject(sc)
		log := r.log.With().Uint64("seq", uint64(sc.Seq)).Str("subject", sc.Subject).Str("aggregate_type", sc.AggregateType).
			Str("aggregate_id", sc.AggregateID).Str("problem", sc.Problem).Logger()
		if sc.SetAside {
			log.Info().Str("reason", sc.Reason).Msg("read models: skipped a damaged commit an operator set aside")
			continue
		}
		// The set-aside record of a commit that is a message this engine
		// reads but whose events it cannot decode is only looked up here.
		if sa, ok, err := r.es.SetAsideAt(ctx, sc.Seq); err == nil && ok {
			r.resolve(ctx, sc.Seq, sa.Reason)
			continue
		}
		log.Error().Msg("read models: damaged commit skipped, not applied; its aggregate is refused until an operator sets it aside " +
			"(bankbook event set-aside --seq N --reason TEXT)")
		r.mu.Lock()
		r.damaged[sc.Seq], r.unfiled[sc.Seq] = sc, true
		r.mu.Unlock()
		r.file(ctx, sc)
	}
	r.report()
}

// watchDamaged looks, every checkInt while there are damaged commits, for
// their set-aside records, and records the dead letters that could not be
// recorded before, until ctx ends.
func (r *Runner) watchDamaged(ctx context.Context) {
	t := time.NewTicker(r.checkInt)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		open := slices.Collect(maps.Values(r.damaged))
		r.mu.Unlock()
		changed := false
		for _, sc := range open {
			sa, ok, err := r.es.SetAsideAt(ctx, sc.Seq)
			switch {
			case err != nil:
				continue
			case ok:
				r.resolve(ctx, sc.Seq, sa.Reason)
				changed = true
				continue
			}
			r.mu.Lock()
			unfiled := r.unfiled[sc.Seq]
			r.mu.Unlock()
			if unfiled {
				r.file(ctx, sc)
			}
		}
		if changed {
			r.report()
		}
	}
}

// resolve records that the commit at seq is set aside: in the file, and by
// resolving its dead letters.
func (r *Runner) resolve(ctx context.Context, seq eventstore.Seq, reason string) {
	log := r.log.With().Uint64("seq", uint64(seq)).Str("reason", reason).Logger()
	if err := r.st.MarkSetAside(seq, reason); err != nil {
		log.Warn().Err(err).Msg("read models: recording a set-aside commit failed")
	}
	r.mu.Lock()
	delete(r.damaged, seq)
	delete(r.unfiled, seq)
	r.mu.Unlock()
	dead, err := r.deadLetters(ctx)
	if err == nil {
		var ids []uint64
		if ids, err = r.filed(ctx, dead, seq); err == nil {
			for _, id := range ids {
				if derr := dead.Discard(ctx, id, "set aside: "+reason); derr != nil && !errors.Is(derr, worker.ErrNotFound) {
					err = derr
				}
			}
		}
	}
	if err != nil {
		log.Warn().Err(err).Msg("read models: resolving the dead letter of a set-aside commit failed; discard it by hand")
	}
	log.Info().Msg("read models: damaged commit set aside by an operator")
}

// file records sc as a dead letter, unless one is recorded already (by this
// instance before a restart, or by another instance's read models).
func (r *Runner) file(ctx context.Context, sc SkippedCommit) {
	dead, err := r.deadLetters(ctx)
	var ids []uint64
	if err == nil {
		ids, err = r.filed(ctx, dead, sc.Seq)
	}
	if err == nil && len(ids) == 0 {
		_, err = dead.Record(ctx, worker.DeadLetter{
			Part: DeadLetterPart, Stream: r.es.Config().Stream, Seq: uint64(sc.Seq), Subject: sc.Subject,
			Attempts: 1, Delivered: 1, Error: sc.Problem, Permanent: true,
		})
	}
	if err != nil {
		r.log.Warn().Err(err).Uint64("seq", uint64(sc.Seq)).Msg("read models: recording the dead letter of a damaged commit failed; trying again")
		return
	}
	r.mu.Lock()
	delete(r.unfiled, sc.Seq)
	r.mu.Unlock()
}

// filed returns the IDs of the Runner's dead letters of the commit at seq.
func (r *Runner) filed(ctx context.Context, dead *worker.DeadLetters, seq eventstore.Seq) ([]uint64, error) {
	var ids []uint64
	stream := r.es.Config().Stream
	for after := uint64(0); ; {
		list, next, err := dead.List(ctx, worker.ListOptions{Part: DeadLetterPart, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, dl := range list {
			if dl.Stream == stream && dl.Seq == uint64(seq) {
				ids = append(ids, dl.ID)
			}
		}
		if next == 0 {
			return ids, nil
		}
		after = next
	}
}

func (r *Runner) deadLetters(ctx context.Context) (*worker.DeadLetters, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead == nil {
		dead, err := r.es.OpenDeadLetters(ctx)
		if err != nil {
			return nil, err
		}
		r.dead = dead
	}
	return r.dead, nil
}

// report tells the supervisor whether the part is ready: not while a
// damaged commit waits to be set aside.
func (r *Runner) report() {
	damaged := r.Damaged()
	r.mu.Lock()
	h := r.health
	r.mu.Unlock()
	if len(damaged) == 0 {
		h.SetReady(true, "")
		return
	}
	parts := make([]string, 0, min(len(damaged), 5))
	for _, sc := range damaged[:min(len(damaged), 5)] {
		parts = append(parts, fmt.Sprintf("seq %d on %s", sc.Seq, cmp.Or(sc.Subject, "?")))
	}
	if len(damaged) > 5 {
		parts = append(parts, fmt.Sprintf("and %d more", len(damaged)-5))
	}
	h.SetReady(false, fmt.Sprintf("skipped %d damaged commit(s), not applied: %s; set each aside with "+
		"'bankbook event set-aside --seq N --reason TEXT' (bankbook.cmd.event.set_aside)", len(damaged), strings.Join(parts, ", ")))
}
