package domain_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/bankbook/bankbook/domain"
)

// TestWalletJSONRoundTrip: a wallet encoded and decoded (as an aggregate
// snapshot is) is the same wallet, down to the movements it has applied, so
// it decides the same: a credit already made is not made again, a payout
// already debited is not debited again.
func TestWalletJSONRoundTrip(t *testing.T) {
	for name, w := range map[string]domain.Wallet{
		"no movements":             {},
		"credits and a withdrawal": givenWallet(credited(5000, "dep-1"), credited(3000, "order:o-1"), debited(2000, "po-1")),
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			var back domain.Wallet
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, w) {
				t.Fatalf("round trip of %s: %+v, was %+v", raw, back, w)
			}
			for _, ref := range []string{"dep-1", "order:o-1", "payout:po-1", "dep-2"} {
				if back.Credited(ref) != w.Credited(ref) {
					t.Errorf("Credited(%q) = %v after the round trip, was %v", ref, back.Credited(ref), w.Credited(ref))
				}
			}
			if w.Version == 0 {
				return
			}
			evs, err := domain.DecideWithdraw(back, domain.Withdraw{UserID: "u-1", Amount: 2000, PayoutID: "po-1", To: payee, Now: t0})
			if err != nil || len(evs) != 0 {
				t.Errorf("the same payout again after the round trip: %v, %v", evs, err)
			}
		})
	}
}
