package watermarks_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/watermarks"
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *watermarks.Store {
	t.Helper()
	_, js := testenv.Start(t, "").Connect(t)
	s, err := watermarks.Open(t.Context(), js, "", 1)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func watermark(t *testing.T, s *watermarks.Store, account string) time.Time {
	t.Helper()
	w, err := s.Watermark(t.Context(), account)
	if err != nil {
		t.Fatalf("Watermark(%s): %v", account, err)
	}
	return w
}

func advance(t *testing.T, s *watermarks.Store, account string, upTo time.Time) {
	t.Helper()
	if err := s.Advance(t.Context(), account, upTo); err != nil {
		t.Fatalf("Advance(%s, %v): %v", account, upTo, err)
	}
}

func TestWatermarkOfAnUnknownAccountIsZero(t *testing.T) {
	s := openStore(t)
	if w := watermark(t, s, "123-456"); !w.IsZero() {
		t.Fatalf("watermark = %v, want the zero time", w)
	}
}

func TestAdvance(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Time
		want  time.Time
	}{
		{"first watermark", []time.Time{t0}, t0},
		{"forward", []time.Time{t0, t0.Add(time.Minute)}, t0.Add(time.Minute)},
		{"never backwards", []time.Time{t0.Add(time.Minute), t0}, t0.Add(time.Minute)},
		{"same time again", []time.Time{t0, t0}, t0},
		{"zero time on an empty account", []time.Time{{}}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			for _, at := range tc.steps {
				advance(t, s, "123-456", at)
			}
			if w := watermark(t, s, "123-456"); !w.Equal(tc.want) {
				t.Fatalf("watermark = %v, want %v", w, tc.want)
			}
		})
	}
}

func TestAccountsAreNormalisedAndIndependent(t *testing.T) {
	s := openStore(t)
	advance(t, s, "123-456 789", t0)
	if w := watermark(t, s, "123456789"); !w.Equal(t0) {
		t.Fatalf("watermark of the same number written differently = %v, want %v", w, t0)
	}
	if w := watermark(t, s, "999"); !w.IsZero() {
		t.Fatalf("watermark of another account = %v, want the zero time", w)
	}
}

func TestAdvanceIsStoredInUTC(t *testing.T) {
	s := openStore(t)
	seoul := time.FixedZone("KST", 9*3600)
	advance(t, s, "1", t0.In(seoul))
	if w := watermark(t, s, "1"); !w.Equal(t0) || w.Location() != time.UTC {
		t.Fatalf("watermark = %v, want %v in UTC", w, t0)
	}
}

// TestConcurrentAdvancesEndAtTheLatest has instances advance one account
// concurrently, each to its own times: the watermark ends at the latest of
// all, never below it.
func TestConcurrentAdvancesEndAtTheLatest(t *testing.T) {
	s := openStore(t)
	const writers, each = 6, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				at := t0.Add(time.Duration(i*writers+w) * time.Second)
				if err := s.Advance(t.Context(), "1", at); err != nil {
					t.Errorf("Advance(%v): %v", at, err)
				}
			}
		})
	}
	wg.Wait()
	want := t0.Add((writers*each - 1) * time.Second)
	if w := watermark(t, s, "1"); !w.Equal(want) {
		t.Fatalf("watermark = %v, want the latest %v", w, want)
	}
}

func TestOpenBindsTheExistingBucket(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	a, err := watermarks.Open(t.Context(), js, "marks", 1)
	if err != nil {
		t.Fatal(err)
	}
	advance(t, a, "1", t0)
	b, err := watermarks.Open(t.Context(), js, "marks", 1)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	if w := watermark(t, b, "1"); !w.Equal(t0) {
		t.Fatalf("watermark through a second Open = %v, want %v", w, t0)
	}
}

// TestUnavailableWhenNATSIsGone: with the server shut down, Watermark and
// Advance try until their deadline and fail with an error matching
// transient.ErrUnavailable.
func TestUnavailableWhenNATSIsGone(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := watermarks.OpenWith(t.Context(), js, watermarks.Config{AttemptTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	advance(t, s, "111-222", t0)
	srv.Shutdown()
	calls := map[string]func(ctx context.Context) error{
		"Watermark": func(ctx context.Context) error { _, err := s.Watermark(ctx, "111-222"); return err },
		"Advance":   func(ctx context.Context) error { return s.Advance(ctx, "111-222", t0.Add(time.Hour)) },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, transient.ErrUnavailable) {
			t.Errorf("%s with NATS gone: %v, want transient.ErrUnavailable", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  watermarks.Config
		ok   bool
	}{
		{"defaults", watermarks.Config{}, true},
		{"attempt timeout within the timeout", watermarks.Config{AttemptTimeout: time.Second, Timeout: 2 * time.Second}, true},
		{"attempt timeout over the timeout", watermarks.Config{AttemptTimeout: 3 * time.Second, Timeout: 2 * time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.cfg.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", c.cfg, err, c.ok)
			}
		})
	}
}
