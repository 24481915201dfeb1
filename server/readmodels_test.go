package server_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// A damaged readmodels.db (truncated, overwritten) no longer kills the
// engine at start (a truncated file ended it with a SIGBUS dump): the engine
// moves it aside as readmodels.db.damaged-<time>, starts a new file, and
// rebuilds the read models from the event log. So does a file the engine
// wrote without fsync (durability fast) when the machine has restarted
// since: its marker names another boot.
func TestDamagedReadModelsAreRebuiltFromTheLog(t *testing.T) {
	for _, damage := range []struct {
		name     string
		apply    func(t *testing.T, path string)
		unsynced bool // the engine must run unsynced (durability fast, a boot ID) for this damage
	}{
		{"truncated", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"garbage", func(t *testing.T, path string) {
			junk := make([]byte, 64<<10)
			r := rand.New(rand.NewPCG(7, 7))
			for i := range junk {
				junk[i] = byte(r.UintN(256))
			}
			if err := os.WriteFile(path, junk, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"unsynced before a machine restart", func(t *testing.T, path string) {
			// What an engine killed with the machine leaves: its marker.
			if err := os.WriteFile(path+".unsynced", []byte("boot-before-the-restart\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(damage.name, func(t *testing.T) {
			if damage.unsynced {
				testenv.RequireOnLinux(t, projections.Unsyncable(), "the boot ID unsynced read models need")
			}
			e := startEngine(t)
			var orders []api.SubmitOrderReply
			for i := range 30 {
				var rep api.SubmitOrderReply
				e.call(t, subjSubmit, map[string]any{"buyer_id": fmt.Sprintf("u-%d", i), "buyer_name": fmt.Sprintf("구매자%d", i), "amount": 1000 + i}, &rep, nil)
				orders = append(orders, rep)
			}
			last := orders[len(orders)-1].Seq
			var view projections.OrderView
			e.call(t, subjGet, map[string]any{"order_id": orders[0].OrderID, "min_seq": last}, &view, nil)
			path := filepath.Join(e.cfg.DataDir, "readmodels.db")
			if damage.unsynced {
				if !e.Models.Unsynced() {
					t.Fatal("a fast engine's read models are synced on every batch")
				}
				if _, err := os.Stat(path + ".unsynced"); err != nil {
					t.Fatalf("a fast engine runs without its unsynced marker: %v", err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := e.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path + ".unsynced"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the marker outlived a clean stop: %v", err)
			}

			damage.apply(t, path)
			again := startEngine(t, func(c *engine.Config) { c.DataDir = e.cfg.DataDir })

			// Right after the start, while the new file fills, a query
			// without min_seq answers 503 or the right view: never "not
			// found" for an order that exists, never an empty view.
			for _, o := range orders {
				var v projections.OrderView
				_, err := again.c.Call(ctxT(t), subjGet, map[string]any{"order_id": o.OrderID}, &v, nil)
				var ae *api.Error
				switch {
				case errors.As(err, &ae) && ae.Status == 503:
				case err != nil:
					t.Fatalf("order %s right after the start: %v, want it or 503", o.OrderID, err)
				case v.DepositorName != o.DepositorName:
					t.Fatalf("order %s right after the start: %+v", o.OrderID, v)
				}
			}
			aside, err := filepath.Glob(path + ".damaged-*[0-9Z]") // the copy, not its marker
			if err != nil || len(aside) != 1 {
				t.Fatalf("damaged copies: %v %v", aside, err)
			}
			for _, o := range orders {
				var v projections.OrderView
				again.call(t, subjGet, map[string]any{"order_id": o.OrderID, "min_seq": last}, &v, nil)
				if v.DepositorName != o.DepositorName || v.Amount != o.Amount {
					t.Fatalf("order %s after the rebuild: %+v", o.OrderID, v)
				}
			}
		})
	}
}
