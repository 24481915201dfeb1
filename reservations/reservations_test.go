package reservations_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/text/unicode/norm"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/reservations"
)

var kst = time.FixedZone("KST", 9*60*60)

// now is the fixed clock of the store, in a non-UTC zone on purpose.
var now = time.Date(2025, 3, 14, 18, 30, 0, 0, kst)

// openStore starts an embedded JetStream server and opens a Store on it.
func openStore(t *testing.T) (*reservations.Store, jetstream.JetStream) {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := reservations.Open(t.Context(), js, reservations.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, js
}

// reserve requires Reserve to succeed.
func reserve(t *testing.T, s *reservations.Store, name string, order domain.OrderID) {
	t.Helper()
	if err := s.Reserve(t.Context(), name, order); err != nil {
		t.Fatalf("Reserve(%q, %s): %v", name, order, err)
	}
}

// holder requires name to be held and returns its holder and revision.
func holder(t *testing.T, s *reservations.Store, name string) (reservations.Holder, uint64) {
	t.Helper()
	h, rev, err := s.Holder(t.Context(), name)
	if err != nil {
		t.Fatalf("Holder(%q): %v", name, err)
	}
	return h, rev
}

// requireHolder requires name to be held by order.
func requireHolder(t *testing.T, s *reservations.Store, name string, order domain.OrderID) uint64 {
	t.Helper()
	h, rev := holder(t, s, name)
	if h.OrderID != order {
		t.Fatalf("Holder(%q) = %s, want %s", name, h.OrderID, order)
	}
	return rev
}

// requireFree requires name to be free.
func requireFree(t *testing.T, s *reservations.Store, name string) {
	t.Helper()
	h, _, err := s.Holder(t.Context(), name)
	if !errors.Is(err, reservations.ErrFree) {
		t.Fatalf("Holder(%q) = %+v, %v; want ErrFree", name, h, err)
	}
}

// requireTaken requires Reserve to fail with a *TakenError naming holderID.
func requireTaken(t *testing.T, s *reservations.Store, name string, order, holderID domain.OrderID) *reservations.TakenError {
	t.Helper()
	err := s.Reserve(t.Context(), name, order)
	if !errors.Is(err, reservations.ErrTaken) {
		t.Fatalf("Reserve(%q, %s) = %v, want ErrTaken", name, order, err)
	}
	var te *reservations.TakenError
	if !errors.As(err, &te) {
		t.Fatalf("Reserve(%q, %s) error %T is not a *TakenError", name, order, err)
	}
	if te.Holder.OrderID != holderID {
		t.Fatalf("TakenError holder = %s, want %s", te.Holder.OrderID, holderID)
	}
	return te
}

func TestReserveFreeName(t *testing.T) {
	s, _ := openStore(t)
	requireFree(t, s, "김민수042")
	reserve(t, s, "김민수042", "o-1")
	h, rev := holder(t, s, "김민수042")
	if h.OrderID != "o-1" {
		t.Errorf("holder = %s, want o-1", h.OrderID)
	}
	if !h.ReservedAt.Equal(now) || h.ReservedAt.Location() != time.UTC {
		t.Errorf("ReservedAt = %v, want %v in UTC", h.ReservedAt, now.UTC())
	}
	if rev == 0 {
		t.Error("revision is 0")
	}
}

func TestReserveAgainByTheHolderRenewsIt(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	clock := now
	s, err := reservations.Open(t.Context(), js, reservations.Config{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	reserve(t, s, "김민수042", "o-1")
	_, rev := holder(t, s, "김민수042")

	// A retry two minutes later finds its own reservation and renews it, so
	// that it does not look abandoned to other submits while the retry runs.
	clock = now.Add(2 * time.Minute)
	reserve(t, s, "김민수 042", "o-1") // the same name, differently written
	h, again := holder(t, s, "김민수042")
	if h.OrderID != "o-1" || !h.ReservedAt.Equal(clock) {
		t.Fatalf("after renewal: %+v, want o-1 reserved at %v", h, clock)
	}
	if again == rev {
		t.Fatal("renewal did not write the entry")
	}
	// A takeover decided on the old revision now fails.
	if err := s.TakeOver(t.Context(), "김민수042", "o-2", rev); !errors.Is(err, reservations.ErrTaken) {
		t.Fatalf("takeover at the pre-renewal revision: %v", err)
	}
	requireHolder(t, s, "김민수042", "o-1")
}

func TestReserveTakenByAnotherOrder(t *testing.T) {
	s, _ := openStore(t)
	reserve(t, s, "김민수042", "o-1")
	_, rev := holder(t, s, "김민수042")

	te := requireTaken(t, s, "김민수042", "o-2", "o-1")
	if te.Revision != rev {
		t.Errorf("TakenError revision = %d, want %d", te.Revision, rev)
	}
	if te.Name != "김민수042" {
		t.Errorf("TakenError name = %q", te.Name)
	}
	if !te.Holder.ReservedAt.Equal(now) {
		t.Errorf("TakenError holder reserved at %v, want %v", te.Holder.ReservedAt, now)
	}
	if te.Error() == "" {
		t.Error("empty error text")
	}
	// The failed attempt changed nothing.
	requireHolder(t, s, "김민수042", "o-1")
}

func TestNormalisedNamesCollide(t *testing.T) {
	tests := []struct {
		name  string
		first string
		other string
	}{
		{"space before digits", "김민수 042", "김민수042"},
		{"decomposed Hangul", norm.NFD.String("김민수042"), "김민수042"},
		{"ideographic space and tab", "김민수\u3000042", "김민수\t042"},
		{"Latin case", "Kim001", "KIM001"},
		{"Latin case and space", "kim 001", "KIM001"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			holderID := domain.OrderID(fmt.Sprintf("o-%d", i))
			reserve(t, s, tt.first, holderID)
			requireTaken(t, s, tt.other, "o-other", holderID)
			requireHolder(t, s, tt.other, holderID)
		})
	}
	t.Run("different names do not collide", func(t *testing.T) {
		s, _ := openStore(t)
		reserve(t, s, "김민수042", "o-42")
		reserve(t, s, "김민수043", "o-43")
		reserve(t, s, "KIM001", "o-kim1")
		reserve(t, s, "KIM002", "o-kim2")
	})
}

func TestTakeOver(t *testing.T) {
	s, _ := openStore(t)
	reserve(t, s, "김민수042", "o-1")
	te := requireTaken(t, s, "김민수042", "o-2", "o-1")

	// Given the caller decided o-1 is stale, a takeover at the revision it saw succeeds.
	if err := s.TakeOver(t.Context(), "김민수042", "o-2", te.Revision); err != nil {
		t.Fatalf("TakeOver: %v", err)
	}
	newRev := requireHolder(t, s, "김민수042", "o-2")
	if newRev == te.Revision {
		t.Error("revision unchanged by TakeOver")
	}
	// The old holder can no longer reserve or release it.
	requireTaken(t, s, "김민수042", "o-1", "o-2")
	if err := s.Release(t.Context(), "김민수042", "o-1"); err != nil {
		t.Fatalf("Release by old holder: %v", err)
	}
	requireHolder(t, s, "김민수042", "o-2")
}

func TestTakeOverStaleRevision(t *testing.T) {
	s, _ := openStore(t)
	reserve(t, s, "김민수042", "o-1")
	stale := requireTaken(t, s, "김민수042", "o-2", "o-1").Revision

	// Someone else takes the name over first,
	if err := s.TakeOver(t.Context(), "김민수042", "o-3", stale); err != nil {
		t.Fatalf("first TakeOver: %v", err)
	}
	// so a takeover at the revision seen before fails
	err := s.TakeOver(t.Context(), "김민수042", "o-2", stale)
	if err == nil {
		t.Fatal("TakeOver with a stale revision succeeded")
	}
	if !errors.Is(err, reservations.ErrTaken) {
		t.Errorf("TakeOver with stale revision: err = %v, want ErrTaken", err)
	}
	// and leaves the holder alone.
	requireHolder(t, s, "김민수042", "o-3")
}

func TestTakeOverRacesSafely(t *testing.T) {
	s, _ := openStore(t)
	reserve(t, s, "김민수042", "o-stale")
	rev := requireTaken(t, s, "김민수042", "o-x", "o-stale").Revision

	const n = 10
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		won   []domain.OrderID
	)
	for i := range n {
		order := domain.OrderID(fmt.Sprintf("o-%d", i))
		wg.Go(func() {
			<-start
			if err := s.TakeOver(t.Context(), "김민수042", order, rev); err == nil {
				mu.Lock()
				won = append(won, order)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d takeovers succeeded (%v), want exactly 1", len(won), won)
	}
	requireHolder(t, s, "김민수042", won[0])
}

func TestRelease(t *testing.T) {
	t.Run("by the holder frees the name", func(t *testing.T) {
		s, _ := openStore(t)
		reserve(t, s, "김민수042", "o-1")
		if err := s.Release(t.Context(), "김민수042", "o-1"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		requireFree(t, s, "김민수042")
		reserve(t, s, "김민수042", "o-2")
		requireHolder(t, s, "김민수042", "o-2")
	})
	t.Run("by the holder under another spelling", func(t *testing.T) {
		s, _ := openStore(t)
		reserve(t, s, "Kim001", "o-1")
		if err := s.Release(t.Context(), "KIM 001", "o-1"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		requireFree(t, s, "kim001")
	})
	t.Run("by another order does nothing", func(t *testing.T) {
		s, _ := openStore(t)
		reserve(t, s, "김민수042", "o-1")
		rev := requireHolder(t, s, "김민수042", "o-1")
		if err := s.Release(t.Context(), "김민수042", "o-2"); err != nil {
			t.Fatalf("Release by non-holder: %v", err)
		}
		if again := requireHolder(t, s, "김민수042", "o-1"); again != rev {
			t.Errorf("revision changed %d → %d", rev, again)
		}
	})
	t.Run("of a free name", func(t *testing.T) {
		s, _ := openStore(t)
		if err := s.Release(t.Context(), "김민수042", "o-1"); err != nil {
			t.Fatalf("Release of a free name: %v", err)
		}
		requireFree(t, s, "김민수042")
	})
	t.Run("twice", func(t *testing.T) {
		s, _ := openStore(t)
		reserve(t, s, "김민수042", "o-1")
		for i := range 2 {
			if err := s.Release(t.Context(), "김민수042", "o-1"); err != nil {
				t.Fatalf("Release #%d: %v", i+1, err)
			}
		}
		requireFree(t, s, "김민수042")
	})
	t.Run("reserve release cycles", func(t *testing.T) {
		s, _ := openStore(t)
		for i := range 5 {
			order := domain.OrderID(fmt.Sprintf("o-%d", i))
			reserve(t, s, "김민수042", order)
			requireHolder(t, s, "김민수042", order)
			if err := s.Release(t.Context(), "김민수042", order); err != nil {
				t.Fatalf("Release %s: %v", order, err)
			}
		}
		requireFree(t, s, "김민수042")
	})
}

// raceReserve lets n orders reserve name at once and returns the winners and
// the holders named by the losers' TakenErrors.
func raceReserve(t *testing.T, s *reservations.Store, name string, n int) (winners []domain.OrderID, seen map[domain.OrderID]int) {
	t.Helper()
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		mu     sync.Mutex
		others []error
	)
	seen = map[domain.OrderID]int{}
	for i := range n {
		order := domain.OrderID(fmt.Sprintf("o-%02d", i))
		wg.Go(func() {
			<-start
			err := s.Reserve(t.Context(), name, order)
			mu.Lock()
			defer mu.Unlock()
			var te *reservations.TakenError
			switch {
			case err == nil:
				winners = append(winners, order)
			case errors.As(err, &te):
				seen[te.Holder.OrderID]++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected errors: %v", others)
	}
	return winners, seen
}

func TestConcurrentReserveOneWinner(t *testing.T) {
	tests := []struct {
		name  string
		given func(t *testing.T, s *reservations.Store)
	}{
		{"never used name", func(*testing.T, *reservations.Store) {}},
		{"released name", func(t *testing.T, s *reservations.Store) {
			reserve(t, s, "김민수042", "o-old")
			if err := s.Release(t.Context(), "김민수042", "o-old"); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			tt.given(t, s)
			const n = 20
			winners, seen := raceReserve(t, s, "김민수042", n)
			if len(winners) != 1 {
				t.Fatalf("%d orders reserved the name (%v), want exactly 1", len(winners), winners)
			}
			if seen[winners[0]] != n-1 || len(seen) != 1 {
				t.Fatalf("losers saw holders %v, want %s %d times", seen, winners[0], n-1)
			}
			requireHolder(t, s, "김민수042", winners[0])
		})
	}
}

func TestOpenBindsExistingBucket(t *testing.T) {
	s, js := openStore(t)
	reserve(t, s, "김민수042", "o-1")
	again, err := reservations.Open(t.Context(), js, reservations.Config{})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	requireHolder(t, again, "김민수042", "o-1")
	if _, err := js.KeyValue(t.Context(), "bankbook_depositor_names"); err != nil {
		t.Errorf("default bucket: %v", err)
	}
}

// countAll counts every admitted order; countNone none.
func countAll(context.Context, reservations.Unpaid) (bool, error)  { return true, nil }
func countNone(context.Context, reservations.Unpaid) (bool, error) { return false, nil }

func unpaidIDs(t *testing.T, s *reservations.Store, buyer domain.UserID) []domain.OrderID {
	t.Helper()
	list, err := s.UnpaidOrders(t.Context(), buyer)
	if err != nil {
		t.Fatal(err)
	}
	var ids []domain.OrderID
	for _, u := range list {
		ids = append(ids, u.OrderID)
	}
	return ids
}

func TestAdmitUpToTheLimit(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	for _, o := range []domain.OrderID{"o-1", "o-2", "o-3"} {
		if err := s.Admit(ctx, "u-1", o, 3, countAll); err != nil {
			t.Fatalf("Admit(%s): %v", o, err)
		}
	}
	// A retried submit is admitted again without counting twice.
	if err := s.Admit(ctx, "u-1", "o-2", 3, countAll); err != nil {
		t.Fatalf("Admit of an admitted order: %v", err)
	}
	err := s.Admit(ctx, "u-1", "o-4", 3, countAll)
	var le *reservations.LimitError
	if !errors.Is(err, reservations.ErrLimit) || !errors.As(err, &le) {
		t.Fatalf("Admit over the limit: %v, want a *LimitError", err)
	}
	if le.BuyerID != "u-1" || le.Limit != 3 || fmt.Sprint(le.Orders) != "[o-1 o-2 o-3]" {
		t.Fatalf("LimitError = %+v", le)
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-1 o-2 o-3]" {
		t.Fatalf("unpaid orders after a refusal: %s", got)
	}
	// Another buyer has a limit of its own.
	if err := s.Admit(ctx, "u-2", "o-5", 3, countAll); err != nil {
		t.Fatalf("Admit for another buyer: %v", err)
	}
	// Orders that no longer count are dropped, which makes room.
	if err := s.Admit(ctx, "u-1", "o-6", 3, func(_ context.Context, u reservations.Unpaid) (bool, error) {
		return u.OrderID != "o-2", nil
	}); err != nil {
		t.Fatalf("Admit once an order stopped counting: %v", err)
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-1 o-3 o-6]" {
		t.Fatalf("unpaid orders: %s, want o-2 dropped and o-6 added", got)
	}
	if err := s.Admit(ctx, "u-1", "o-7", 3, countNone); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-7]" {
		t.Fatalf("unpaid orders: %s, want only o-7", got)
	}
	// An error from counts is returned and nothing is written.
	boom := errors.New("boom")
	if err := s.Admit(ctx, "u-1", "o-8", 3, func(context.Context, reservations.Unpaid) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("Admit with a failing counts: %v", err)
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-7]" {
		t.Fatalf("unpaid orders after a failed admit: %s", got)
	}
}

// TestAdmitConcurrentlyKeepsTheLimit: many submits of one buyer at once,
// on two stores over one bucket as two instances would be, admit exactly
// the limit.
func TestAdmitConcurrentlyKeepsTheLimit(t *testing.T) {
	s, js := openStore(t)
	other, err := reservations.Open(t.Context(), js, reservations.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const limit, tries = 5, 40
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []*reservations.Store{s, other}[i%2]
			switch err := st.Admit(t.Context(), "u-hot", domain.OrderID(fmt.Sprintf("o-%d", i)), limit, countAll); {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, reservations.ErrLimit):
				refused.Add(1)
			default:
				t.Errorf("Admit: %v", err)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != limit || refused.Load() != tries-limit {
		t.Fatalf("admitted %d, refused %d; want %d and %d", admitted.Load(), refused.Load(), limit, tries-limit)
	}
	if n := len(unpaidIDs(t, s, "u-hot")); n != limit {
		t.Fatalf("%d unpaid orders stored, want %d", n, limit)
	}
}

// TestUnpaidEntriesAreNotNames: a buyer's entry never reads as a depositor
// name's reservation.
func TestUnpaidEntriesAreNotNames(t *testing.T) {
	s, _ := openStore(t)
	if err := s.Admit(t.Context(), "unpaid", "o-1", 1, countAll); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"unpaid", "unpaid.dW5wYWlk", "o-1"} {
		requireFree(t, s, name)
	}
}

// Released names leave the bucket altogether once their marker expires, so
// names used once do not pile up in the server's memory; a name is free at
// once on release, and reusable both before and after its marker expires.
// The bucket of an earlier engine (no per-message TTLs) is updated to allow
// them.
func TestReleasedNamesLeaveTheBucket(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "bankbook_depositor_names", History: 1}); err != nil {
		t.Fatal(err)
	}
	s, err := reservations.Open(t.Context(), js, reservations.Config{ReleasedTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), "KV_bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	subjects := func() uint64 {
		t.Helper()
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.NumSubjects
	}
	const n = 50
	for i := range n {
		name := fmt.Sprintf("김민수%02d", i)
		order := domain.OrderID(fmt.Sprintf("o-%d", i))
		reserve(t, s, name, order)
		if err := s.Release(t.Context(), name, order); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Holder(t.Context(), name); !errors.Is(err, reservations.ErrFree) {
			t.Fatalf("%s released: %v, want free", name, err)
		}
	}
	reserve(t, s, "김민수00", "o-again") // reused while its marker stands
	if got := subjects(); got != n {
		t.Fatalf("%d subjects right after release, want %d (markers, and the reused name)", got, n)
	}
	testenv.CheckFor(t, 15*time.Second, func() error {
		if got := subjects(); got != 1 {
			return fmt.Errorf("%d subjects, want 1 (the name held again)", got)
		}
		return nil
	})
	requireHolder(t, s, "김민수00", "o-again")
	reserve(t, s, "김민수01", "o-later") // reused after its marker expired
}

// TestForgetDropsTheOrderAndThenTheBuyer: Forget drops one order from its
// buyer's unpaid orders, keeping the others, and the buyer's entry with its
// last order (its subject leaves the bucket once the marker expires); the
// buyer is admitted again afterwards. Forgetting an order the entry does
// not list, or a buyer without an entry, changes nothing.
func TestForgetDropsTheOrderAndThenTheBuyer(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := reservations.Open(t.Context(), js, reservations.Config{ReleasedTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, o := range []domain.OrderID{"o-1", "o-2"} {
		if err := s.Admit(ctx, "u-1", o, 3, countAll); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Admit(ctx, "u-2", "o-3", 3, countAll); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		buyer domain.UserID
		order domain.OrderID
	}{{"u-1", "o-9"}, {"u-nobody", "o-1"}} {
		if err := s.Forget(ctx, f.buyer, f.order); err != nil {
			t.Fatalf("Forget(%s, %s): %v", f.buyer, f.order, err)
		}
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-1 o-2]" {
		t.Fatalf("unpaid orders after forgetting nothing: %s", got)
	}
	if err := s.Forget(ctx, "u-1", "o-1"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-2]" {
		t.Fatalf("unpaid orders after forgetting o-1: %s, want [o-2]", got)
	}
	stream, err := js.Stream(ctx, "KV_bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	subjects := func() uint64 {
		t.Helper()
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.NumSubjects
	}
	if got := subjects(); got != 2 {
		t.Fatalf("%d subjects, want the two buyers'", got)
	}
	for _, f := range []struct {
		buyer domain.UserID
		order domain.OrderID
	}{{"u-1", "o-2"}, {"u-2", "o-3"}, {"u-2", "o-3"}} {
		if err := s.Forget(ctx, f.buyer, f.order); err != nil {
			t.Fatalf("Forget(%s, %s): %v", f.buyer, f.order, err)
		}
	}
	if got := unpaidIDs(t, s, "u-1"); len(got) != 0 {
		t.Fatalf("unpaid orders of u-1 after forgetting both: %v", got)
	}
	testenv.Eventually(t, 10*time.Second, "the buyers' subjects gone", func() bool { return subjects() == 0 })
	if err := s.Admit(ctx, "u-1", "o-4", 3, countAll); err != nil {
		t.Fatalf("Admit after the entry left: %v", err)
	}
	if got := fmt.Sprint(unpaidIDs(t, s, "u-1")); got != "[o-4]" {
		t.Fatalf("unpaid orders admitted again: %s", got)
	}
}

// TestForgetDoesNotLoseAConcurrentAdmit: orders forgotten while others are
// admitted for the same buyer, on two stores as two instances would be:
// every order admitted and not forgotten is still counted, none forgotten
// is.
func TestForgetDoesNotLoseAConcurrentAdmit(t *testing.T) {
	s, js := openStore(t)
	other, err := reservations.Open(t.Context(), js, reservations.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const n = 20
	for i := range n {
		if err := s.Admit(ctx, "u-hot", domain.OrderID(fmt.Sprintf("old-%d", i)), 2*n, countAll); err != nil {
			t.Fatal(err)
		}
	}
	// One instance forgets while the other admits, each in turn. A call
	// that lost the key to the other writer too many times in a row (a
	// busy machine can schedule one loop far ahead of the other) changed
	// nothing and is made again, as its caller would.
	again := func(f func() error) error {
		for {
			if err := f(); !errors.Is(err, kvcas.ErrTooManyConflicts) {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if err := again(func() error { return s.Forget(ctx, "u-hot", domain.OrderID(fmt.Sprintf("old-%d", i))) }); err != nil {
				t.Errorf("Forget: %v", err)
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			if err := again(func() error {
				return other.Admit(ctx, "u-hot", domain.OrderID(fmt.Sprintf("new-%d", i)), 2*n, countAll)
			}); err != nil {
				t.Errorf("Admit: %v", err)
			}
		}
	})
	wg.Wait()
	got := unpaidIDs(t, s, "u-hot")
	if len(got) != n {
		t.Fatalf("%d unpaid orders left, want the %d new ones: %v", len(got), n, got)
	}
	for _, id := range got {
		if !strings.HasPrefix(string(id), "new-") {
			t.Fatalf("unpaid orders %v: %s was forgotten", got, id)
		}
	}
}

// Given another instance's renewal landing between each reading of an
// order's reservation and the writing of this one, when the races go on,
// then the renewal gives up as a conflict to retry
// (kvcas.ErrTooManyConflicts), never as a name taken: the name is the
// order's own.
func TestRenewalsThatKeepLosingAreConflicts(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	const name, order = "김경합123", domain.OrderID("o-hot")
	reserve(t, s, name, order)
	others, busy := 0, false
	reservations.BeforeWrite(t, func(string) {
		if busy {
			return // the other instance's own renewal
		}
		busy = true
		defer func() { busy = false }()
		if err := s.Reserve(ctx, name, order); err != nil {
			t.Errorf("the other instance's renewal: %v", err)
		}
		others++
	})
	err := s.Reserve(ctx, name, order)
	if !errors.Is(err, kvcas.ErrTooManyConflicts) || errors.Is(err, reservations.ErrTaken) {
		t.Fatalf("renewing while other renewals keep coming first: %v, want a conflict and not a name taken", err)
	}
	if others < 2 {
		t.Fatalf("%d renewals came first, want the renewal to have tried again", others)
	}
	requireHolder(t, s, name, order)
}

// A bucket is not kept until marked, and stays marked; a bucket created
// again is not.
func TestKeptMark(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	testenv.KeepStreamsDir(t, js)
	ctx := context.Background()
	s, err := reservations.Open(ctx, js, reservations.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := s.Kept(ctx); err != nil || kept {
		t.Fatalf("a new bucket kept %v %v, want not", kept, err)
	}
	if err := s.MarkKept(ctx); err != nil {
		t.Fatal(err)
	}
	if kept, err := s.Kept(ctx); err != nil || !kept {
		t.Fatalf("after MarkKept: kept %v %v", kept, err)
	}
	if err := js.DeleteKeyValue(ctx, "bankbook_depositor_names"); err != nil {
		t.Fatal(err)
	}
	if s, err = reservations.Open(ctx, js, reservations.Config{}); err != nil {
		t.Fatal(err)
	}
	if kept, err := s.Kept(ctx); err != nil || kept {
		t.Fatalf("a bucket created again kept %v %v, want not", kept, err)
	}
}
