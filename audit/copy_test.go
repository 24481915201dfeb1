package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// copyStream copies s's event stream, message by message, through edit
// into a new stream with the event stream's settings, and returns a
// Reader of the copy: a stream tampered with below the engine, which no
// engine identity could do.
func copyStream(t *testing.T, s *stream, name string, edit func([]eventstore.RawMessage) []eventstore.RawMessage) *eventstore.Reader {
	t.Helper()
	ctx := context.Background()
	var msgs []eventstore.RawMessage
	if _, err := eventstore.ReadDirect(ctx, s.js, "BANKBOOK_EVENTS", 5*time.Second, func(m eventstore.RawMessage) error {
		msgs = append(msgs, eventstore.RawMessage{Seq: m.Seq, Subject: m.Subject, Data: bytes.Clone(m.Data)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	prefix := strings.ToLower(name) + ".evt"
	if _, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, AllowDirect: true, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for _, m := range edit(msgs) {
		if _, err := s.js.Publish(ctx, prefix+strings.TrimPrefix(m.Subject, "bankbook.evt"), m.Data); err != nil {
			t.Fatal(err)
		}
	}
	return eventstore.NewReader(s.js, eventstore.Config{Stream: name, SubjectPrefix: prefix, Upcaster: domain.Events()})
}

// Tampering with a copy of the stream, below the engine: audit verify
// names each change by its check and sequence, and the digest the verifier
// trusts (taken before) names what no link inside the stream can, the
// truncated tail.
func TestVerifyNamesTamperingInACopyOfTheStream(t *testing.T) {
	s := newStream(t)
	money(s) // 10 commits: seq 2 d2 recorded, 3 d2 resolved, 4 u1 credited, 5 u1 debited, ...
	trusted, err := eventstore.Digest(context.Background(), s.store.Reader(), 0)
	if err != nil || trusted.Seq != 10 {
		t.Fatalf("digest: %+v %v", trusted, err)
	}
	tests := []struct {
		name   string
		edit   func([]eventstore.RawMessage) []eventstore.RawMessage
		chains []eventstore.Seq // the chains findings, by sequence
		digest eventstore.Seq   // the digest finding's sequence
	}{
		{"an event payload edited", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			m[1].Data = bytes.Replace(m[1].Data, []byte(`"amount":500,`), []byte(`"amount":5000,`), 1) // d2's deposit
			return m
		}, []eventstore.Seq{3}, 10},
		{"a commit removed", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			// u1's first credit: every later commit now sits one sequence
			// lower than its successor's link says.
			return slices.Delete(m, 3, 4)
		}, []eventstore.Seq{4, 6, 7, 8}, 9},
		{"two commits reordered", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			m[3], m[4] = m[4], m[3] // u1 debited before it was credited
			return m
		}, []eventstore.Seq{4, 5, 8}, 10}, // 8: u1's next commit links to seq 5 by a hash that is now seq 4's
		{"the tail truncated", func(m []eventstore.RawMessage) []eventstore.RawMessage {
			return m[:8]
		}, nil, 8},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := copyStream(t, s, fmt.Sprintf("COPY%d", i), tt.edit)
			rep, err := audit.Verify(context.Background(), audit.Options{Reader: r, Digest: &trusted, TempDir: t.TempDir(),
				Now: func() time.Time { return t0.Add(time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			var chains []eventstore.Seq
			for _, f := range findings(rep, audit.CheckChains) {
				chains = append(chains, f.Seq)
			}
			if !slices.Equal(chains, tt.chains) {
				t.Errorf("chains findings at %v, want %v: %+v", chains, tt.chains, rep.Findings)
			}
			if f := findings(rep, audit.CheckDigest); len(f) != 1 || f[0].Seq != tt.digest {
				t.Errorf("digest findings %+v, want one at seq %d", f, tt.digest)
			}
			if rep.OK {
				t.Error("a tampered copy verified OK")
			}
		})
	}
	t.Run("an untouched copy", func(t *testing.T) {
		r := copyStream(t, s, "COPYCLEAN", func(m []eventstore.RawMessage) []eventstore.RawMessage { return m })
		rep, err := audit.Verify(context.Background(), audit.Options{Reader: r, Digest: &trusted, TempDir: t.TempDir(),
			Now: func() time.Time { return t0.Add(time.Hour) }})
		if err != nil || !rep.OK || !slices.Contains(rep.Checked.Checks, audit.CheckDigest) {
			t.Fatalf("clean copy: %v %+v", err, rep)
		}
	})
}

// A message removed from the stream's files leaves a gap in its sequences
// (the server drops a message it finds damaged, say). No replay gets past
// it, but that is a finding, not a verification that could not run: chains
// names the gap and the commit that pointed at it, read_models the gap when
// the live read models claim to be past it. Read models still before it
// (rebuilt since, or a restored data directory) do not hide it, and no
// digest covers it.
func TestVerifyNamesAGapInTheStream(t *testing.T) {
	s := newStream(t)
	money(s)
	// Seqs 11 and 12: deposits that are their aggregates' only commits, so
	// no chain points at them.
	for _, txn := range []string{"X3", "X4"} {
		id := depID(bankAcct, txn)
		s.append(domain.AggregateDeposit, string(id), domain.DepositRecorded{DepositID: id, BankTxnID: txn, AccountNumber: bankAcct, DepositorName: "누군가", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	}
	ctx := context.Background()
	gapped := func(name string, seq uint64) *eventstore.Reader {
		r := copyStream(t, s, name, func(m []eventstore.RawMessage) []eventstore.RawMessage { return m })
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
		return r
	}
	verify := func(t *testing.T, r *eventstore.Reader, live audit.LiveState) audit.Report {
		t.Helper()
		rep, err := audit.Verify(ctx, audit.Options{Reader: r, TempDir: t.TempDir(), Now: func() time.Time { return t0.Add(time.Hour) },
			Live: func(context.Context) (audit.LiveState, error) { return live, nil }})
		if err != nil {
			t.Fatalf("verify of a stream with a gap could not run: %v", err)
		}
		if rep.OK {
			t.Error("a stream with a gap verified OK")
		}
		return rep
	}

	t.Run("a chained commit, live read models past it", func(t *testing.T) {
		r := gapped("GAPPED", 4) // u1's first credit
		rep := verify(t, r, audit.LiveState{Hash: "whatever", Seq: 12})
		if f := findings(rep, audit.CheckReadModels); len(f) != 1 || f[0].Seq != 4 {
			t.Errorf("read_models findings %+v, want one at seq 4", f)
		}
		f := findings(rep, audit.CheckChains)
		if len(f) != 2 || f[0].Seq != 4 || !strings.Contains(f[0].Message, "no message at seq 4,") || f[1].Seq != 5 {
			t.Errorf("chains findings %+v, want the gap at seq 4, then u1's next commit at seq 5", f)
		}
		var missing *eventstore.MissingError
		if _, err := eventstore.Digest(ctx, r, 0); !errors.As(err, &missing) || missing.From != 4 || missing.To != 4 {
			t.Errorf("digest over the gap: %v, want the missing seq 4", err)
		}
		if d, err := eventstore.Digest(ctx, r, 3); err != nil || d.Seq != 3 || d.Commits != 3 {
			t.Errorf("digest up to the gap: %+v, %v", d, err)
		}
	})
	t.Run("an aggregate's only commit, live read models before it", func(t *testing.T) {
		r := gapped("GAPPED2", 11)
		before, err := projections.ReplayWith(ctx, r, filepath.Join(t.TempDir(), "before.db"), nil, &projections.ReplayOptions{UntilSeq: 10})
		if err != nil {
			t.Fatal(err)
		}
		rep := verify(t, r, audit.LiveState{Hash: before.Hash, Seq: before.Checkpoint})
		if f := findings(rep, audit.CheckReadModels); len(f) != 0 {
			t.Errorf("read_models findings %+v, want none: the live read models are before the gap", f)
		}
		if f := findings(rep, audit.CheckChains); len(f) != 1 || f[0].Seq != 11 || !strings.Contains(f[0].Message, "next message is seq 12") {
			t.Errorf("chains findings %+v, want the gap at seq 11", f)
		}
		if _, err := eventstore.Digest(ctx, r, 12); !errors.Is(err, eventstore.ErrNoMessage) {
			t.Errorf("digest over the gap: %v, want %v", err, eventstore.ErrNoMessage)
		}
	})
}

// The end of the log lost (the server dropped the last messages of a
// damaged block): the stream's last sequence holds no message, which a
// direct get of the last message took for an empty stream. Verify checks
// what is left and names the loss, the read models that hold more, and
// a digest is refused beyond what is left.
func TestVerifyNamesALostEndOfTheStream(t *testing.T) {
	s := newStream(t)
	money(s)
	r := copyStream(t, s, "TAILLESS", func(m []eventstore.RawMessage) []eventstore.RawMessage { return m })
	ctx := context.Background()
	st, err := s.js.Stream(ctx, "TAILLESS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := eventstore.Seq(info.State.LastSeq)
	for _, seq := range []eventstore.Seq{last, last - 1} {
		if err := st.DeleteMsg(ctx, uint64(seq)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(ctx, audit.Options{Reader: r, TempDir: t.TempDir(), Now: func() time.Time { return t0.Add(time.Hour) },
		Live: func(context.Context) (audit.LiveState, error) {
			return audit.LiveState{Hash: "whatever", Seq: last}, nil
		}})
	if err != nil {
		t.Fatalf("verify of a stream without its end could not run: %v", err)
	}
	if rep.OK || rep.Checked.LastSeq != last-2 {
		t.Errorf("verified OK %v up to seq %d; want findings, and seq %d checked", rep.OK, rep.Checked.LastSeq, last-2)
	}
	if f := findings(rep, audit.CheckChains); len(f) != 1 || f[0].Seq != last-1 {
		t.Errorf("chains findings %+v, want one at seq %d", f, last-1)
	}
	if f := findings(rep, audit.CheckReadModels); len(f) != 1 || f[0].Seq != last-1 {
		t.Errorf("read_models findings %+v, want one at seq %d", f, last-1)
	}
	if _, err := eventstore.Digest(ctx, r, 0); !errors.Is(err, eventstore.ErrNoMessage) {
		t.Errorf("digest at the end: %v, want %v", err, eventstore.ErrNoMessage)
	}
	if d, err := eventstore.Digest(ctx, r, last-2); err != nil || d.Seq != last-2 {
		t.Errorf("digest up to what is left: %+v, %v", d, err)
	}
}
