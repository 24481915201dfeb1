package server_test

import (
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
)

// A buyer name is "printable" (docs/api.md): the depositor name is made
// from it, and the buyer must type that name into a bank's depositor field.
// A private-use or unassigned character is not stripped like an invisible
// one, so it would stay in the depositor name, which no bank carries: every
// transfer for the order would be an orphan. So would a name whose only
// letters NFKC turns into combining marks. Such a name is refused, and
// nothing is written. A bank's own report of such a name (deposit.record)
// is still recorded: the money has arrived.
func TestBuyerNameWithUnprintableCharactersIsRefused(t *testing.T) {
	e := startEngine(t)
	for what, name := range map[string]string{"private use": "\ue000김민수", "unassigned": "김\u0378민수",
		// NFKC makes these letters a space and a combining mark: the
		// depositor name would be a bare diacritic before the suffix.
		"only a mark once normalised": "\u037a", "Arabic isolated vowel forms": "\ufe70\ufe72"} {
		before := e.lastSeq(t)
		ce := e.callErr(t, api.OrderSubmit.Subject, map[string]any{"buyer_id": "u-1", "buyer_name": name, "amount": 5000}, nil)
		if ce.Status != 400 || ce.Code != "invalid_input" || ce.Details["field"] != "buyer_name" {
			t.Errorf("%s: %q answered %d %s %v; want 400 invalid_input on buyer_name", what, name, ce.Status, ce.Code, ce.Details)
		}
		if after := e.lastSeq(t); after != before {
			t.Errorf("%s: a refused submit wrote: last seq %d → %d", what, before, after)
		}
	}
	feed := connectAs(t, e.ClientURL(), e.SeedFile(auth.Feed))
	var rec api.RecordDepositReply
	if _, err := feed.Call(ctxT(t), api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-pua", AccountNumber: e.cfg.CollectNumber,
		DepositorName: "\ue000김민수", Amount: 5000, DepositedAt: time.Now().UTC().Add(-time.Minute)}, &rec, nil); err != nil {
		t.Fatalf("deposit.record of a name with a private-use character: %v", err)
	}
}
