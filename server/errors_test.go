package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
)

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{domain.Invalid("amount", "must be greater than 0"), 400, "invalid_input"},
		{fmt.Errorf("wrapped: %w", domain.ErrOrderNotFound), 404, "order_not_found"},
		{domain.ErrWrongState, 409, "wrong_state"},
		{commands.ErrContention, 409, "conflict"},
		{idempotency.ErrInProgress, 409, "in_progress"},
		{idempotency.ErrKeyReused, 422, "idempotency_key_reused"},
		{fmt.Errorf("append order/x: %w: no response", eventstore.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("kv: %w", context.DeadlineExceeded), 503, "unavailable"},
		{nats.ErrNoResponders, 503, "unavailable"},
		{errors.New("something broke"), 500, "internal"},
	}
	for _, tc := range cases {
		got := toAPIError(tc.err)
		if got.Status != tc.status || got.Code != tc.code {
			t.Errorf("%v → %d %s, want %d %s", tc.err, got.Status, got.Code, tc.status, tc.code)
		}
	}
	if definitive(&api.Error{Status: 409, Code: "conflict"}) || definitive(&api.Error{Status: 503, Code: "unavailable"}) ||
		!definitive(&api.Error{Status: 409, Code: "wrong_state"}) || !definitive(&api.Error{Status: 404, Code: "order_not_found"}) {
		t.Error("definitive: only final refusals are stored for repeats")
	}
}
