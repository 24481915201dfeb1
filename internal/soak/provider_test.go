package soak

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/firmbanking"
)

// TestProviderOutlivesKill: a payout settled before the engine is killed
// with SIGKILL is still known to the provider, settled, after the restart,
// as a real provider's would be. A provider that forgot it would contradict
// the engine's record the next time the engine asks (a reactor handed the
// payout's commit again after the kill), and dead-letter it.
func TestProviderOutlivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bankbook and kills it once")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bankbook")
	if err := Build(t.Context(), bin, raceEnabled); err != nil {
		t.Fatal(err)
	}
	prov, err := newProvider(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.close() })
	engs, err := newEngines(bin, dir, 1, nil, prov)
	if err != nil {
		t.Fatal(err)
	}
	eng := engs[0]
	t.Cleanup(func() { _ = eng.Kill() })
	if err := eng.start(); err != nil {
		t.Fatal(err)
	}
	if err := eng.waitReady(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	nkey, err := nats.NkeyOptionFromSeed(eng.Seed(auth.Operator))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(eng.URL(), nkey, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := client.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// An orphan (a name nobody holds) refunded to the bank: a payout.
	o, _, err := client.Do(ctx, c, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: "b1", BuyerName: "Buyer", Amount: 5000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := client.Do(ctx, c, api.DepositRecord, api.RecordDepositRequest{BankTxnID: "T1", AccountNumber: o.CollectAccount.Number,
		DepositorName: "NOBODY", Amount: 5000, DepositedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil)
	if err != nil || rec.Outcome != domain.OutcomeOrphaned {
		t.Fatalf("record: %+v, %v; want an orphan", rec, err)
	}
	to := payoutAccount
	res, _, err := client.Do(ctx, c, api.DepositResolve, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToBank, BankAccount: &to}, nil)
	if err != nil {
		t.Fatal(err)
	}
	settled := func() bool {
		p, _, err := client.Do(ctx, c, api.PayoutGet, api.PayoutRequest{PayoutID: res.PayoutID}, nil)
		return err == nil && p.Status == string(domain.PayoutSettledStatus)
	}
	for !settled() {
		if ctx.Err() != nil {
			t.Fatalf("payout %s not settled: %v", res.PayoutID, ctx.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := eng.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := eng.start(); err != nil {
		t.Fatal(err)
	}
	if err := eng.waitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	r, known := prov.fake.Result(res.PayoutID)
	if !known || r.Status != firmbanking.StatusSettled {
		t.Fatalf("after the kill the provider has payout %s as %+v (known %v); want it settled", res.PayoutID, r, known)
	}
	if !settled() {
		t.Fatalf("payout %s no longer settled after the restart", res.PayoutID)
	}
}
