package projections_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/projections"
)

// The views are stored as JSON of the api types. A change of their shape
// changes what a projection writes, so it must come with a new version of
// that projection (which rebuilds it): this table pins both together.
func TestStoredViewShapesMatchProjectionVersions(t *testing.T) {
	pinned := map[string]struct {
		version int
		shapes  map[string]string
	}{
		"orders": {7, map[string]string{ // 4: names normalised without default ignorables; 5: orders_by_buyer_name; 6: closed_at; 7: paid_from
			"OrderView": "amount buyer_id buyer_name cancel_at cancel_reason cancel_window_s closed_at collect_account currency deposit_ids depositor_name expires_at order_id paid_amount paid_from refunds seq status submitted_at updated_at version",
			"Refund":    "amount at to",
		}},
		"wallets":  {2, map[string]string{"WalletSummary": "balance entries seq user_id", "WalletEntry": "amount at kind ref"}},
		"ledger":   {1, map[string]string{"LedgerEntry": "amount at memo seq tx_id"}},
		"deposits": {4, map[string]string{"OrphanView": "account_number amount bank_txn_id bill_id candidates deposit_id deposited_at depositor_name landed_on link_id order_id outcome payout_id reason resolution seq user_id"}}, // 3: link_id, bill_id; 4: user_id of an assign_order refunded to the buyer
		"candidates": {5, map[string]string{ // 3: names normalised without default ignorables; 4: ranked orders that close unpaid stay; 5: orders closed unpaid after the transfer searched
			"CandOrphan": "amount at more name open ranked", "RankedOrder": "closed dist gap later order_id",
		}},
		"payouts": {2, map[string]string{"PayoutView": "amount failure fee pay_from payout_id provider_ref requested_at seq source source_id status to updated_at"}},
		"bills": {3, map[string]string{ // 3: distributor_name
			"BillView":    "amount bill_id closed_at dedicated_account distributor_id distributor_name issued_at link_id memo outstanding paid_amount payment_count payments seq status store_id store_name superseded_by",
			"BillPayment": "amount bill_id deposit_id distributor_id fee net paid_at settlement_date store_id",
			"BankAccount": "bank holder number",
		}},
		"links": {2, map[string]string{ // 2: the link's view (was its link_id as raw bytes)
			"StoreView": "dedicated_account distributor_id distributor_name link_id linked_at renamed_at seq store_id store_name",
		}},
		"store_payments": {1, map[string]string{"BillPayment": "amount bill_id deposit_id distributor_id fee net paid_at settlement_date store_id"}},
		"settlements":    {1, map[string]string{"Settlement": "date fee gross net payments"}},
		"notifications": {2, map[string]string{ // 2: notifications_pending_by_recipient
			"NotificationView": "attempts created_at kind last_error message notification_id recipient retry_at sent_at seq source_event_id status",
		}},
		"deposit_index": {2, map[string]string{"RecordedDeposit": "account_number amount bank_txn_id deposit_id deposited_at recorded_at"}}, // 2: deposits_by_seq
		"payout_index":  {2, map[string]string{}},                                                                                           // payout_id as raw bytes; 2: indexed by seq too
		"reconciliations": {3, map[string]string{ // 2: reconcile_nightly; 3: the payouts runs' too
			"ReconcileRunSummary": "completed_at counts file_sha256 findings kind lines run_id seq",
		}},
		"series": {1, map[string]string{"SeriesPoint": "at balance oldest_open_since open_count seq", "OpenItem": "amount key since"}},
		"reconcile_carry": {7, map[string]string{ // 3: the record gained covered_to; 4: covered_from, compared_seq, unrecorded; 5: the payouts scope covers its reports; 6: payouts runs record what they compared; 7: payouts runs carry what they found missing in the ledger
			"ReconcileItem":  "account_number at bank_txn_id carried_from deposit_ids ledger_amount ledger_fee ledger_status note payout_id statement_amount statement_count statement_fee statement_status",
			"PayoutRunCover": "as_of_seq from run_id to",
		}},
	}
	views := map[string]any{
		"OrderView": api.OrderView{}, "Refund": api.Refund{}, "WalletSummary": projections.WalletSummary{}, "WalletEntry": api.WalletEntry{},
		"LedgerEntry": api.LedgerEntry{}, "OrphanView": api.OrphanView{}, "PayoutView": api.PayoutView{},
		"CandOrphan": projections.CandOrphan{}, "RankedOrder": projections.RankedOrder{},
		"BillView": api.BillView{}, "StoreView": api.StoreView{}, "BillPayment": api.BillPayment{}, "BankAccount": domain.BankAccount{}, "PayoutRunCover": domain.PayoutRunCover{}, "Settlement": api.Settlement{},
		"NotificationView": api.NotificationView{}, "RecordedDeposit": domain.RecordedDeposit{},
		"ReconcileRunSummary": api.ReconcileRunSummary{}, "SeriesPoint": api.SeriesPoint{}, "OpenItem": api.OpenItem{},
		"ReconcileItem": domain.ReconcileItem{},
	}
	for _, p := range projections.DefaultProjections() {
		pin, ok := pinned[p.Name]
		if !ok {
			t.Errorf("projection %s is not pinned here: add its version and view shapes", p.Name)
			continue
		}
		for view, want := range pin.shapes {
			if got := jsonFields(reflect.TypeOf(views[view])); got != want && p.Version == pin.version {
				t.Errorf("%s changed shape (%q, was %q) but projection %s is still version %d: bump it, then update this table",
					view, got, want, p.Name, p.Version)
			}
		}
		if p.Version != pin.version {
			t.Errorf("projection %s is version %d, pinned %d: update this table with its new shapes", p.Name, p.Version, pin.version)
		}
	}
}

// jsonFields lists a struct's JSON field names, sorted; an embedded struct
// without a JSON name gives its own, as encoding/json encodes it.
func jsonFields(t reflect.Type) string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			names = append(names, strings.Fields(jsonFields(f.Type))...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}
