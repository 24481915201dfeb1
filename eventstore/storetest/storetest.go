package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/eventstore"
)

// Store is what the contract covers: appends and loads of aggregates, and
// the stream's last sequence.
type Store interface {
	Append(ctx context.Context, ref eventstore.Ref, expected eventstore.Seq, prevVersion int, commitID string, events []eventstore.Envelope) (eventstore.Commit, error)
	Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error)
	LastSeq(ctx context.Context) (eventstore.Seq, error)
}

// Opener returns a new, empty store that applies up (nil: none) to every
// event it reads back. It is called once per case.
type Opener func(t *testing.T, up eventstore.Upcaster) Store

// Run runs every case of the contract against stores made by open.
func Run(t *testing.T, open Opener) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"AppendThenLoadReturnsTheChain", appendThenLoad},
		{"SequencesAreGlobalAndGapFree", globalSequence},
		{"EnvelopesRoundTrip", envelopesRoundTrip},
		{"StaleExpectationConflictsAndWritesNothing", staleExpectation},
		{"ExpectationOfAMissingCommitConflicts", missingExpectation},
		{"RetriedAppendIsStoredOnce", retriedAppend},
		{"ConcurrentAppendersLoseNoUpdate", concurrentAppenders},
		{"MalformedRequestsAreInvalid", malformed},
		{"LoadedCommitsAreCopies", loadedCopies},
		{"UpcasterAppliedOnLoad", upcast},
		{"CommitsChainToThePreviousCommitsHash", hashChain},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// Event returns an envelope of event type typ with data as its JSON payload
// and a fresh event ID, at schema version 1.
func Event(typ string, data any) eventstore.Envelope {
	b, _ := json.Marshal(data)
	return eventstore.Envelope{EventID: fmt.Sprintf("e-%d", time.Now().UnixNano()), EventType: typ, SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: b}
}

// AppendOne loads ref and appends e as one commit with the expectation and
// version the load found, as a command would.
func AppendOne(ctx context.Context, s Store, ref eventstore.Ref, commitID string, e eventstore.Envelope) (eventstore.Commit, error) {
	commits, err := s.Load(ctx, ref, 0)
	if err != nil {
		return eventstore.Commit{}, err
	}
	var last eventstore.Seq
	version := 0
	for _, c := range commits {
		last = c.Seq
		version += len(c.Events)
	}
	return s.Append(ctx, ref, last, version, commitID, []eventstore.Envelope{e})
}

func load(t *testing.T, s Store, ref eventstore.Ref, after eventstore.Seq) []eventstore.Commit {
	t.Helper()
	commits, err := s.Load(context.Background(), ref, after)
	if err != nil {
		t.Fatalf("load %s after %d: %v", ref, after, err)
	}
	return commits
}

func appendThenLoad(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	a := eventstore.Ref{Type: "order", ID: "A"}
	b := eventstore.Ref{Type: "order", ID: "B"}
	// Interleave two aggregates so each one's chain skips the other's commits.
	for i := range 4 {
		for _, ref := range []eventstore.Ref{a, b} {
			if _, err := AppendOne(ctx, s, ref, fmt.Sprintf("%s-%d", ref.ID, i), Event("t", map[string]int{"i": i})); err != nil {
				t.Fatalf("append %s %d: %v", ref, i, err)
			}
		}
	}
	commits := load(t, s, a, 0)
	if len(commits) != 4 {
		t.Fatalf("loaded %d commits, want 4", len(commits))
	}
	for i, c := range commits {
		if c.CommitID != fmt.Sprintf("A-%d", i) || c.Events[0].Version != i+1 || c.Ref() != a || c.Events[0].AggregateID != "A" || c.Events[0].AggregateType != "order" {
			t.Fatalf("commit %d = %+v", i, c)
		}
		if i == 0 && c.PrevSeq != 0 || i > 0 && c.PrevSeq != commits[i-1].Seq {
			t.Fatalf("commit %d links to %d", i, c.PrevSeq)
		}
		if c.Events[0].RecordedAt.IsZero() {
			t.Fatal("recorded_at not set")
		}
	}
	tail := load(t, s, a, commits[1].Seq)
	if len(tail) != 2 || tail[0].CommitID != "A-2" || tail[1].CommitID != "A-3" {
		t.Fatalf("load after %d = %+v", commits[1].Seq, tail)
	}
	if rest := load(t, s, a, commits[3].Seq); len(rest) != 0 {
		t.Fatalf("load after the last commit = %d commits", len(rest))
	}
	if none := load(t, s, eventstore.Ref{Type: "order", ID: "nobody"}, 0); len(none) != 0 {
		t.Fatalf("load of an unknown aggregate = %+v", none)
	}
}

func globalSequence(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	if last, err := s.LastSeq(ctx); err != nil || last != 0 {
		t.Fatalf("last seq of an empty store = %d, %v", last, err)
	}
	refs := []eventstore.Ref{{Type: "order", ID: "1"}, {Type: "wallet", ID: "1"}, {Type: "order", ID: "2"}}
	var prev eventstore.Seq
	for i := range 6 {
		c, err := AppendOne(ctx, s, refs[i%len(refs)], fmt.Sprint("c", i), Event("t", i))
		if err != nil {
			t.Fatal(err)
		}
		if c.Seq != prev+1 {
			t.Fatalf("append %d stored at %d, want %d", i, c.Seq, prev+1)
		}
		prev = c.Seq
		if last, err := s.LastSeq(ctx); err != nil || last != c.Seq {
			t.Fatalf("last seq = %d, %v; want %d", last, err, c.Seq)
		}
	}
}

func envelopesRoundTrip(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "deposit", ID: "d-1"}
	at := time.Date(2025, 3, 1, 9, 30, 0, 123456000, time.UTC)
	in := []eventstore.Envelope{
		{EventID: "e1", EventType: "deposit.recorded", SchemaVersion: 2, OccurredAt: at, Command: "bankbook.cmd.deposit.record",
			CorrelationID: "corr", CausationID: "cause", IdempotencyKey: "key", Actor: "scanner", Data: json.RawMessage(`{"amount":1000}`)},
		{EventID: "e2", EventType: "deposit.resolved", SchemaVersion: 1, OccurredAt: at, Data: json.RawMessage(`{"action":"x"}`)},
	}
	// The aggregate fields, versions and RecordedAt are the store's.
	in[0].AggregateID, in[0].Version = "wrong", 99
	appended, err := s.Append(ctx, ref, 0, 0, "commit-1", in)
	if err != nil {
		t.Fatal(err)
	}
	commits := load(t, s, ref, 0)
	if len(commits) != 1 {
		t.Fatalf("%d commits, want 1", len(commits))
	}
	got := commits[0]
	if got.Seq != appended.Seq || got.CommitID != "commit-1" || got.PrevSeq != 0 || got.Ref() != ref || got.Format != appended.Format || len(got.Events) != 2 {
		t.Fatalf("loaded %+v, appended %+v", got, appended)
	}
	for i, e := range got.Events {
		want := in[i]
		want.AggregateType, want.AggregateID, want.Version = ref.Type, ref.ID, i+1
		if !e.OccurredAt.Equal(want.OccurredAt) || !e.RecordedAt.Equal(appended.Events[i].RecordedAt) || e.RecordedAt.IsZero() {
			t.Fatalf("event %d times: %v %v", i, e.OccurredAt, e.RecordedAt)
		}
		e.OccurredAt, e.RecordedAt, want.OccurredAt, want.RecordedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if fmt.Sprint(e) != fmt.Sprint(want) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, e, want)
		}
		if a := appended.Events[i]; a.Version != i+1 || a.AggregateID != ref.ID {
			t.Fatalf("appended event %d: %+v", i, a)
		}
	}
}

func staleExpectation(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "X"}
	first, err := s.Append(ctx, ref, 0, 0, "c1", []eventstore.Envelope{Event("t", 1)})
	if err != nil {
		t.Fatal(err)
	}
	// Two writers that loaded the same state: the second one's expectation is stale.
	_, err = s.Append(ctx, ref, 0, 0, "c2", []eventstore.Envelope{Event("t", 2), Event("t", 3)})
	var ce *eventstore.ConflictError
	if !errors.Is(err, eventstore.ErrConflict) || !errors.As(err, &ce) {
		t.Fatalf("stale append: %v, want a *ConflictError matching ErrConflict", err)
	}
	if ce.Ref != ref || ce.Expected != 0 || ce.Actual != first.Seq {
		t.Fatalf("conflict = %+v, want expected 0, actual %d", ce, first.Seq)
	}
	if commits := load(t, s, ref, 0); len(commits) != 1 || commits[0].CommitID != "c1" {
		t.Fatalf("a refused multi-event commit left %+v", commits)
	}
	if last, _ := s.LastSeq(ctx); last != first.Seq {
		t.Fatalf("last seq %d after a refused append, want %d", last, first.Seq)
	}
	// The fresh expectation succeeds.
	second, err := s.Append(ctx, ref, first.Seq, 1, "c3", []eventstore.Envelope{Event("t", 4)})
	if err != nil || second.PrevSeq != first.Seq || second.Events[0].Version != 2 {
		t.Fatalf("append with the fresh expectation: %+v %v", second, err)
	}
}

func missingExpectation(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	other, err := s.Append(ctx, eventstore.Ref{Type: "order", ID: "other"}, 0, 0, "o1", []eventstore.Envelope{Event("t", 1)})
	if err != nil {
		t.Fatal(err)
	}
	// An aggregate without commits expected to be at another's commit.
	ref := eventstore.Ref{Type: "order", ID: "new"}
	if _, err := s.Append(ctx, ref, other.Seq, 1, "n1", []eventstore.Envelope{Event("t", 1)}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("append to an empty aggregate expecting seq %d: %v", other.Seq, err)
	}
	if commits := load(t, s, ref, 0); len(commits) != 0 {
		t.Fatalf("%d commits after a refused append", len(commits))
	}
}

func retriedAppend(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "retry"}
	events := []eventstore.Envelope{Event("t", 1)}
	c1, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil {
		t.Fatal(err)
	}
	// The same commit again, as a retry after a lost answer would send it.
	again, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil || again.Seq != c1.Seq {
		t.Fatalf("retried append: seq %d, %v; want seq %d", again.Seq, err, c1.Seq)
	}
	// Another writer appends on top; a late retry still finds its commit.
	if _, err := s.Append(ctx, ref, c1.Seq, 1, "theirs", []eventstore.Envelope{Event("t", 2)}); err != nil {
		t.Fatal(err)
	}
	late, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil || late.Seq != c1.Seq {
		t.Fatalf("retry under a later commit: seq %d, %v; want seq %d", late.Seq, err, c1.Seq)
	}
	if commits := load(t, s, ref, 0); len(commits) != 2 {
		t.Fatalf("%d commits, want 2", len(commits))
	}
	// A different commit with the same stale expectation is a conflict.
	if _, err := s.Append(ctx, ref, 0, 0, "someone-else", events); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("different commit with a stale expectation: %v", err)
	}
}

func concurrentAppenders(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "counter", ID: "shared"}
	const writers, perWriter = 8, 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				_, err := AppendOne(ctx, s, ref, fmt.Sprintf("w%d-%d", w, i), Event("incr", map[string]int{"writer": w, "i": i}))
				switch {
				case err == nil:
					i++
				case errors.Is(err, eventstore.ErrConflict):
				default:
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	commits := load(t, s, ref, 0)
	if len(commits) != writers*perWriter {
		t.Fatalf("%d commits stored, want %d (lost update)", len(commits), writers*perWriter)
	}
	seen := map[string]bool{}
	for i, c := range commits {
		if c.Events[0].Version != i+1 || seen[c.CommitID] {
			t.Fatalf("commit %d: version %d, %s seen before: %v", i, c.Events[0].Version, c.CommitID, seen[c.CommitID])
		}
		seen[c.CommitID] = true
	}
	// Nothing was stored beside the chain: refused appends write nothing.
	if last, err := s.LastSeq(ctx); err != nil || last != commits[len(commits)-1].Seq || last != writers*perWriter {
		t.Fatalf("last seq %d, %v; want %d", last, err, writers*perWriter)
	}
}

func malformed(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	ok := eventstore.Ref{Type: "order", ID: "o"}
	// A stored aggregate that a wildcard would match.
	stored, err := s.Append(ctx, ok, 0, 0, "c0", []eventstore.Envelope{Event("t", 0)})
	if err != nil {
		t.Fatal(err)
	}
	one := []eventstore.Envelope{Event("t", 1)}
	for _, c := range []struct {
		name     string
		ref      eventstore.Ref
		commitID string
		events   []eventstore.Envelope
	}{
		{"no events", ok, "c", nil},
		{"no commit id", ok, "", one},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Append(ctx, c.ref, stored.Seq, 1, c.commitID, c.events); !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("append: %v, want ErrInvalid", err)
			}
		})
	}
	for _, c := range []struct {
		name string
		ref  eventstore.Ref
	}{
		{"no aggregate id", eventstore.Ref{Type: "order"}},
		{"no aggregate type", eventstore.Ref{ID: "o"}},
		{"dotted id", eventstore.Ref{Type: "order", ID: "a.b"}},
		{"dotted type", eventstore.Ref{Type: "order.x", ID: "o"}},
		{"full wildcard id", eventstore.Ref{Type: "order", ID: ">"}},
		{"wildcard id", eventstore.Ref{Type: "order", ID: "*"}},
		{"wildcard type", eventstore.Ref{Type: "*", ID: "o"}},
		{"full wildcard type", eventstore.Ref{Type: ">", ID: "o"}},
		{"space in id", eventstore.Ref{Type: "order", ID: "a b"}},
		{"space in type", eventstore.Ref{Type: "or der", ID: "o"}},
		{"tab in id", eventstore.Ref{Type: "order", ID: "a\tb"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Append(ctx, c.ref, 0, 0, "c-"+c.name, one); !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("append: %v, want ErrInvalid", err)
			}
			if _, err := s.Append(ctx, c.ref, stored.Seq, 1, "c-"+c.name, one); !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("append after seq %d: %v, want ErrInvalid", stored.Seq, err)
			}
			if got, err := s.Load(ctx, c.ref, 0); !errors.Is(err, eventstore.ErrInvalid) || len(got) != 0 {
				t.Fatalf("load: %d commits, %v; want ErrInvalid", len(got), err)
			}
		})
	}
	if last, err := s.LastSeq(ctx); err != nil || last != stored.Seq {
		t.Fatalf("last seq %d, %v after malformed appends; want %d", last, err, stored.Seq)
	}
	if commits := load(t, s, ok, 0); len(commits) != 1 || commits[0].CommitID != "c0" {
		t.Fatalf("the stored aggregate changed: %+v", commits)
	}
}

func loadedCopies(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "copy"}
	in := []eventstore.Envelope{Event("t", map[string]string{"v": "original"})}
	appended, err := s.Append(ctx, ref, 0, 0, "c", in)
	if err != nil {
		t.Fatal(err)
	}
	// Changing what was appended, what Append returned, or what Load
	// returned changes nothing stored.
	in[0].Data[len(in[0].Data)-3] = 'X'
	appended.Events[0].EventType = "changed"
	first := load(t, s, ref, 0)
	first[0].Events[0].Data[2] = 'Y'
	first[0].Events[0].Actor = "changed"
	again := load(t, s, ref, 0)
	e := again[0].Events[0]
	if string(e.Data) != `{"v":"original"}` || e.EventType != "t" || e.Actor != "" {
		t.Fatalf("stored event changed through a caller's copy: %+v %s", e, e.Data)
	}
}

// renamer upcasts test.renamed from schema 1 {"name"} to 2 {"full_name"}.
type renamer struct{}

func (renamer) Upcast(eventType string, version int, data json.RawMessage) (json.RawMessage, int, error) {
	if eventType != "test.renamed" || version != 1 {
		return data, version, nil
	}
	var v1 struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, 0, err
	}
	out, err := json.Marshal(map[string]string{"full_name": v1.Name})
	return out, 2, err
}

func upcast(t *testing.T, open Opener) {
	s := open(t, renamer{})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "person", ID: "p1"}
	if _, err := s.Append(ctx, ref, 0, 0, "c1", []eventstore.Envelope{Event("test.renamed", map[string]string{"name": "김민수"})}); err != nil {
		t.Fatal(err)
	}
	got := load(t, s, ref, 0)[0].Events[0]
	if got.SchemaVersion != 2 || !strings.Contains(string(got.Data), `"full_name":"김민수"`) {
		t.Fatalf("loaded schema %d %s, want 2 with full_name", got.SchemaVersion, got.Data)
	}
}

// hashChain: every commit (format 2) records the hash of the stored bytes
// of its aggregate's previous commit, and its own Hash is the hash of its
// stored bytes, as Append returned it and as Load reads it back.
func hashChain(t *testing.T, open Opener) {
	s := open(t, nil)
	ctx := context.Background()
	a := eventstore.Ref{Type: "order", ID: "chained"}
	b := eventstore.Ref{Type: "order", ID: "other"}
	appended := map[eventstore.Seq]eventstore.Commit{}
	for i := range 3 {
		for _, ref := range []eventstore.Ref{a, b} {
			c, err := AppendOne(ctx, s, ref, fmt.Sprintf("%s-%d", ref.ID, i), Event("t", i))
			if err != nil {
				t.Fatalf("append %s %d: %v", ref, i, err)
			}
			if c.Hash == (eventstore.Hash{}) {
				t.Fatalf("append %s %d returned no hash", ref, i)
			}
			appended[c.Seq] = c
		}
	}
	// A retried append returns the stored commit's hash.
	first := load(t, s, a, 0)[0]
	again, err := s.Append(ctx, a, 0, 0, "chained-0", []eventstore.Envelope{Event("t", 0)})
	if err != nil || again.Seq != first.Seq || again.Hash != first.Hash {
		t.Fatalf("retried append: seq %d hash %s, %v; want seq %d hash %s", again.Seq, again.Hash, err, first.Seq, first.Hash)
	}
	for _, ref := range []eventstore.Ref{a, b} {
		commits := load(t, s, ref, 0)
		if len(commits) != 3 {
			t.Fatalf("%s: %d commits, want 3", ref, len(commits))
		}
		for i, c := range commits {
			if c.Format != 2 {
				t.Fatalf("%s commit %d: format %d, want 2", ref, i, c.Format)
			}
			if c.Hash != appended[c.Seq].Hash {
				t.Fatalf("%s commit %d: loaded hash %s, appended %s", ref, i, c.Hash, appended[c.Seq].Hash)
			}
			if c.PrevHash != appended[c.Seq].PrevHash {
				t.Fatalf("%s commit %d: loaded prev hash %q, appended %q", ref, i, c.PrevHash, appended[c.Seq].PrevHash)
			}
			want := ""
			if i > 0 {
				want = commits[i-1].Hash.String()
			}
			if c.PrevHash != want {
				t.Fatalf("%s commit %d at seq %d: prev hash %q, want %q (the hash of seq %d)", ref, i, c.Seq, c.PrevHash, want, c.PrevSeq)
			}
		}
		if breaks := eventstore.VerifyChain(commits); len(breaks) != 0 {
			t.Fatalf("%s: %v", ref, breaks)
		}
	}
}
