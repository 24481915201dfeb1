package accounts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/internal/transient"
)

// TestUnavailableWhenNATSIsGone: with the server shut down, every call
// tries until its deadline and fails with an error matching
// transient.ErrUnavailable (the API's 503), never another.
func TestUnavailableWhenNATSIsGone(t *testing.T) {
	srv, js := start(t)
	d := open(t, js, accounts.Config{AttemptTimeout: 100 * time.Millisecond})
	n := allocate(t, d, linkID(1))
	srv.Shutdown()

	calls := map[string]func(ctx context.Context) error{
		"Allocate existing": func(ctx context.Context) error { _, err := d.Allocate(ctx, linkID(1)); return err },
		"Allocate new":      func(ctx context.Context) error { _, err := d.Allocate(ctx, linkID(2)); return err },
		"Lookup":            func(ctx context.Context) error { _, _, err := d.Lookup(ctx, n); return err },
		"NumberOf":          func(ctx context.Context) error { _, _, err := d.NumberOf(ctx, linkID(1)); return err },
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
