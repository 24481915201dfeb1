package projections_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// applies counts the Apply calls of each projection of a registry.
type applies map[string]*atomic.Int64

func (a applies) of(name string) int64 { return a[name].Load() }

// counted wraps every projection's Apply with a counter. Counting does not
// change what a projection writes.
func counted(ps []projections.Projection) ([]projections.Projection, applies) {
	n := applies{}
	out := make([]projections.Projection, len(ps))
	for i, p := range ps {
		c := new(atomic.Int64)
		n[p.Name] = c
		apply := p.Apply
		p.Apply = func(b []*bbolt.Bucket, cm eventstore.Commit, e eventstore.Envelope, ev domain.Event) error {
			c.Add(1)
			return apply(b, cm, e, ev)
		}
		out[i] = p
	}
	return out, n
}

// buyers is a projection a later release adds: orders per buyer, in bucket
// "buyers" (buyer_id → count, uint64 big-endian).
func buyers() projections.Projection {
	return projections.Projection{
		Name: "buyers", Version: 1, Buckets: []string{"buyers"},
		Apply: func(b []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
			sub, ok := ev.(domain.OrderSubmitted)
			if !ok {
				return nil
			}
			var n uint64
			if v := b[0].Get([]byte(sub.BuyerID)); len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
			return b[0].Put([]byte(sub.BuyerID), binary.BigEndian.AppendUint64(nil, n+1))
		},
	}
}

// gate makes a projection's first Apply wait until the test opens it, so a
// test can look at a Runner in the middle of a rebuild.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) wrap(p projections.Projection) projections.Projection {
	apply := p.Apply
	p.Apply = func(b []*bbolt.Bucket, c eventstore.Commit, e eventstore.Envelope, ev domain.Event) error {
		g.once.Do(func() {
			close(g.entered)
			<-g.release
		})
		return apply(b, c, e, ev)
	}
	return p
}

func (g *gate) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the gated projection was never applied")
	}
}

// history writes n orders (every third one cancelled), a wallet credit, a
// withdrawal and its settled payout, and an orphaned deposit; it returns the
// number of events.
func history(t testing.TB, f *fixture, from, n int) int {
	t.Helper()
	events := 0
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("o%02d", i)
		f.submit(t, id, i)
		events++
		if i%3 == 0 {
			f.cancel(t, id, "", t0.Add(time.Hour))
			events++
		}
	}
	user := domain.UserID(fmt.Sprintf("u%02d", from))
	credit := domain.WalletCredited{UserID: user, Amount: 5_000, Kind: "refund", Ref: "order:x", FromAccount: domain.AccountSuspense, CreditedAt: t0}
	f.append(t, "w"+string(user), f.envelope(t, credit, t0))
	debit := domain.WalletDebited{UserID: user, Amount: 2_000, PayoutID: "p1", DebitAt: t0.Add(time.Minute)}
	f.append(t, "w"+string(user), f.envelope(t, debit, t0.Add(time.Minute)))
	pid := domain.PayoutID(fmt.Sprintf("p%02d", from))
	req := domain.PayoutRequested{PayoutID: pid, Amount: 2_000, To: domain.BankAccount{Bank: "KB", Number: "1-2-3", Holder: "아무개"},
		PayFrom: "123-456-7890", Source: domain.PayoutFromWallet, SourceID: string(user), FromAccount: domain.AccountWallet(user), RequestedAt: t0.Add(time.Minute)}
	f.append(t, string(pid), f.envelope(t, req, t0.Add(time.Minute)))
	settled := domain.PayoutSettled{PayoutID: pid, Amount: 2_000, Fee: 300, BankAccount: "123-456-7890", SettledAt: t0.Add(2 * time.Minute)}
	f.append(t, string(pid), f.envelope(t, settled, t0.Add(2*time.Minute)))
	dep := domain.DepositRecorded{
		DepositID: domain.DepositID(fmt.Sprintf("d%02d", from)), BankTxnID: fmt.Sprintf("t%02d", from), AccountNumber: "123-456-7890",
		DepositorName: "아무개", Amount: 7_000, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: t0,
	}
	f.append(t, string(dep.DepositID), f.envelope(t, dep, t0))
	return events + 5
}

// openWith opens a read-model file with a registry, closed when the test
// ends.
func openWith(t testing.TB, path string, ps []projections.Projection) *projections.Store {
	t.Helper()
	st, err := projections.Open(path, &projections.Options{Projections: ps})
	if err != nil {
		t.Fatalf("open read models: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// buildFile runs the default read models over the whole stream into path and
// closes the file again.
func buildFile(t testing.TB, f *fixture, path string) {
	t.Helper()
	st, err := projections.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(f.es, st, testLogger(t))
	stop := startRunner(t, r)
	waitFor(t, r, f.lastSeq(t))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func states(t testing.TB, st *projections.Store) map[string]projections.ProjectionState {
	t.Helper()
	list, err := st.Projections()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]projections.ProjectionState{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

// replayHash rebuilds the registry into a fresh file and returns its hash.
func replayHash(t testing.TB, f *fixture, ps []projections.Projection) (string, eventstore.Seq) {
	t.Helper()
	cp, h, err := projections.Replay(context.Background(), f.es.Reader(), tempPath(t, "replay.db"), &projections.Options{Projections: ps})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return h, cp
}

func TestNewProjectionIsRebuiltWhileTheOthersKeepTheirs(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	n1 := history(t, f, 0, 12)
	last1 := f.lastSeq(t)
	buildFile(t, f, path)

	// The next release registers "buyers" beside the default projections.
	g := newGate()
	registry, count := counted(append(projections.DefaultProjections(), g.wrap(buyers())))
	st := openWith(t, path, registry)
	before := order(t, st, "o03")
	wallet, err := st.Wallet("u00", 500, "")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("open resets only the new projection", func(t *testing.T) {
		for name, s := range states(t, st) {
			switch {
			case name == "buyers" && (s.Reset != "new to the file" || s.Checkpoint != 0):
				t.Errorf("buyers = %+v, want reset as new at checkpoint 0", s)
			case name != "buyers" && (s.Reset != "" || s.Checkpoint != last1):
				t.Errorf("%s = %+v, want kept at checkpoint %d", name, s, last1)
			}
		}
		if cp := checkpoint(t, st); cp != 0 {
			t.Errorf("store checkpoint %d, want 0 (buyers has applied nothing)", cp)
		}
		if _, _, err := st.Hash(); !errors.Is(err, projections.ErrRebuilding) {
			t.Errorf("hash while projections disagree: got %v, want ErrRebuilding", err)
		}
	})

	r := projections.NewRunner(f.es, st, testLogger(t))
	if ready, reason := r.Ready(); ready || reason != "not started" {
		t.Fatalf("Ready before Run = %v, %q", ready, reason)
	}
	startRunner(t, r)

	t.Run("not ready while rebuilding", func(t *testing.T) {
		g.waitEntered(t)
		ready, reason := r.Ready()
		want := fmt.Sprintf("rebuilding projections up to seq %d: buyers at seq 0", last1)
		if ready || reason != want {
			t.Errorf("Ready during rebuild = %v, %q; want false, %q", ready, reason, want)
		}
		if lag := r.Lag(last1); lag != uint64(last1) {
			t.Errorf("lag during rebuild %d, want %d", lag, last1)
		}
		close(g.release)
	})

	waitFor(t, r, last1)
	testenv.Eventually(t, 5*time.Second, "the runner to be ready", func() bool {
		ready, _ := r.Ready()
		return ready
	})

	t.Run("only the new projection was applied", func(t *testing.T) {
		for name := range count {
			want := int64(0)
			if name == "buyers" {
				want = int64(n1)
			}
			if got := count.of(name); got != want {
				t.Errorf("%s applied %d events during the rebuild, want %d", name, got, want)
			}
		}
		if got := order(t, st, "o03"); !reflect.DeepEqual(got, before) {
			t.Errorf("order o03 changed: %+v, was %+v", got, before)
		}
		if got, _ := st.Wallet("u00", 500, ""); !reflect.DeepEqual(got, wallet) {
			t.Errorf("wallet u00 changed: %+v, was %+v", got, wallet)
		}
	})

	t.Run("then all follow the stream", func(t *testing.T) {
		n2 := history(t, f, 12, 4)
		last2 := f.lastSeq(t)
		waitFor(t, r, last2)
		for name := range count {
			want := int64(n2)
			if name == "buyers" {
				want = int64(n1 + n2)
			}
			if got := count.of(name); got != want {
				t.Errorf("%s applied %d events in all, want %d", name, got, want)
			}
		}
		for name, s := range states(t, st) {
			if s.Checkpoint != last2 {
				t.Errorf("%s at checkpoint %d, want %d", name, s.Checkpoint, last2)
			}
		}
		if lag := r.Lag(last2); lag != 0 {
			t.Errorf("lag %d once caught up", lag)
		}
		live, cp := hashOf(t, st)
		if replayed, rcp := replayHash(t, f, append(projections.DefaultProjections(), buyers())); replayed != live || rcp != cp {
			t.Errorf("live %s at %d, a replay with the same registry %s at %d", live, cp, replayed, rcp)
		}
	})
}

func TestVersionBumpRebuildsOnlyThatProjection(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	n := history(t, f, 0, 9)
	last := f.lastSeq(t)
	buildFile(t, f, path)

	st := openStore(t, path)
	wallet, err := st.Wallet("u00", 500, "")
	if err != nil || wallet.Balance != 3_000 {
		t.Fatalf("wallet u00 = %+v, %v", wallet, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	bumped := projections.DefaultProjections()
	var from int
	for i := range bumped {
		if bumped[i].Name == "wallets" {
			from = bumped[i].Version
			bumped[i].Version++
		}
	}
	registry, count := counted(bumped)
	st = openWith(t, path, registry)
	for name, s := range states(t, st) {
		switch {
		case name == "wallets" && (s.Reset != fmt.Sprintf("version %d → %d", from, from+1) || s.Checkpoint != 0 || s.Version != from+1):
			t.Errorf("wallets = %+v, want reset to version %d at checkpoint 0", s, from+1)
		case name != "wallets" && (s.Reset != "" || s.Checkpoint != last):
			t.Errorf("%s = %+v, want kept at checkpoint %d", name, s, last)
		}
	}
	if w, _ := st.Wallet("u00", 500, ""); w.Balance != 0 || len(w.Entries) != 0 {
		t.Fatalf("wallet u00 before the rebuild = %+v, want the dropped bucket empty", w)
	}

	r := projections.NewRunner(f.es, st, testLogger(t))
	startRunner(t, r)
	waitFor(t, r, last)
	testenv.Eventually(t, 5*time.Second, "the runner to be ready", func() bool {
		ready, _ := r.Ready()
		return ready
	})
	for name := range count {
		want := int64(0)
		if name == "wallets" {
			want = int64(n)
		}
		if got := count.of(name); got != want {
			t.Errorf("%s applied %d events, want %d", name, got, want)
		}
	}
	if got, _ := st.Wallet("u00", 500, ""); !reflect.DeepEqual(got, wallet) {
		t.Fatalf("rebuilt wallet %+v, was %+v", got, wallet)
	}
	live, cp := hashOf(t, st)
	if replayed, rcp := replayHash(t, f, bumped); replayed != live || rcp != cp {
		t.Fatalf("live %s at %d, replay %s at %d", live, cp, replayed, rcp)
	}

	t.Run("the same registry again keeps everything", func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		again := openWith(t, path, bumped)
		for name, s := range states(t, again) {
			if s.Reset != "" || s.Checkpoint != last {
				t.Errorf("%s = %+v after reopening with the same registry", name, s)
			}
		}
		if h, _ := hashOf(t, again); h != live {
			t.Error("hash changed across reopen")
		}
	})
}

func TestUnregisteredProjectionIsDropped(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	history(t, f, 0, 3)
	buildFile(t, f, path)

	var without []projections.Projection
	for _, p := range projections.DefaultProjections() {
		if p.Name != "deposits" {
			without = append(without, p)
		}
	}
	st := openWith(t, path, without)
	if _, _, err := st.Deposit("d00"); !errors.Is(err, projections.ErrNotRegistered) {
		t.Fatalf("deposit query without the deposits projection: got %v, want ErrNotRegistered", err)
	}
	live, cp := hashOf(t, st)
	if replayed, rcp := replayHash(t, f, without); replayed != live || rcp != cp {
		t.Fatalf("live %s at %d, replay %s at %d: the dropped buckets still count", live, cp, replayed, rcp)
	}
}

func TestOptionsValidate(t *testing.T) {
	noop := func([]*bbolt.Bucket, eventstore.Commit, eventstore.Envelope, domain.Event) error { return nil }
	for _, tc := range []struct {
		name string
		ps   []projections.Projection
		want string
	}{
		{"no name", []projections.Projection{{Version: 1, Buckets: []string{"a"}, Apply: noop}}, "no name"},
		{"twice", []projections.Projection{{Name: "a", Version: 1, Buckets: []string{"a"}, Apply: noop}, {Name: "a", Version: 1, Buckets: []string{"b"}, Apply: noop}}, "registered twice"},
		{"version 0", []projections.Projection{{Name: "a", Buckets: []string{"a"}, Apply: noop}}, "version 0"},
		{"no apply", []projections.Projection{{Name: "a", Version: 1, Buckets: []string{"a"}}}, "no Apply"},
		{"no bucket", []projections.Projection{{Name: "a", Version: 1, Apply: noop}}, "owns no bucket"},
		{"meta", []projections.Projection{{Name: "a", Version: 1, Buckets: []string{"meta"}, Apply: noop}}, "reserved"},
		{"shared bucket", []projections.Projection{{Name: "a", Version: 1, Buckets: []string{"x"}, Apply: noop}, {Name: "b", Version: 1, Buckets: []string{"x"}, Apply: noop}}, "owned by a too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &projections.Options{Projections: tc.ps}
			err := opts.Validate()
			if !errors.Is(err, projections.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidOptions saying %q", err, tc.want)
			}
			if _, err := projections.Open(tempPath(t, "rm.db"), opts); !errors.Is(err, projections.ErrInvalidOptions) {
				t.Fatalf("Open = %v, want ErrInvalidOptions", err)
			}
		})
	}
	var defaults *projections.Options
	if err := defaults.Validate(); err != nil {
		t.Fatalf("nil Options: %v", err)
	}
}

// fileSum is the SHA-256 of a file's bytes.
func fileSum(t testing.TB, path string) [32]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(raw)
}

func TestOpenReadOnly(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	history(t, f, 0, 6)
	last := f.lastSeq(t)
	buildFile(t, f, path)
	st := openStore(t, path)
	want, id := order(t, st, "o03"), st.InstanceID()
	wantHash, _ := hashOf(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, path)

	ro, err := projections.OpenReadOnly(path, nil)
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	t.Cleanup(func() { _ = ro.Close() })

	t.Run("queries work", func(t *testing.T) {
		if !ro.ReadOnly() || ro.InstanceID() != id {
			t.Fatalf("read-only store: ReadOnly %v, instance %q, want %q", ro.ReadOnly(), ro.InstanceID(), id)
		}
		if got := order(t, ro, "o03"); !reflect.DeepEqual(got, want) {
			t.Fatalf("order o03 = %+v, want %+v", got, want)
		}
		if cp := checkpoint(t, ro); cp != last {
			t.Fatalf("checkpoint %d, want %d", cp, last)
		}
		if h, _ := hashOf(t, ro); h != wantHash {
			t.Fatal("read-only hash differs")
		}
		if _, _, _, _, err := ro.TrialBalance(0, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a second reader shares the file", func(t *testing.T) {
		other, err := projections.OpenReadOnly(path, nil)
		if err != nil {
			t.Fatalf("second read-only open: %v", err)
		}
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("apply is refused", func(t *testing.T) {
		next := f.submit(t, "late", 99)
		if err := ro.Apply([]eventstore.Commit{next}); !errors.Is(err, projections.ErrReadOnly) {
			t.Fatalf("apply: got %v, want ErrReadOnly", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := projections.NewRunner(f.es, ro, testLogger(t)).Run(ctx); !errors.Is(err, projections.ErrReadOnly) {
			t.Fatalf("run: got %v, want ErrReadOnly", err)
		}
	})
	t.Run("a writer waits for the readers", func(t *testing.T) {
		if _, err := projections.Open(path, nil); !errors.Is(err, projections.ErrLocked) {
			t.Fatalf("writable open beside a reader: got %v, want ErrLocked", err)
		}
	})
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != sum {
		t.Fatal("a read-only open changed the file")
	}

	t.Run("a file that needs a rebuild is refused", func(t *testing.T) {
		bumped := projections.DefaultProjections()
		bumped[0].Version++
		for name, ps := range map[string][]projections.Projection{
			"new projection": append(projections.DefaultProjections(), buyers()),
			"version bump":   bumped,
		} {
			if _, err := projections.OpenReadOnly(path, &projections.Options{Projections: ps}); !errors.Is(err, projections.ErrStale) {
				t.Errorf("%s: got %v, want ErrStale", name, err)
			}
		}
		if fileSum(t, path) != sum {
			t.Fatal("a refused read-only open changed the file")
		}
	})
	t.Run("a missing file is not created", func(t *testing.T) {
		missing := tempPath(t, "missing.db")
		if _, err := projections.OpenReadOnly(missing, nil); err == nil {
			t.Fatal("opened a missing file")
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read-only open created the file: %v", err)
		}
	})
	t.Run("a writer holds the file", func(t *testing.T) {
		openStore(t, path)
		if _, err := projections.OpenReadOnly(path, nil); !errors.Is(err, projections.ErrLocked) {
			t.Fatalf("read-only open beside a writer: got %v, want ErrLocked", err)
		}
	})
}

func TestViewsCarrySeq(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	startRunner(t, r)

	credit := domain.WalletCredited{UserID: "u1", Amount: 5_000, Kind: "refund", Ref: "order:x", FromAccount: domain.AccountSuspense, CreditedAt: t0}
	c1 := f.append(t, "wu1", f.envelope(t, credit, t0))
	dep := domain.DepositRecorded{
		DepositID: "d1", BankTxnID: "t1", AccountNumber: "5001000007", DepositorName: "아무개", Amount: 7_000,
		DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonUnknownAccount, LandedOn: "123-456-7890", RecordedAt: t0,
	}
	c2 := f.append(t, "d1", f.envelope(t, dep, t0))
	sub := f.submit(t, "A", 1)
	debit := domain.WalletDebited{UserID: "u1", Amount: 2_000, PayoutID: "p1", DebitAt: t0.Add(time.Minute)}
	c4 := f.append(t, "wu1", f.envelope(t, debit, t0.Add(time.Minute)))
	req := domain.PayoutRequested{PayoutID: "p1", Amount: 2_000, To: domain.BankAccount{Bank: "KB", Number: "1-2-3", Holder: "아무개"},
		PayFrom: "123-456-7890", Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0.Add(time.Minute)}
	c5 := f.append(t, "p1", f.envelope(t, req, t0.Add(time.Minute)))
	waitFor(t, r, c5.Seq)

	jsonHas := func(t *testing.T, v any, seq eventstore.Seq) {
		t.Helper()
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`"seq":%d`, seq); !strings.Contains(string(raw), want) {
			t.Errorf("JSON %s lacks %s", raw, want)
		}
	}
	t.Run("wallet", func(t *testing.T) {
		w, err := st.Wallet("u1", 500, "")
		if err != nil || eventstore.Seq(w.Seq) != c4.Seq || w.Balance != 3_000 {
			t.Fatalf("wallet = %+v, %v; want seq %d", w, err, c4.Seq)
		}
		jsonHas(t, w, c4.Seq)
		if empty, _ := st.Wallet("nobody", 500, ""); empty.Seq != 0 {
			t.Fatalf("a wallet without movements has seq %d", empty.Seq)
		}
	})
	t.Run("deposit", func(t *testing.T) {
		d, ok, err := st.Deposit("d1")
		if err != nil || !ok || eventstore.Seq(d.Seq) != c2.Seq || d.LandedOn != "123-456-7890" {
			t.Fatalf("deposit = %+v, %v, %v; want seq %d, landed on 123-456-7890", d, ok, err, c2.Seq)
		}
		orphans, _, err := st.Orphans(10, "")
		if err != nil || len(orphans) != 1 || eventstore.Seq(orphans[0].Seq) != c2.Seq {
			t.Fatalf("orphans = %+v, %v", orphans, err)
		}
		jsonHas(t, orphans[0], c2.Seq)
	})
	t.Run("payout", func(t *testing.T) {
		p, ok, err := st.Payout("p1")
		if err != nil || !ok || eventstore.Seq(p.Seq) != c5.Seq || p.Status != "requested" || p.RequestedAt != p.UpdatedAt {
			t.Fatalf("payout = %+v, %v, %v; want requested at seq %d", p, ok, err, c5.Seq)
		}
		settled := domain.PayoutSettled{PayoutID: "p1", Amount: 2_000, Fee: 300, BankAccount: "999-999", ProviderRef: "fb-1", SettledAt: t0.Add(time.Hour)}
		c := f.append(t, "p1", f.envelope(t, settled, t0.Add(time.Hour)))
		waitFor(t, r, c.Seq)
		p, _, _ = st.Payout("p1")
		want := projections.PayoutView{
			PayoutID: "p1", Status: "settled", Amount: 2_000, To: req.To, Source: "wallet", SourceID: "u1",
			PayFrom: "999-999", Fee: 300, ProviderRef: "fb-1",
			RequestedAt: domain.FormatTime(t0.Add(time.Minute)), UpdatedAt: domain.FormatTime(t0.Add(time.Hour)), Seq: api.Seq(c.Seq),
		}
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("settled payout\n got %+v\nwant %+v", p, want)
		}
		jsonHas(t, p, c.Seq)
		if _, ok, err := st.Payout("nope"); ok || err != nil {
			t.Fatalf("unknown payout: %v, %v", ok, err)
		}
	})
	t.Run("order", func(t *testing.T) {
		if v := order(t, st, "A"); eventstore.Seq(v.Seq) != sub.Seq {
			t.Fatalf("order A at seq %d, want %d", v.Seq, sub.Seq)
		}
		c := f.cancel(t, "A", "", t0.Add(time.Hour))
		waitFor(t, r, c.Seq)
		v := order(t, st, "A")
		if eventstore.Seq(v.Seq) != c.Seq {
			t.Fatalf("order A at seq %d after its cancellation, want %d", v.Seq, c.Seq)
		}
		jsonHas(t, v, c.Seq)
	})
	t.Run("ledger entries", func(t *testing.T) {
		_, entries, _, err := st.Account(domain.AccountWallet("u1"), 10, "")
		if err != nil || len(entries) != 2 || eventstore.Seq(entries[0].Seq) != c1.Seq || eventstore.Seq(entries[1].Seq) != c4.Seq {
			t.Fatalf("wallet account entries = %+v, %v", entries, err)
		}
	})
}

func TestFileFromBeforeRegistryIsRebuilt(t *testing.T) {
	f := newFixture(t)
	history(t, f, 0, 3)
	last := f.lastSeq(t)
	path := tempPath(t, "rm.db")

	// A file as the engine wrote it before projections had their own
	// checkpoints: one shared checkpoint, views without seq, and a bucket
	// nothing owns any more.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("checkpoint"), binary.BigEndian.AppendUint64(nil, uint64(last))); err != nil {
			return err
		}
		if err := meta.Put([]byte("instance_id"), []byte("0123456789abcdef")); err != nil {
			return err
		}
		for _, name := range []string{"orders", "wallets", "retired"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("o00"), []byte(`{"order_id":"o00"}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st := openStore(t, path)
	if st.InstanceID() != "0123456789abcdef" {
		t.Fatalf("instance id %q: the durable consumer's name must survive", st.InstanceID())
	}
	for name, s := range states(t, st) {
		if s.Reset != "new to the file" || s.Checkpoint != 0 {
			t.Errorf("%s = %+v, want reset at checkpoint 0", name, s)
		}
	}
	fresh, _ := hashOf(t, openStore(t, tempPath(t, "fresh.db")))
	if h, cp := hashOf(t, st); h != fresh || cp != 0 {
		t.Fatalf("hash at %d differs from a fresh file's: old content survived", cp)
	}

	r := projections.NewRunner(f.es, st, testLogger(t))
	startRunner(t, r)
	waitFor(t, r, last)
	live, cp := hashOf(t, st)
	if replayed, rcp := replayHash(t, f, nil); replayed != live || rcp != cp {
		t.Fatalf("live %s at %d, replay %s at %d", live, cp, replayed, rcp)
	}
}
