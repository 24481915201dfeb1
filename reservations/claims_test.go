package reservations_test

import (
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/reservations"
)

// clockedStore opens a Store whose clock, now at first, setClock moves.
func clockedStore(t *testing.T) (s *reservations.Store, setClock func(time.Time)) {
	t.Helper()
	_, js := testenv.Start(t, "").Connect(t)
	var (
		mu    sync.Mutex
		clock = now
	)
	s, err := reservations.Open(t.Context(), js, reservations.Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	return s, func(at time.Time) { mu.Lock(); defer mu.Unlock(); clock = at }
}

// A deposit's claim: the first description stays, and one attempt at a
// time holds it; another may take it over once the holder's lease has run
// out (the holder died), keeping the first description.
func TestClaimDeposit(t *testing.T) {
	s, setClock := clockedStore(t)
	got, created, err := s.ClaimDeposit(t.Context(), "dep_1", []byte(`"first"`), "attempt-a")
	if err != nil || string(got) != `"first"` || !created {
		t.Fatalf("first claim: %s created %v %v", got, created, err)
	}
	// The same attempt again (its answer lost): its claim, not created now.
	if got, created, err := s.ClaimDeposit(t.Context(), "dep_1", []byte(`"first"`), "attempt-a"); err != nil || string(got) != `"first"` || created {
		t.Fatalf("the holder again: %s created %v %v", got, created, err)
	}
	// Another attempt, another description, within the lease: held.
	var held *reservations.ClaimHeldError
	if _, _, err := s.ClaimDeposit(t.Context(), "dep_1", []byte(`"second"`), "attempt-b"); !errors.As(err, &held) || !held.Until.Equal(now.Add(reservations.DepositClaimLease)) || string(held.Content) != `"first"` {
		t.Fatalf("another attempt within the lease: %v, want held until %v", err, now.Add(reservations.DepositClaimLease))
	}
	// The lease runs out: b takes it over with the first description, and
	// now a is the one held off.
	setClock(now.Add(reservations.DepositClaimLease + time.Second))
	if got, created, err := s.ClaimDeposit(t.Context(), "dep_1", []byte(`"second"`), "attempt-b"); err != nil || string(got) != `"first"` || created {
		t.Fatalf("take-over after the lease: %s created %v %v, want the first description, taken over", got, created, err)
	}
	if _, _, err := s.ClaimDeposit(t.Context(), "dep_1", []byte(`"first"`), "attempt-a"); !errors.As(err, &held) {
		t.Fatalf("the first holder after the take-over: %v, want held", err)
	}
	// Another deposit is another claim.
	if got, _, err := s.ClaimDeposit(t.Context(), "dep_2", []byte(`"other"`), "attempt-a"); err != nil || string(got) != `"other"` {
		t.Fatalf("another deposit: %s %v", got, err)
	}
}

// Attempts racing for one expired claim: exactly one takes it over.
func TestClaimDepositTakeOverRaces(t *testing.T) {
	s, setClock := clockedStore(t)
	if _, _, err := s.ClaimDeposit(t.Context(), "dep_r", []byte(`"first"`), "dead"); err != nil {
		t.Fatal(err)
	}
	setClock(now.Add(time.Hour))
	var (
		wg           sync.WaitGroup
		taken, heldN int
		rmu          sync.Mutex
	)
	for i := range 8 {
		wg.Go(func() {
			got, _, err := s.ClaimDeposit(t.Context(), "dep_r", []byte(`"mine"`), "racer-"+string(rune('a'+i)))
			var held *reservations.ClaimHeldError
			rmu.Lock()
			defer rmu.Unlock()
			switch {
			case err == nil && string(got) == `"first"`:
				taken++
			case errors.As(err, &held):
				heldN++
			default:
				t.Errorf("racer %d: %s %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if taken != 1 || heldN != 7 {
		t.Fatalf("%d took the claim over and %d were held off, want 1 and 7", taken, heldN)
	}
}

// A claim stored as the description alone (no holder, no lease) is taken
// over at once, and its description kept.
func TestClaimDepositWithoutAHolder(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := reservations.Open(t.Context(), js, reservations.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	bare := `{"bank_txn_id":"T1","amount":5000}`
	if _, err := kv.Create(t.Context(), "deposit."+base64.RawURLEncoding.EncodeToString([]byte("dep_bare")), []byte(bare)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.ClaimDeposit(t.Context(), "dep_bare", []byte(`"mine"`), "attempt-a"); err != nil || string(got) != bare {
		t.Fatalf("a claim without a holder: %s %v, want its description", got, err)
	}
}
