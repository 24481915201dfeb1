package reservations_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/reservations"
)

// TestUnavailableWhenNATSIsGone: with the server shut down, every call
// tries until its deadline and fails with an error matching
// transient.ErrUnavailable (the API's 503), never another.
func TestUnavailableWhenNATSIsGone(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := reservations.Open(t.Context(), js, reservations.Config{AttemptTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reserve(t, s, "held", "o1")
	_, rev := holder(t, s, "held")
	srv.Shutdown()

	counts := func(context.Context, reservations.Unpaid) (bool, error) { return true, nil }
	calls := map[string]func(ctx context.Context) error{
		"Reserve":  func(ctx context.Context) error { return s.Reserve(ctx, "free", "o2") },
		"TakeOver": func(ctx context.Context) error { return s.TakeOver(ctx, "held", "o2", rev) },
		"Holder":   func(ctx context.Context) error { _, _, err := s.Holder(ctx, "held"); return err },
		"Release":  func(ctx context.Context) error { return s.Release(ctx, "held", "o1") },
		"Admit":    func(ctx context.Context) error { return s.Admit(ctx, "u1", "o2", 3, counts) },
		"UnpaidOrders": func(ctx context.Context) error {
			_, err := s.UnpaidOrders(ctx, "u1")
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
			defer cancel()
			if err := call(ctx); !errors.Is(err, transient.ErrUnavailable) {
				t.Fatalf("%s with NATS gone: %v, want transient.ErrUnavailable", name, err)
			}
		})
	}
}
