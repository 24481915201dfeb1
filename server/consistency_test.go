package server_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
)

// Two instances share one queue group, so a query may land on either; with
// the consistency token every query sees the command before it, whichever
// instance wrote and whichever answers.
func TestReadYourWritesOnEveryInstance(t *testing.T) {
	dir := t.TempDir()
	a := startSysNode(t, sysConfig(filepath.Join(dir, "a", "data"), newSimBank(t, bankfeed.SimOptions{}), time.Minute))
	cfgB := sysConfig(filepath.Join(dir, "b", "data"), newSimBank(t, bankfeed.SimOptions{}), time.Minute)
	joinEngine(&cfgB, a.Engine)
	b := startSysNode(t, cfgB)

	// Separate connections for writing and reading: neither instance's
	// "own writes" wait can help the reader.
	writer, reader := connect(t, a.Engine), connectAs(t, b.ClientURL(), a.SeedFile(auth.Operator))
	for i := range 60 {
		var sub api.SubmitOrderReply
		if _, err := writer.Call(ctxT(t), subjSubmit, map[string]any{"buyer_id": fmt.Sprintf("u-%d", i), "buyer_name": "정하늘", "amount": 1000 + i}, &sub, nil); err != nil {
			t.Fatal(err)
		}
		var cancel api.CancelOrderReply
		if _, err := writer.Call(ctxT(t), subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false}, &cancel, nil); err != nil {
			t.Fatal(err)
		}
		var got api.OrderView
		if _, err := reader.Call(ctxT(t), subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": cancel.Seq}, &got, nil); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
		if got.Status != "cancelled" || got.Seq < cancel.Seq {
			t.Fatalf("order %d read after seq %d: status %s at seq %d", i, cancel.Seq, got.Status, got.Seq)
		}
	}
	// Both instances answered queries.
	for id, n := range served(t, a.nc, 2, api.OrderGet.Name) {
		if n == 0 {
			t.Errorf("instance %s answered no order.get: the test did not exercise it", id)
		}
	}
}
