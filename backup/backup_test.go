package backup

import (
	"reflect"
	"testing"
)

func TestOrder(t *testing.T) {
	take, skip := Order([]string{"BANKBOOK_DEAD", "BANKBOOK_EVENTS", "BANKBOOK_TIMERS", "KV_bankbook_idempotency", "KV_bankbook_scan_watermarks", "KV_bankbook_set_aside", "KV_bankbook_snapshots", "KV_bankbook_accounts"})
	wantTake := []string{"KV_bankbook_scan_watermarks", "KV_bankbook_set_aside", "BANKBOOK_EVENTS", "BANKBOOK_DEAD", "BANKBOOK_TIMERS", "KV_bankbook_accounts", "KV_bankbook_idempotency"}
	if !reflect.DeepEqual(take, wantTake) || !reflect.DeepEqual(skip, []string{"KV_bankbook_snapshots"}) {
		t.Fatalf("take %v skip %v, want take %v skip [KV_bankbook_snapshots]", take, skip, wantTake)
	}
	if take, _ := Order([]string{"BANKBOOK_EVENTS"}); !reflect.DeepEqual(take, []string{"BANKBOOK_EVENTS"}) {
		t.Fatalf("take %v of the event stream alone", take)
	}
}
