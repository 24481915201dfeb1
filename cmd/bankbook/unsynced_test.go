package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/engineproc"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// Under durability fast the read models are not fsynced (ADR 0011). A fast
// engine killed with SIGKILL leaves them marked with this boot: the file as
// the kernel holds it is whole and has everything the engine applied, and
// the next start uses it, not treating it as damaged.
func TestKilledFastEngineKeepsItsReadModels(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the engine as a process")
	}
	testenv.RequireOnLinux(t, projections.Unsyncable(), "the boot ID unsynced read models need")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p, err := engineproc.New(engineproc.Config{Binary: testBinary(t), DataDir: data, LogPath: filepath.Join(dir, "engine.log"),
		Args: []string{"--durability", "fast", "--log-format", "json"}, Label: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func() *client.Client {
		t.Helper()
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitReady(ctx, time.Minute); err != nil {
			t.Fatalf("%v\n%s", err, p.LogTail(3000))
		}
		c, err := client.Connect(p.URL(), testenv.NKey(t, p.Seed(auth.App)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	c := start()
	var orders []api.SubmitOrderReply
	for i := range 20 {
		rep, _, err := client.Do(ctx, c, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: fmt.Sprintf("u-%d", i), BuyerName: "김하늘", Amount: int64(1000 + i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, rep)
	}
	last := orders[len(orders)-1]
	if _, _, err := client.Do(ctx, c, api.OrderGet, api.GetOrderRequest{OrderID: last.OrderID, ReadAfter: api.ReadAfter{MinSeq: last.Seq}}, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(data, "readmodels.db")
	if _, err := os.Stat(path + ".unsynced"); err != nil {
		t.Fatalf("a fast engine runs without its unsynced marker: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}

	// What the killed engine left, read as it is: not damaged, and holding
	// every order it had applied.
	st, err := projections.OpenReadOnly(path, nil)
	if err != nil {
		t.Fatalf("the killed engine's read models: %v", err)
	}
	cp, err := st.Checkpoint()
	if err != nil || uint64(cp) < uint64(last.Seq) {
		t.Fatalf("checkpoint %d (%v), want at least %d", cp, err, last.Seq)
	}
	for _, o := range orders {
		if v, ok, err := st.Order(o.OrderID); err != nil || !ok || v.DepositorName != o.DepositorName {
			t.Fatalf("order %s in the killed engine's file: %+v %v %v", o.OrderID, v, ok, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	c = start()
	if _, _, err := client.Do(ctx, c, api.OrderGet, api.GetOrderRequest{OrderID: orders[0].OrderID, ReadAfter: api.ReadAfter{MinSeq: last.Seq}}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.LogCount("read-model file damaged"); n != 0 {
		t.Fatalf("the restart treated the read models as damaged:\n%s", p.LogTail(3000))
	}
	if aside, _ := filepath.Glob(path + ".damaged-*"); len(aside) != 0 {
		t.Fatalf("moved aside: %v", aside)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("the marker outlived a clean stop: %v", err)
	}
}
