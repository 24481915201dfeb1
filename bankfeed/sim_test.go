package bankfeed

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

const collect = "123-456-789"

func TestSimBankLag(t *testing.T) {
	tx := transfer(t, newBank(t, newClock(), SimOptions{Lag: 2 * time.Minute}), "김민수042", 35000, collect)
	if !tx.DepositedAt.Equal(t0) {
		t.Fatalf("DepositedAt = %v, want now = %v", tx.DepositedAt, t0)
	}
	for _, tc := range []struct {
		name    string
		after   time.Duration
		visible bool
	}{
		{"at once", 0, false},
		{"just before the lag", 2*time.Minute - time.Microsecond, false},
		{"at the lag", 2 * time.Minute, true},
		{"after the lag", 5 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			b := newBank(t, c, SimOptions{Lag: 2 * time.Minute})
			transfer(t, b, "김민수042", 35000, collect)
			c.Advance(tc.after)
			res, err := b.Scan(context.Background(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Transactions) == 1; got != tc.visible {
				t.Errorf("visible = %v, want %v", got, tc.visible)
			}
			if want := t0.Add(tc.after - 2*time.Minute); !res.CompleteUpTo.Equal(want) {
				t.Errorf("CompleteUpTo = %v, want now−Lag = %v", res.CompleteUpTo, want)
			}
		})
	}
}

func TestSimBankScansOverlapAndRepeat(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{}) // default overlap 1 minute, no lag
	a := transfer(t, bank, "A", 1000, collect)
	clock.Advance(30 * time.Second)
	b := transfer(t, bank, "B", 2000, collect)
	clock.Advance(60 * time.Second)
	c := transfer(t, bank, "C", 3000, collect)
	clock.Advance(30 * time.Second) // now t0+2m

	for _, tc := range []struct {
		name  string
		since time.Time
		want  []Transaction // newest first
	}{
		{"from the beginning", time.Time{}, []Transaction{c, b, a}},
		{"since reaches back one minute", t0.Add(time.Minute), []Transaction{c, b, a}},
		{"since after b minus overlap", t0.Add(91 * time.Second), []Transaction{c}},
		{"since in the future", t0.Add(time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // a repeated scan repeats the same transactions
				res, err := bank.Scan(context.Background(), tc.since)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := strings.Join(ids(res.Transactions), ","), strings.Join(ids(tc.want), ","); got != want {
					t.Fatalf("scan since %v = %s, want %s", tc.since, got, want)
				}
				if !res.CompleteUpTo.Equal(t0.Add(2 * time.Minute)) {
					t.Fatalf("CompleteUpTo = %v", res.CompleteUpTo)
				}
			}
		})
	}
}

func TestSimBankNoOverlap(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{Overlap: -1})
	transfer(t, bank, "A", 1000, collect)
	clock.Advance(time.Second)
	res, err := bank.Scan(context.Background(), t0.Add(time.Microsecond))
	if err != nil || len(res.Transactions) != 0 {
		t.Fatalf("Scan = %v, %v; want nothing with a negative overlap", res.Transactions, err)
	}
}

func TestSimBankDuplicatesWithinResult(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{DuplicateRate: 1, PageSize: 2})
	for i := range 5 {
		transfer(t, bank, fmt.Sprintf("name%d", i), int64(1000+i), collect)
		clock.Advance(time.Second)
	}
	res, err := bank.Scan(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Transactions) != 10 {
		t.Fatalf("got %d rows, want every one of 5 twice", len(res.Transactions))
	}
	for id, n := range countIDs(res.Transactions) {
		if n != 2 {
			t.Errorf("%s appears %d times, want 2", id, n)
		}
	}
	// The repeats of a page open the next page: the third row repeats the first.
	if res.Transactions[2].BankTxnID != res.Transactions[0].BankTxnID {
		t.Errorf("rows = %v; want the page boundary to repeat rows", ids(res.Transactions))
	}

	bank.SetDuplicateRate(0)
	res, _ = bank.Scan(context.Background(), time.Time{})
	if len(res.Transactions) != 5 {
		t.Errorf("after SetDuplicateRate(0): %d rows, want 5", len(res.Transactions))
	}
}

func TestSimBankFailNext(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	transfer(t, bank, "A", 1000, collect)
	bank.FailNext(2)
	for i := range 2 {
		if _, err := bank.Scan(context.Background(), time.Time{}); !errors.Is(err, ErrOutage) {
			t.Fatalf("scan %d: err = %v, want ErrOutage", i, err)
		}
	}
	res, err := bank.Scan(context.Background(), time.Time{})
	if err != nil || len(res.Transactions) != 1 {
		t.Fatalf("after the outage: %v, %v", res.Transactions, err)
	}
	if bank.Scans() != 3 {
		t.Errorf("Scans() = %d, want 3", bank.Scans())
	}
}

func TestSimBankDelayRespectsContext(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := bank.Scan(ctx, time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Scan took %v, want it to end with the context", d)
	}

	bank.SetDelay(time.Millisecond)
	if _, err := bank.Scan(context.Background(), time.Time{}); err != nil {
		t.Fatalf("short delay: %v", err)
	}
}

func TestSimBankConcurrentTransfersGetUniqueIDs(t *testing.T) {
	bank, err := NewSimBank(SimOptions{}) // wall clock, random seed
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := bank.Transfer(fmt.Sprintf("w%d", w), int64(i+1), collect); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Scans run concurrently with the transfers.
	wg.Go(func() {
		for range 50 {
			if _, err := bank.Scan(context.Background(), time.Time{}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	all := bank.Transactions()
	if len(all) != workers*each {
		t.Fatalf("%d transactions, want %d", len(all), workers*each)
	}
	format := regexp.MustCompile(`^SIM-\d{10}-[0-9a-f]{8}$`)
	for id, n := range countIDs(all) {
		if n != 1 {
			t.Errorf("id %s used %d times", id, n)
		}
		if !format.MatchString(id) {
			t.Errorf("id %q does not match %v", id, format)
		}
	}
}

func TestSimBankTransferValidation(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{})
	for _, tc := range []struct {
		name, depositor, account string
		amount                   int64
		field                    string
	}{
		{"blank name", "  ", collect, 1000, "depositor_name"},
		{"name too long", strings.Repeat("가", 65), collect, 1000, "depositor_name"},
		{"control character", "a\x00b", collect, 1000, "depositor_name"},
		{"zero amount", "A", collect, 0, "amount"},
		{"negative amount", "A", collect, -1, "amount"},
		{"amount above the maximum", "A", collect, domain.MaxAmount + 1, "amount"},
		{"no account", "A", "", 1000, "account_number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bank.Transfer(tc.depositor, tc.amount, tc.account)
			var fe *FieldError
			if !errors.Is(err, ErrInvalidTransaction) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	if n := len(bank.Transactions()); n != 0 {
		t.Fatalf("refused transfers left %d transactions", n)
	}
	if _, err := bank.Transfer("A", domain.MaxAmount, collect); err != nil {
		t.Fatalf("MaxAmount refused: %v", err)
	}
}

func TestSimBankTruncatesNames(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{NameLimit: 10})
	long := "가나다라마바사아자차카타파하042" // 17 runes: the suffix is cut off
	tx := transfer(t, bank, long, 1000, collect)
	if want := "가나다라마바사아자차"; tx.DepositorName != want {
		t.Fatalf("DepositorName = %q, want %q", tx.DepositorName, want)
	}
}

func TestSimBankSourceFiltersAccount(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{})
	mine := transfer(t, bank, "A", 1000, "123-456-789")
	transfer(t, bank, "B", 2000, "999-000")
	res, err := bank.Source("123 456789").Scan(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Transactions) != 1 || res.Transactions[0].BankTxnID != mine.BankTxnID {
		t.Fatalf("Source(account).Scan = %v, want only %s", ids(res.Transactions), mine.BankTxnID)
	}
	all, _ := bank.Scan(context.Background(), time.Time{})
	if len(all.Transactions) != 2 {
		t.Fatalf("bank.Scan = %v, want both accounts", ids(all.Transactions))
	}
}

// SourceWith answers for the account and the sub-accounts it accepts, like a
// provider's feed of a collection account with its virtual accounts; nil is
// Source.
func TestSimBankSourceWithSubAccounts(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{})
	own := transfer(t, bank, "A", 1000, "123-456-789")
	subA := transfer(t, bank, "B", 2000, "5001-000-001")
	subB := transfer(t, bank, "C", 3000, "5001999999")
	transfer(t, bank, "D", 4000, "999-000")
	transfer(t, bank, "E", 5000, "5002000000")
	var asked []string
	isSub := func(n string) bool {
		asked = append(asked, n)
		return strings.HasPrefix(n, "5001") && len(n) == 10
	}
	for _, tc := range []struct {
		name string
		src  Source
		want []Transaction
	}{
		{"with sub-accounts", bank.SourceWith("123 456789", isSub), []Transaction{own, subA, subB}},
		{"nil is Source", bank.SourceWith("123 456789", nil), []Transaction{own}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.src.Scan(context.Background(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			got, want := countIDs(res.Transactions), countIDs(tc.want)
			if len(res.Transactions) != len(tc.want) || len(got) != len(want) {
				t.Fatalf("Scan = %v, want %v", ids(res.Transactions), ids(tc.want))
			}
			for id := range want {
				if got[id] != 1 {
					t.Errorf("%s appears %d times, want once", id, got[id])
				}
			}
		})
	}
	for _, n := range asked {
		if n != NormalizeAccountNumber(n) {
			t.Errorf("isSubAccount asked about %q, want a normalised number", n)
		}
	}
}

func TestSimOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts SimOptions
		ok   bool
	}{
		{"zero", SimOptions{}, true},
		{"negative lag", SimOptions{Lag: -1}, false},
		{"negative page size", SimOptions{PageSize: -1}, false},
		{"duplicate rate above 1", SimOptions{DuplicateRate: 1.5}, false},
		{"negative delay", SimOptions{Delay: -1}, false},
		{"negative name limit", SimOptions{NameLimit: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSimBank(tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("NewSimBank err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
