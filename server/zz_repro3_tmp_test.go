package server_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
)

// Cancel (deposited) orders whose cancel_at is already past: the timer is
// armed in the past and may fire before the reservation is appended.
func TestReproPastDueArm(t *testing.T) {
	bank := newSimBank(t, bankfeed.SimOptions{Lag: sysBankLag})
	n := startSysNode(t, sysConfig(filepath.Join(t.TempDir(), "x", "data"), bank, time.Second))
	const N = 300
	subs := make([]commands.SubmitOrderReply, N)
	if err := parallel(N, 8, func(i int) error {
		return n.call(subjSubmit, map[string]any{"buyer_id": fmt.Sprintf("u-%d", i), "buyer_name": "김민수", "amount": 1000}, &subs[i])
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if err := parallel(N, 16, func(i int) error {
		var c commands.CancelOrderReply
		return n.call(subjCancel, map[string]any{"order_id": subs[i].OrderID, "deposited": true}, &c)
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var stuck []string
		for _, s := range subs {
			if v, _ := n.orderView(s.OrderID); v.Status != string(domain.StatusCancelled) {
				stuck = append(stuck, s.OrderID+" "+v.Status)
			}
		}
		if len(stuck) == 0 {
			t.Logf("all finalised")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders not finalised after 15s: %v", len(stuck), stuck)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
