package accounts_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/testenv"
)

func TestConfigValidate(t *testing.T) {
	errAny := errors.New("any error")
	cases := []struct {
		name    string
		cfg     accounts.Config
		wantErr error // nil: valid; errAny: some error
	}{
		{"defaults", accounts.Config{}, nil},
		{"one number", accounts.Config{From: 7, To: 7}, nil},
		{"largest", accounts.Config{From: 1, To: accounts.MaxTo - 1}, nil},
		{"from above to", accounts.Config{From: 10, To: 9}, accounts.ErrInvalidRange},
		{"to of 19 digits", accounts.Config{From: 1, To: accounts.MaxTo}, accounts.ErrInvalidRange},
		{"attempt longer than timeout", accounts.Config{AttemptTimeout: 2 * time.Second, Timeout: time.Second}, errAny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			switch c.wantErr {
			case nil:
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
			case errAny:
				if err == nil {
					t.Fatal("Validate() = nil, want an error")
				}
			default:
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Validate() = %v, want %v", err, c.wantErr)
				}
			}
		})
	}
}

func TestOpenRefusesABadRange(t *testing.T) {
	_, js := start(t)
	if _, err := accounts.Open(t.Context(), js, accounts.Config{From: 2, To: 1}); !errors.Is(err, accounts.ErrInvalidRange) {
		t.Fatalf("Open with from > to: %v, want ErrInvalidRange", err)
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		in       string
		from, to uint64
		ok       bool
	}{
		{"5001000000-5001999999", 5001000000, 5001999999, true},
		{" 1-999 ", 1, 999, true},
		{"0-9", 0, 9, true},
		{"7-7", 7, 7, true},
		{"0-0", 0, 0, false},
		{"9-1", 0, 0, false},
		{"1-1000000000000000000", 0, 0, false},
		{"5001000000", 0, 0, false},
		{"-5", 0, 0, false},
		{"1-", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"a-9", 0, 0, false},
		{"+1-9", 0, 0, false},
		{"1 - 9", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			from, to, err := accounts.ParseRange(c.in)
			if !c.ok {
				if !errors.Is(err, accounts.ErrInvalidRange) {
					t.Fatalf("ParseRange(%q) = %d, %d, %v; want ErrInvalidRange", c.in, from, to, err)
				}
				return
			}
			if err != nil || from != c.from || to != c.to {
				t.Fatalf("ParseRange(%q) = %d, %d, %v; want %d, %d", c.in, from, to, err, c.from, c.to)
			}
		})
	}
}

func TestInRange(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{From: 5001000100, To: 5001000199})
	cases := []struct {
		number string
		want   bool
	}{
		{"5001000100", true},
		{"5001000199", true},
		{"5001000150", true},
		{"5001-000-150", true},
		{" 5001 000150 ", true},
		{"5001000099", false},
		{"5001000200", false},
		{"05001000150", false}, // wider than To
		{"501000150", false},
		{"50010001A0", false},
		{"", false},
		{"-", false},
	}
	for _, c := range cases {
		t.Run(c.number, func(t *testing.T) {
			if got := d.InRange(c.number); got != c.want {
				t.Fatalf("InRange(%q) = %v, want %v", c.number, got, c.want)
			}
		})
	}
}

// TestAllocateIsStable: a link's number is the first of the range, and the
// same on every later call, from another Directory, and after the server
// restarts; Lookup and NumberOf agree with it.
func TestAllocateIsStable(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Start(t, dir)
	_, js := srv.Connect(t)
	d := open(t, js, accounts.Config{})
	link := linkID(1)

	n := allocate(t, d, link)
	if want := strconv.FormatUint(accounts.DefaultFrom, 10); n != want {
		t.Fatalf("first number = %s, want %s (the range's From)", n, want)
	}
	if again := allocate(t, d, link); again != n {
		t.Fatalf("Allocate again = %s, want %s", again, n)
	}
	requireNumberOf(t, d, link, n)
	requireLookup(t, d, n, link)
	other := allocate(t, d, linkID(2))
	if other == n {
		t.Fatalf("a second link got the first link's number %s", n)
	}

	d2 := open(t, js, accounts.Config{})
	if got := allocate(t, d2, link); got != n {
		t.Fatalf("Allocate on a new Directory = %s, want %s", got, n)
	}

	srv.Shutdown()
	srv = testenv.Start(t, dir)
	_, js = srv.Connect(t)
	d3 := open(t, js, accounts.Config{})
	if got := allocate(t, d3, link); got != n {
		t.Fatalf("Allocate after a restart = %s, want %s", got, n)
	}
	requireLookup(t, d3, n, link)
	requireNumberOf(t, d3, linkID(2), other)
	third := allocate(t, d3, linkID(3))
	if third == n || third == other {
		t.Fatalf("a third link after a restart got a taken number %s", third)
	}
}

func TestNumbersHaveTheWidthOfTo(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{From: 1, To: 999})
	for i, want := range []string{"001", "002", "003"} {
		if got := allocate(t, d, linkID(i)); got != want {
			t.Fatalf("number %d = %s, want %s", i, got, want)
		}
	}
	requireLookup(t, d, "002", linkID(1))
	requireUnknown(t, d, "2") // another account number, not a spelling of 002
}

// TestConcurrentAllocateOfOneLink: 50 calls for the same link, on two
// Directories at once, all get the same number.
func TestConcurrentAllocateOfOneLink(t *testing.T) {
	_, js := start(t)
	dirs := []*accounts.Directory{open(t, js, accounts.Config{}), open(t, js, accounts.Config{})}
	link := linkID(42)
	const calls = 50
	got := make([]string, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { got[i], errs[i] = dirs[i%2].Allocate(t.Context(), link) })
	}
	wg.Wait()
	for i := range calls {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("call %d got %s, call 0 got %s", i, got[i], got[0])
		}
	}
	requireNumberOf(t, dirs[0], link, got[0])
	requireLookup(t, dirs[1], got[0], link)
}

// TestConcurrentAllocateOfManyLinks: 200 links allocated at once on two
// Directories get 200 distinct numbers of the range, each found by Lookup.
func TestConcurrentAllocateOfManyLinks(t *testing.T) {
	_, js := start(t)
	cfg := accounts.Config{From: 5001000000, To: 5001999999}
	dirs := []*accounts.Directory{open(t, js, cfg), open(t, js, cfg)}
	const links = 200
	got := make([]string, links)
	errs := make([]error, links)
	var wg sync.WaitGroup
	for i := range links {
		wg.Go(func() { got[i], errs[i] = dirs[i%2].Allocate(t.Context(), linkID(i)) })
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range links {
		if errs[i] != nil {
			t.Fatalf("link %d: %v", i, errs[i])
		}
		if j, dup := seen[got[i]]; dup {
			t.Fatalf("links %d and %d both got %s", j, i, got[i])
		}
		seen[got[i]] = i
		if !dirs[0].InRange(got[i]) || len(got[i]) != 10 {
			t.Fatalf("link %d got %s, outside the range", i, got[i])
		}
		requireLookup(t, dirs[(i+1)%2], got[i], linkID(i))
		requireNumberOf(t, dirs[(i+1)%2], linkID(i), got[i])
	}
}

// TestExhausted: a range of three numbers serves three links; the fourth
// gets ErrExhausted (a 422 domain error), while the three keep theirs and
// a wider range serves the fourth.
func TestExhausted(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{From: 10, To: 12})
	wantRemaining(t, d, 3)
	for i := range 3 {
		allocate(t, d, linkID(i))
		wantRemaining(t, d, uint64(2-i))
	}
	for range 2 { // and again: nothing changed
		n, err := d.Allocate(t.Context(), linkID(3))
		if !errors.Is(err, accounts.ErrExhausted) {
			t.Fatalf("Allocate past the range = %q, %v; want ErrExhausted", n, err)
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindRule || de.Code != "account_range_exhausted" {
			t.Fatalf("ErrExhausted is %#v, want a KindRule domain error", de)
		}
	}
	if _, ok, err := d.NumberOf(t.Context(), linkID(3)); ok || err != nil {
		t.Fatalf("NumberOf(refused link) = %v, %v; want none", ok, err)
	}
	for i, want := range []string{"10", "11", "12"} {
		if got := allocate(t, d, linkID(i)); got != want {
			t.Fatalf("link %d after exhaustion = %s, want %s", i, got, want)
		}
	}

	wantRemaining(t, d, 0)
	wider := open(t, js, accounts.Config{From: 10, To: 13})
	wantRemaining(t, wider, 1)
	if got := allocate(t, wider, linkID(3)); got != "13" {
		t.Fatalf("Allocate on a widened range = %s, want 13", got)
	}
	wantRemaining(t, wider, 0)
}

// wantRemaining fails the test unless d has want numbers left.
func wantRemaining(t *testing.T, d *accounts.Directory, want uint64) {
	t.Helper()
	if got, err := d.Remaining(t.Context()); err != nil || got != want {
		t.Fatalf("Remaining = %d, %v; want %d", got, err, want)
	}
}

func TestLookupOfUnknownNumbers(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{})
	n := allocate(t, d, linkID(1))
	for _, number := range []string{
		strconv.FormatUint(accounts.DefaultFrom+1, 10), // in range, never allocated
		"1234567890123",             // out of range
		"5001OOOOOO",                // letters
		"1234567890123456789012345", // longer than any number
		"",
		"num.5001000000",
	} {
		requireUnknown(t, d, number)
	}
	requireLookup(t, d, n[:4]+"-"+n[4:7]+"-"+n[7:], linkID(1)) // normalised
	if n, ok, err := d.NumberOf(t.Context(), linkID(9)); ok || err != nil {
		t.Fatalf("NumberOf(unknown link) = %q, %v, %v; want none", n, ok, err)
	}
}

func TestInvalidLinkID(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{})
	for _, id := range []string{"", "lnk.a", "lnk a", "lnk_*", "lnk_>", string(make([]byte, 129))} {
		if _, err := d.Allocate(t.Context(), id); !errors.Is(err, accounts.ErrInvalidLinkID) {
			t.Errorf("Allocate(%q) = %v, want ErrInvalidLinkID", id, err)
		}
		if _, _, err := d.NumberOf(t.Context(), id); !errors.Is(err, accounts.ErrInvalidLinkID) {
			t.Errorf("NumberOf(%q) = %v, want ErrInvalidLinkID", id, err)
		}
	}
}

// TestSkipsANumberClaimedForAnotherLink: the first half of another link's
// allocation (num.<n> created, link.<other> not yet) holds the counter's
// next number; Allocate skips it, and the claim stays the other link's.
func TestSkipsANumberClaimedForAnotherLink(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{From: 100, To: 199})
	kv := rawKV(t, js)
	if _, err := kv.Create(t.Context(), "num.100", []byte(linkID(7))); err != nil {
		t.Fatal(err)
	}
	if got := allocate(t, d, linkID(1)); got != "101" {
		t.Fatalf("Allocate = %s, want 101 (100 is claimed)", got)
	}
	requireLookup(t, d, "100", linkID(7))
	requireLookup(t, d, "101", linkID(1))
}

// TestTakesItsOwnClaim: a number already claimed for the same link (an
// earlier call that stopped after claiming) is the link's.
func TestTakesItsOwnClaim(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{From: 100, To: 199})
	kv := rawKV(t, js)
	if _, err := kv.Create(t.Context(), "num.100", []byte(linkID(1))); err != nil {
		t.Fatal(err)
	}
	if got := allocate(t, d, linkID(1)); got != "100" {
		t.Fatalf("Allocate = %s, want 100 (its own claim)", got)
	}
	requireNumberOf(t, d, linkID(1), "100")
}

// TestLosesTheLinkRace: between this call's claim of a number and its
// write of the link's entry, another instance allocates for the same link
// and wins. The call returns the winner's number and gives its own back.
func TestLosesTheLinkRace(t *testing.T) {
	_, js := start(t)
	cfg := accounts.Config{From: 100, To: 199}
	slow, fast := open(t, js, cfg), open(t, js, cfg)
	link := linkID(1)
	var won string
	accounts.SetAfterClaim(slow, func(ctx context.Context, number string) {
		if number != "100" {
			t.Errorf("slow claimed %s, want 100", number)
		}
		var err error
		if won, err = fast.Allocate(ctx, link); err != nil {
			t.Errorf("competing Allocate: %v", err)
		}
	})
	got := allocate(t, slow, link)
	if won != "101" || got != won {
		t.Fatalf("slow got %s, fast got %s; want both 101", got, won)
	}
	requireNumberOf(t, fast, link, "101")
	requireLookup(t, fast, "101", link)
	requireUnknown(t, fast, "100") // given back
	if got := allocate(t, fast, linkID(2)); got != "102" {
		t.Fatalf("next link = %s, want 102 (a given-back number is not reused)", got)
	}
}

// TestCorruptEntries: values this package never writes are reported, not
// taken for numbers or links.
func TestCorruptEntries(t *testing.T) {
	_, js := start(t)
	d := open(t, js, accounts.Config{From: 100, To: 199})
	kv := rawKV(t, js)
	for key, val := range map[string]string{"link." + linkID(1): "1O1", "num.150": "no such link"} {
		if _, err := kv.Put(t.Context(), key, []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Allocate(t.Context(), linkID(1)); !errors.Is(err, accounts.ErrCorrupt) {
		t.Errorf("Allocate of a link with a corrupt number: %v, want ErrCorrupt", err)
	}
	if _, _, err := d.Lookup(t.Context(), "150"); !errors.Is(err, accounts.ErrCorrupt) {
		t.Errorf("Lookup of a corrupt claim: %v, want ErrCorrupt", err)
	}
	if _, err := kv.Put(t.Context(), "next", []byte("{")); err != nil {
		t.Fatal(err)
	}
	fresh := open(t, js, accounts.Config{From: 100, To: 199})
	if _, err := fresh.Allocate(t.Context(), linkID(2)); !errors.Is(err, accounts.ErrCorrupt) {
		t.Errorf("Allocate with a corrupt counter: %v, want ErrCorrupt", err)
	}
}

// A bucket that lost its entries gets the links' numbers back, and the
// counter moves past the highest of them, so no number is handed out
// again; restoring twice changes nothing, and a restore that contradicts
// the bucket is refused.
func TestRestore(t *testing.T) {
	_, js := start(t)
	before := open(t, js, accounts.Config{From: 100, To: 199})
	first, second := allocate(t, before, linkID(0)), allocate(t, before, linkID(1))
	if err := js.DeleteKeyValue(t.Context(), accounts.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	d := open(t, js, accounts.Config{From: 100, To: 199})
	if ok, err := d.HasCounter(t.Context()); ok || err != nil {
		t.Fatalf("HasCounter of a new bucket = %v, %v; want false", ok, err)
	}
	// 42 is of an earlier range: restored, and the counter ignores it.
	links := map[string]string{linkID(0): first, linkID(1): second, linkID(2): "42"}
	for range 2 {
		if err := d.Restore(t.Context(), links); err != nil {
			t.Fatalf("Restore: %v", err)
		}
	}
	if ok, err := d.HasCounter(t.Context()); !ok || err != nil {
		t.Fatalf("HasCounter after Restore = %v, %v; want true", ok, err)
	}
	requireNumberOf(t, d, linkID(0), first)
	requireNumberOf(t, d, linkID(2), "42")
	requireLookup(t, d, second, linkID(1))
	requireLookup(t, d, "42", linkID(2))
	wantRemaining(t, d, 98)
	if n := allocate(t, d, linkID(3)); n != "102" {
		t.Fatalf("a new link after Restore got %s, want 102", n)
	}
	err := d.Restore(t.Context(), map[string]string{linkID(4): first})
	if !errors.Is(err, accounts.ErrCorrupt) {
		t.Fatalf("Restore of a number another link holds = %v, want ErrCorrupt", err)
	}
	err = d.Restore(t.Context(), map[string]string{linkID(0): "150"})
	if !errors.Is(err, accounts.ErrCorrupt) {
		t.Fatalf("Restore of a link with another number = %v, want ErrCorrupt", err)
	}
}
