package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// chatEngine starts an engine that sends notifications to sim at rate per
// second.
func chatEngine(t *testing.T, sim *chat.Sim, rate float64, mutate ...func(*engine.Config)) *testEngine {
	t.Helper()
	return startEngine(t, append([]func(*engine.Config){func(c *engine.Config) {
		c.ChatSim, c.ChatSimInstance, c.NotifyRate = true, sim, rate
	}}, mutate...)...)
}

func newChatSim(t *testing.T, rate int) *chat.Sim {
	t.Helper()
	sim, err := chat.NewSim(chat.SimConfig{Rate: rate, Token: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// linkAndIssue links n stores of distributor d and issues each a bill in
// one bulk request; store i is fmt.Sprintf("%s-st-%03d", d, i).
func linkAndIssue(t *testing.T, e *testEngine, d string, n int) []string {
	t.Helper()
	stores := make([]string, n)
	lines := make([]api.BillLine, n)
	if err := parallel(n, 8, func(i int) error {
		stores[i] = fmt.Sprintf("%s-st-%03d", d, i)
		lines[i] = api.BillLine{StoreID: stores[i], Amount: 10_000 + int64(i)}
		var rep api.LinkStoreReply
		_, err := e.c.Call(ctxT(t), api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: d, StoreID: stores[i], StoreName: "가게 " + stores[i]}, &rep, nil)
		return err
	}); err != nil {
		t.Fatalf("link: %v", err)
	}
	var rep api.IssueBulkReply
	e.call(t, api.BillIssueBulk.Subject, api.IssueBulkRequest{DistributorID: d, Bills: lines}, &rep, nil)
	for _, r := range rep.Results {
		if r.Error != nil {
			t.Fatalf("bulk issue: %s: %+v", r.StoreID, r.Error)
		}
	}
	return stores
}

// delivered waits until sim holds a message of kind for every store
// (channel store:<id>) and returns them all.
func delivered(t *testing.T, sim *chat.Sim, kind string, stores []string, timeout time.Duration) []chat.SimMessage {
	t.Helper()
	want := map[string]bool{}
	for _, s := range stores {
		want["store:"+s] = true
	}
	var got []chat.SimMessage
	testenv.CheckFor(t, timeout, func() error {
		got = got[:0]
		seen := map[string]bool{}
		for _, m := range sim.Messages("") {
			if m.CustomType == kind && want[m.Channel] {
				got = append(got, m)
				seen[m.Channel] = true
			}
		}
		if len(seen) < len(want) {
			return fmt.Errorf("%d of %d stores have their %s message", len(seen), len(want), kind)
		}
		return nil
	})
	return got
}

// onceEach fails the test if any notification or any channel got a
// message of one kind twice.
func onceEach(t *testing.T, msgs []chat.SimMessage) {
	t.Helper()
	for what, n := range chat.Repeats(msgs) {
		t.Errorf("%s: %d messages", what, n)
	}
}

// TestNotificationsSurviveProviderTroubles: the provider answers 429 with a
// retry-after, then 500s, then stores messages and answers 502, then takes
// messages without answering; every message still arrives once. A recipient the provider refuses is
// dead-lettered, listed, counted in /metrics, and redriven once the
// provider takes it.
func TestNotificationsSurviveProviderTroubles(t *testing.T) {
	const bills = 12
	sim := newChatSim(t, 50)
	e := chatEngine(t, sim, 20)
	bad := "d-trouble-st-011"
	sim.RefuseChannel("store:" + bad)
	sim.Force429(3, 700*time.Millisecond)
	sim.FailNext(3, http.StatusInternalServerError)
	sim.FailNextAfterStoring(2, http.StatusBadGateway) // stored, but a gateway answers 502
	sim.HangNext(2, 12*time.Second, true)              // taken, but the answer never comes in time

	stores := linkAndIssue(t, e, "d-trouble", bills)
	good := stores[:bills-1]
	msgs := delivered(t, sim, "bill_issued", good, 2*time.Minute)
	onceEach(t, msgs)
	if sim.Refused() < 3 {
		t.Errorf("the provider refused %d requests with 429; want the 3 forced", sim.Refused())
	}

	var dead api.NotifyListReply
	testenv.CheckFor(t, 30*time.Second, func() error {
		dead = api.NotifyListReply{}
		if _, err := e.c.Call(ctxT(t), api.NotifyList.Subject, api.NotifyListRequest{Status: api.NotificationDead}, &dead, nil); err != nil {
			return err
		}
		if len(dead.Notifications) != 1 {
			return fmt.Errorf("%d dead notifications, want 1", len(dead.Notifications))
		}
		return nil
	})
	d := dead.Notifications[0]
	if d.Recipient != "store:"+bad || d.Kind != "bill_issued" || !strings.Contains(d.LastError, "400") || d.Attempts < 1 {
		t.Errorf("dead notification: %+v; want the refused store's bill_issued, with its 400", d)
	}
	if got := metric(t, e, `bankbook_notifications{status="dead"}`); got != "1" {
		t.Errorf(`bankbook_notifications{status="dead"} = %q, want 1`, got)
	}

	sim.AllowChannel("store:" + bad)
	var rep api.NotifyRedriveReply
	e.call(t, api.NotifyRedrive.Subject, api.NotifyRedriveRequest{NotificationID: d.NotificationID, Reason: "channel fixed"}, &rep, nil)
	if rep.Status != api.NotificationPending || rep.Seq == 0 {
		t.Errorf("redrive: %+v", rep)
	}
	// Every notification is recorded sent (the ones whose answer never came
	// after the provider asked whether they arrived), and none was sent twice.
	testenv.CheckFor(t, time.Minute, func() error {
		var sent api.NotifyListReply
		if _, err := e.c.Call(ctxT(t), api.NotifyList.Subject, api.NotifyListRequest{Status: api.NotificationSent}, &sent, nil); err != nil {
			return err
		}
		if len(sent.Notifications) != bills {
			return fmt.Errorf("%d of %d notifications sent", len(sent.Notifications), bills)
		}
		return nil
	})
	onceEach(t, delivered(t, sim, "bill_issued", stores, time.Minute))
	// A redrive of a notification that is not dead is refused.
	if ce := e.callErr(t, api.NotifyRedrive.Subject, api.NotifyRedriveRequest{NotificationID: d.NotificationID}, nil); ce.Status != 409 || ce.Code != "notification_not_dead" {
		t.Errorf("redrive of a sent notification: %d %s, want 409 notification_not_dead", ce.Status, ce.Code)
	}
	if ce := e.callErr(t, api.NotifyRedrive.Subject, api.NotifyRedriveRequest{NotificationID: "ntf_000000000000000000000000"}, nil); ce.Status != 404 || ce.Code != "notification_not_found" {
		t.Errorf("redrive of an unknown notification: %d %s, want 404 notification_not_found", ce.Status, ce.Code)
	}

	var lim api.NotifyLimiterReply
	e.call(t, api.NotifyLimiter.Subject, api.EmptyRequest{}, &lim, nil)
	if lim.RatePerS != 20 || lim.Burst != 1 || lim.Scope == "" {
		t.Errorf("notify.limiter: %+v, want rate 20, burst 1", lim)
	}
	var simRep api.SimChatMessagesReply
	e.call(t, api.SimChatMessages.Subject, api.SimChatMessagesRequest{Channel: "store:" + bad}, &simRep, nil)
	if len(simRep.Messages) != 1 || simRep.Total != 1 || simRep.Refused < 3 {
		t.Errorf("sim.chat.messages for %s: %d messages (total %d), %d refused; want 1 and at least 3", bad, len(simRep.Messages), simRep.Total, simRep.Refused)
	}
	var all, latest api.SimChatMessagesReply
	e.call(t, api.SimChatMessages.Subject, api.SimChatMessagesRequest{}, &all, nil)
	e.call(t, api.SimChatMessages.Subject, api.SimChatMessagesRequest{Limit: 1}, &latest, nil)
	if all.Total < 2 || latest.Total != all.Total || len(latest.Messages) != 1 || latest.Messages[0] != all.Messages[len(all.Messages)-1] {
		t.Errorf("sim.chat.messages limit 1: %d of %d, want the latest of %d", len(latest.Messages), latest.Total, all.Total)
	}
	// From pages from the oldest.
	for _, tc := range []struct{ from, limit, first, n int }{{1, 1, 0, 1}, {2, 0, 1, all.Total - 1}, {all.Total, 5, all.Total - 1, 1}, {all.Total + 1, 0, 0, 0}, {math.MaxInt, 0, 0, 0}, {math.MaxInt - 500, 5, 0, 0}} {
		var page api.SimChatMessagesReply
		e.call(t, api.SimChatMessages.Subject, api.SimChatMessagesRequest{From: tc.from, Limit: tc.limit}, &page, nil)
		if len(page.Messages) != tc.n || page.Total != all.Total || tc.n > 0 && page.Messages[0] != all.Messages[tc.first] {
			t.Errorf("sim.chat.messages from %d limit %d: %d of %d, want %d from the %d-th", tc.from, tc.limit, len(page.Messages), page.Total, tc.n, tc.first+1)
		}
	}
}

// metric returns the value of one series of the engine's /metrics.
func metric(t *testing.T, e *testEngine, series string) string {
	t.Helper()
	res, err := http.Get("http://" + e.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return v
		}
	}
	return ""
}

// TestNotifyListFiltersAndPages: the list pages, filters by recipient and
// status, and refuses bad filters.
func TestNotifyListFiltersAndPages(t *testing.T) {
	sim := newChatSim(t, 100)
	e := chatEngine(t, sim, 50)
	stores := linkAndIssue(t, e, "d-list", 5)
	delivered(t, sim, "bill_issued", stores, time.Minute)
	var all []api.NotificationView
	cursor := ""
	for {
		var page api.NotifyListReply
		e.call(t, api.NotifyList.Subject, api.NotifyListRequest{PageRequest: api.PageRequest{Limit: 2, Cursor: cursor}}, &page, nil)
		all = append(all, page.Notifications...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(all) != 5 {
		t.Fatalf("paged list: %d notifications, want 5", len(all))
	}
	// The provider has the message a moment before the engine records it
	// sent and its read models show it.
	var one api.NotifyListReply
	testenv.CheckFor(t, 30*time.Second, func() error {
		one = api.NotifyListReply{}
		if _, err := e.c.Call(ctxT(t), api.NotifyList.Subject, api.NotifyListRequest{Recipient: "store:" + stores[2]}, &one, nil); err != nil {
			return err
		}
		if len(one.Notifications) != 1 || one.Notifications[0].Recipient != "store:"+stores[2] || one.Notifications[0].Status != api.NotificationSent {
			return fmt.Errorf("list by recipient: %+v", one.Notifications)
		}
		return nil
	})
	raw, err := json.Marshal(one.Notifications[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"notification_id", "kind", "recipient", "status", "attempts", "created_at", "sent_at"} {
		if !strings.Contains(string(raw), `"`+field+`"`) {
			t.Errorf("notification view lacks %q: %s", field, raw)
		}
	}
	for _, bad := range []api.NotifyListRequest{{Status: "gone"}, {Recipient: "shop:1"}, {Recipient: "store:a b"}} {
		if ce := e.callErr(t, api.NotifyList.Subject, bad, nil); ce.Status != 400 {
			t.Errorf("notify.list %+v: %d %s, want 400", bad, ce.Status, ce.Code)
		}
	}
}

// TestAnInstanceWithoutAProviderLeavesNotificationsToOneWithIt: an engine
// with no chat provider records notifications but runs no notify part, so
// their commits wait on the shared consumer unread (a dispatcher there
// would take each and hand it back every minute, the whole backlog over
// and over); an instance with a provider that joins sends each once.
func TestAnInstanceWithoutAProviderLeavesNotificationsToOneWithIt(t *testing.T) {
	a := startEngine(t)
	if _, runs := a.Loops["notify"]; runs {
		t.Fatal("an engine without a provider runs the notify part")
	}
	stores := linkAndIssue(t, a, "d-noprov", 3)
	testenv.CheckFor(t, 30*time.Second, func() error {
		if got := metric(t, a, `bankbook_notifications{status="pending"}`); got != "3" {
			return fmt.Errorf(`bankbook_notifications{status="pending"} = %q, want 3`, got)
		}
		return nil
	})
	// Long enough for a dispatcher to have taken the commits: none did.
	time.Sleep(2 * time.Second)
	stream, err := a.js.Stream(ctxT(t), a.Events.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	switch cons, err := stream.Consumer(ctxT(t), "notify"); {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		t.Fatal(err)
	default:
		if st := cons.CachedInfo(); st.NumAckPending != 0 || st.Delivered.Consumer != 0 {
			t.Errorf("the notify consumer: %d delivered, %d unacknowledged; want none taken without a provider", st.Delivered.Consumer, st.NumAckPending)
		}
	}

	sim := newChatSim(t, 100)
	chatEngine(t, sim, 20, func(c *engine.Config) { joinEngine(c, a.Engine) })
	onceEach(t, delivered(t, sim, "bill_issued", stores, time.Minute))
}

// While the shared limiter cannot be asked (its key holds what no instance
// wrote), nothing is sent and the notify part is failing, so /readyz says
// so, and bankbook_ratelimit_total counts the failures; once the key is
// gone, the notification waiting is sent and the part is running again.
func TestNotifyIsNotReadyWhileTheLimiterCannotBeAsked(t *testing.T) {
	sim := newChatSim(t, 100)
	e := chatEngine(t, sim, 20)
	first := linkAndIssue(t, e, "d-lim", 1)
	delivered(t, sim, "bill_issued", first, 30*time.Second)
	if got := metric(t, e, `bankbook_ratelimit_total{count="reserved"}`); got == "" || got == "0" {
		t.Fatalf(`bankbook_ratelimit_total{count="reserved"} = %q after a send`, got)
	}

	kv, err := e.js.KeyValue(ctxT(t), "bankbook_limits")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctxT(t), "chat", []byte("not a schedule")); err != nil {
		t.Fatal(err)
	}
	second := linkAndIssue(t, e, "d-lim2", 1)
	testenv.CheckFor(t, 30*time.Second, func() error {
		code, rep := e.readyz(t)
		p, _ := part(rep, "notify")
		if code != http.StatusServiceUnavailable || p.Ready || p.State != "failing" || !strings.Contains(p.Reason+p.LastError, "rate limiter unavailable") {
			return fmt.Errorf("/readyz %d, notify %+v", code, p)
		}
		if got := metric(t, e, `bankbook_ratelimit_total{count="failures"}`); got == "" || got == "0" {
			return fmt.Errorf(`bankbook_ratelimit_total{count="failures"} = %q`, got)
		}
		return nil
	})
	for _, m := range sim.Messages("store:" + second[0]) {
		t.Fatalf("sent while the limiter could not be asked: %+v", m)
	}

	if err := kv.Delete(ctxT(t), "chat"); err != nil {
		t.Fatal(err)
	}
	delivered(t, sim, "bill_issued", second, time.Minute)
	testenv.CheckFor(t, 30*time.Second, func() error {
		if code, rep := e.readyz(t); code != http.StatusOK {
			p, _ := part(rep, "notify")
			return fmt.Errorf("/readyz %d, notify %+v", code, p)
		}
		return nil
	})
}

// TestCancelledBillTellsTheStoreOnce: a cancelled bill tells its store
// (bill_cancelled: which bill, its amount and issue date, and that nothing
// is due on it), once, with two instances recording and sending, and again
// once after react-notify is created anew and reads every event again
// from where notifications began, on a restarted engine. A bill that
// expires because the next is issued tells nothing: the next bill's
// bill_issued does.
func TestCancelledBillTellsTheStoreOnce(t *testing.T) {
	sim := newChatSim(t, 100)
	a := chatEngine(t, sim, 50)
	b := chatEngine(t, sim, 50, func(c *engine.Config) { joinEngine(c, a.Engine) })
	const d = "d-cancel"
	stores := []string{d + "-st-0", d + "-st-1", d + "-st-2"}
	bills := map[string]api.IssueBillReply{}
	for i, s := range stores {
		var link api.LinkStoreReply
		a.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: d, StoreID: s, StoreName: "가게 " + s}, &link, nil)
		var bill api.IssueBillReply
		a.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: s, Amount: 12_345_000 + int64(i)}, &bill, nil)
		bills[s] = bill
	}
	onceEach(t, delivered(t, sim, "bill_issued", stores, time.Minute))

	// Stores 0 and 1 have their bills cancelled (one through each
	// instance); store 2's bill expires as the next is issued.
	for i, e := range []*testEngine{a, b} {
		var rep api.CancelBillReply
		e.call(t, api.BillCancel.Subject, api.CancelBillRequest{BillID: bills[stores[i]].BillID, Reason: "금액 오류"}, &rep, nil)
		if rep.Status != "cancelled" {
			t.Fatalf("bill.cancel %s: %+v", bills[stores[i]].BillID, rep)
		}
	}
	var next api.IssueBillReply
	a.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: stores[2], Amount: 20_000}, &next, nil)
	if next.SupersededBillID != bills[stores[2]].BillID {
		t.Fatalf("the next bill of %s superseded %q, want %q", stores[2], next.SupersededBillID, bills[stores[2]].BillID)
	}

	cancelled := stores[:2]
	msgs := delivered(t, sim, "bill_cancelled", cancelled, time.Minute)
	onceEach(t, msgs)
	for _, m := range msgs {
		s := strings.TrimPrefix(m.Channel, "store:")
		bill := bills[s]
		issued, err := time.Parse(time.RFC3339Nano, bill.IssuedAt)
		if err != nil {
			t.Fatal(err)
		}
		day := issued.In(domain.Seoul()).Format("2006-01-02")
		amount := domain.Won(bill.Amount)
		for _, want := range []string{bill.BillID, amount, day, "입금하실 금액은 없습니다"} {
			if !strings.Contains(m.Message, want) {
				t.Errorf("%s's bill_cancelled message %q lacks %q", s, m.Message, want)
			}
		}
		var data map[string]string
		if err := json.Unmarshal([]byte(m.Data), &data); err != nil {
			t.Fatal(err)
		}
		if data["bill_id"] != bill.BillID || data["amount"] != fmt.Sprint(bill.Amount) || data["store_id"] != s || data["issued_at"] == "" || data["notification_id"] == "" {
			t.Errorf("%s's bill_cancelled data: %v", s, data)
		}
		// Nothing is due: the message does not hand out the account to pay to.
		if _, ok := data["account_number"]; ok || strings.Contains(m.Message, bill.DedicatedAccount.Number) {
			t.Errorf("%s's bill_cancelled names the dedicated account: %q %v", s, m.Message, data)
		}
	}
	// Store 2's second bill_issued is recorded from the commit that expired
	// its first bill, after that commit's bill.expired: once it is there,
	// a message about the expiry would be too.
	testenv.CheckFor(t, time.Minute, func() error {
		if n := kindCount(sim.Messages("store:"+stores[2]), "bill_issued"); n != 2 {
			return fmt.Errorf("store %s has %d bill_issued messages, want 2", stores[2], n)
		}
		return nil
	})

	// react-notify created anew, on a restarted engine, reads every event
	// again: the notifications it meets exist already.
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	stream, err := a.js.Stream(ctxT(t), a.Events.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(ctxT(t), "react-notify"); err != nil {
		t.Fatal(err)
	}
	a = a.restart(t)
	last := uint64(next.Seq) // the last link commit
	testenv.CheckFor(t, time.Minute, func() error {
		stream, err := a.js.Stream(ctxT(t), a.Events.Config().Stream)
		if err != nil {
			return err
		}
		cons, err := stream.Consumer(ctxT(t), "react-notify")
		if err != nil {
			return err
		}
		info, err := cons.Info(ctxT(t))
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < last || info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("react-notify acknowledged up to %d of %d, %d to deliver, %d unacknowledged", info.AckFloor.Stream, last, info.NumPending, info.NumAckPending)
		}
		return nil
	})
	testenv.CheckFor(t, time.Minute, func() error {
		for i, s := range stores {
			var list api.NotifyListReply
			if _, err := a.c.Call(ctxT(t), api.NotifyList.Subject, api.NotifyListRequest{Recipient: "store:" + s}, &list, nil); err != nil {
				return err
			}
			want := map[bool]int{true: 1, false: 0}[i < 2]
			got := 0
			for _, n := range list.Notifications {
				if n.Kind == "bill_cancelled" {
					got++
					if n.Status != api.NotificationSent {
						return fmt.Errorf("%s's bill_cancelled is %s", s, n.Status)
					}
				}
			}
			if got != want {
				return fmt.Errorf("notify.list: %s has %d bill_cancelled notifications, want %d", s, got, want)
			}
		}
		return nil
	})
	onceEach(t, delivered(t, sim, "bill_cancelled", cancelled, time.Minute))
	for _, s := range stores {
		want := map[bool]int{true: 1, false: 0}[s != stores[2]]
		if n := kindCount(sim.Messages("store:"+s), "bill_cancelled"); n != want {
			t.Errorf("store %s got %d bill_cancelled messages, want %d", s, n, want)
		}
	}
}

// kindCount is how many of msgs are of kind.
func kindCount(msgs []chat.SimMessage, kind string) int {
	n := 0
	for _, m := range msgs {
		if m.CustomType == kind {
			n++
		}
	}
	return n
}
