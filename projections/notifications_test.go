package projections_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// notifyWorld writes notification commits as the commands package would:
// each step decides its events on the notification's state
// (domain.Decide*), folds them into that state and hands the commit to
// sink.
type notifyWorld struct {
	t      testing.TB
	states map[domain.NotificationID]domain.Notification
	// created lists the notifications in the order they were created.
	created []domain.NotificationID
	sink    func(ref eventstore.Ref, at time.Time, evs []domain.Event) eventstore.Commit
}

// newNotifyWorld builds commits in memory (commitLog) and applies each,
// one batch per commit, to st (a real bbolt file).
func newNotifyWorld(t testing.TB, st *projections.Store) (*notifyWorld, *[]eventstore.Commit) {
	t.Helper()
	l := newCommitLog()
	var all []eventstore.Commit
	w := &notifyWorld{t: t, states: map[domain.NotificationID]domain.Notification{}}
	w.sink = func(ref eventstore.Ref, at time.Time, evs []domain.Event) eventstore.Commit {
		t.Helper()
		c := l.commit(t, ref, at, evs...)
		if err := st.Apply([]eventstore.Commit{c}); err != nil {
			t.Fatalf("apply seq %d: %v", c.Seq, err)
		}
		all = append(all, c)
		return c
	}
	return w, &all
}

func notificationRef(id domain.NotificationID) eventstore.Ref {
	return eventstore.Ref{Type: domain.AggregateNotification, ID: string(id)}
}

// on decides one command on notification id and commits its events at at.
func (w *notifyWorld) on(id domain.NotificationID, at time.Time, decide func(domain.Notification) ([]domain.Event, error)) eventstore.Commit {
	w.t.Helper()
	n := w.states[id]
	evs, err := decide(n)
	if err != nil || len(evs) == 0 {
		w.t.Fatalf("notification %s: decide: %d events, %v", id, len(evs), err)
	}
	for _, e := range evs {
		n = n.Apply(e)
	}
	w.states[id] = n
	return w.sink(notificationRef(id), at, evs)
}

// create records the notification of kind bill_issued to recipient caused
// by the event source.
func (w *notifyWorld) create(source, recipient string, at time.Time) (domain.NotificationID, eventstore.Commit) {
	w.t.Helper()
	return w.createFrom(source, recipient, 0, at)
}

// createFrom is create, for an event in the commit at sourceSeq (0:
// unknown).
func (w *notifyWorld) createFrom(source, recipient string, sourceSeq uint64, at time.Time) (domain.NotificationID, eventstore.Commit) {
	w.t.Helper()
	in := domain.NotificationIntent{SourceSeq: sourceSeq,
		ID: domain.NewNotificationID(source, domain.NotifyBillIssued, recipient), Kind: domain.NotifyBillIssued, Recipient: recipient,
		Message: "[청구서] 39,000원이 청구되었습니다.", Data: map[string]string{"amount": "39000"}, SourceEventID: source, SourceType: "bill.issued",
	}
	c := w.on(in.ID, at, func(n domain.Notification) ([]domain.Event, error) { return domain.DecideCreateNotification(n, in, at) })
	w.created = append(w.created, in.ID)
	return in.ID, c
}

func (w *notifyWorld) attempt(id domain.NotificationID, at time.Time) eventstore.Commit {
	w.t.Helper()
	return w.on(id, at, func(n domain.Notification) ([]domain.Event, error) { return domain.DecideAttempt(n, at) })
}

// fail records that the last attempt failed, to be retried at retryAt
// unless it is the maxAttempts-th.
func (w *notifyWorld) fail(id domain.NotificationID, reason string, retryAt time.Time, maxAttempts int, at time.Time) eventstore.Commit {
	w.t.Helper()
	return w.on(id, at, func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotificationFailed(n, reason, false, retryAt, maxAttempts, at)
	})
}

// refuse records a permanent refusal of the last attempt: it dead-letters.
func (w *notifyWorld) refuse(id domain.NotificationID, reason string, at time.Time) eventstore.Commit {
	w.t.Helper()
	return w.on(id, at, func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotificationFailed(n, reason, true, time.Time{}, 10, at)
	})
}

func (w *notifyWorld) sent(id domain.NotificationID, at time.Time) eventstore.Commit {
	w.t.Helper()
	return w.on(id, at, func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotificationSent(n, "msg-"+string(id), false, at)
	})
}

func (w *notifyWorld) redrive(id domain.NotificationID, at time.Time) eventstore.Commit {
	w.t.Helper()
	return w.on(id, at, func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideRedrive(n, "channel fixed", at)
	})
}

// deliver attempts id and records it sent.
func (w *notifyWorld) deliver(id domain.NotificationID, at time.Time) eventstore.Commit {
	w.t.Helper()
	w.attempt(id, at)
	return w.sent(id, at.Add(time.Second))
}

// kill attempts id and records a permanent refusal: dead.
func (w *notifyWorld) kill(id domain.NotificationID, at time.Time) eventstore.Commit {
	w.t.Helper()
	w.attempt(id, at)
	return w.refuse(id, "400 channel not found", at.Add(time.Second))
}

func getNotification(t testing.TB, st *projections.Store, id domain.NotificationID) projections.NotificationView {
	t.Helper()
	v, ok, err := st.Notification(string(id))
	if err != nil || !ok {
		t.Fatalf("notification %s: found %v, %v", id, ok, err)
	}
	return v
}

// listAll follows the cursors of Notifications(status, recipient) with
// pages of limit and returns the IDs in order, and how many pages it took.
func listAll(t testing.TB, st *projections.Store, status, recipient string, limit int) ([]string, int) {
	t.Helper()
	ids := []string{}
	cursor, pages := "", 0
	for {
		page, err := st.Notifications(status, recipient, limit, cursor)
		if err != nil {
			t.Fatalf("notifications status %q recipient %q cursor %q: %v", status, recipient, cursor, err)
		}
		pages++
		if len(page.Notifications) > limit {
			t.Fatalf("a page of %d notifications, limit %d", len(page.Notifications), limit)
		}
		if page.Notifications == nil {
			t.Fatal("a page with notifications null, want []")
		}
		for _, n := range page.Notifications {
			if status != "" && n.Status != status {
				t.Errorf("listed under %s: %s is %s", status, n.NotificationID, n.Status)
			}
			if recipient != "" && n.Recipient != recipient {
				t.Errorf("listed for %s: %s is for %s", recipient, n.NotificationID, n.Recipient)
			}
			ids = append(ids, n.NotificationID)
		}
		if cursor = page.NextCursor; cursor == "" {
			return ids, pages
		}
		if pages > 1000 {
			t.Fatal("the cursors do not end")
		}
	}
}

// checkListed checks that id is listed under want only, among the three
// statuses, and in the list of every status.
func checkListed(t testing.TB, st *projections.Store, id domain.NotificationID, want string) {
	t.Helper()
	for _, status := range []string{api.NotificationPending, api.NotificationSent, api.NotificationDead, ""} {
		ids, _ := listAll(t, st, status, "", 500)
		if listed := slices.Contains(ids, string(id)); listed != (status == want || status == "") {
			t.Errorf("%s: listed under status %q: %v; its status is %s", id, status, listed, want)
		}
	}
}

func checkCounts(t testing.TB, st *projections.Store, pending, sent, dead int) {
	t.Helper()
	got, err := st.NotificationCounts()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{api.NotificationPending: pending, api.NotificationSent: sent, api.NotificationDead: dead}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notification counts %v, want %v", got, want)
	}
}

// TestNotificationLife follows one notification through every event: each
// step shows in its view, it is listed under its current status only, and
// the counts follow.
func TestNotificationLife(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	checkCounts(t, st, 0, 0, 0)

	id, c := w.create("evt-bill-1", "store:s1", t0)
	want := projections.NotificationView{
		NotificationID: string(id), Kind: domain.NotifyBillIssued, Recipient: "store:s1", Status: api.NotificationPending,
		CreatedAt: domain.FormatTime(t0), Message: "[청구서] 39,000원이 청구되었습니다.", SourceEventID: "evt-bill-1", Seq: api.Seq(c.Seq),
	}
	step := func(name string, c eventstore.Commit, change func(*projections.NotificationView), pending, sent, dead int) {
		t.Helper()
		if change != nil {
			change(&want)
		}
		want.Seq = api.Seq(c.Seq)
		if got := getNotification(t, st, id); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
		}
		checkListed(t, st, id, want.Status)
		checkCounts(t, st, pending, sent, dead)
	}
	step("created", c, nil, 1, 0, 0)

	at := t0.Add(time.Minute)
	step("attempted", w.attempt(id, at), func(v *projections.NotificationView) { v.Attempts = 1 }, 1, 0, 0)
	retry := at.Add(30 * time.Second)
	step("failed", w.fail(id, "503 service unavailable", retry, 2, at.Add(time.Second)), func(v *projections.NotificationView) {
		v.LastError, v.RetryAt = "503 service unavailable", domain.FormatTime(retry)
	}, 1, 0, 0)

	at = retry
	step("attempted again", w.attempt(id, at), func(v *projections.NotificationView) { v.Attempts, v.RetryAt = 2, "" }, 1, 0, 0)
	// The second failure of two allowed: failed and dead_lettered in one
	// commit; no retry time.
	c = w.fail(id, "500 internal error", at.Add(time.Minute), 2, at.Add(time.Second))
	if len(c.Events) != 2 {
		t.Fatalf("the last failure committed %d events, want failed and dead_lettered", len(c.Events))
	}
	step("dead-lettered", c, func(v *projections.NotificationView) {
		v.Status, v.LastError, v.RetryAt = api.NotificationDead, "500 internal error", ""
	}, 0, 0, 1)

	at = at.Add(time.Hour)
	step("redriven", w.redrive(id, at), func(v *projections.NotificationView) { v.Status = api.NotificationPending }, 1, 0, 0)
	step("attempted after the redrive", w.attempt(id, at.Add(time.Second)), func(v *projections.NotificationView) { v.Attempts = 3 }, 1, 0, 0)
	sentAt := at.Add(2 * time.Second)
	step("sent", w.sent(id, sentAt), func(v *projections.NotificationView) {
		v.Status, v.SentAt = api.NotificationSent, domain.FormatTime(sentAt)
	}, 0, 1, 0)
}

// TestNotificationsSentAfterARetryShowNoRetryTime: a failure due again at
// once shows no retry time; a notification sent after a failure keeps the
// failure's error but no longer a retry time.
func TestNotificationsSentAfterARetryShowNoRetryTime(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	id, _ := w.create("evt-1", "distributor:d1", t0)
	// A failure due again at once has no retry time.
	w.attempt(id, t0)
	w.fail(id, "503", time.Time{}, 10, t0.Add(time.Second))
	if v := getNotification(t, st, id); v.RetryAt != "" || v.LastError != "503" || v.Status != api.NotificationPending {
		t.Fatalf("after a failure due at once: %+v", v)
	}
	w.attempt(id, t0)
	w.fail(id, "timeout", t0.Add(time.Minute), 10, t0.Add(time.Second))
	if v := getNotification(t, st, id); v.RetryAt == "" || v.Status != api.NotificationPending {
		t.Fatalf("after a failure: %+v", v)
	}
	w.deliver(id, t0.Add(time.Minute))
	v := getNotification(t, st, id)
	if v.Status != api.NotificationSent || v.RetryAt != "" || v.SentAt == "" || v.Attempts != 3 || v.LastError != "timeout" {
		t.Fatalf("sent after a retry: %+v", v)
	}
}

// TestNotificationsByRecipient: the recipient filter lists one recipient's
// notifications only (store:s1 and store:s10 share a prefix), with or
// without a status, and a recipient with none has an empty list.
func TestNotificationsByRecipient(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	recipients := []string{"store:s1", "store:s10", "distributor:s1", "user:s1"}
	byRecipient := map[string][]string{}
	byBoth := map[[2]string][]string{}
	for i := range 24 {
		r := recipients[i%len(recipients)]
		at := t0.Add(time.Duration(i) * time.Second)
		id, _ := w.create(fmt.Sprintf("evt-%d", i), r, at)
		status := api.NotificationPending
		switch i % 3 {
		case 1:
			w.deliver(id, at)
			status = api.NotificationSent
		case 2:
			w.kill(id, at)
			status = api.NotificationDead
		}
		byRecipient[r] = append(byRecipient[r], string(id))
		byBoth[[2]string{status, r}] = append(byBoth[[2]string{status, r}], string(id))
	}
	for _, r := range recipients {
		if got, _ := listAll(t, st, "", r, 500); !slices.Equal(got, byRecipient[r]) {
			t.Errorf("recipient %s:\n got %v\nwant %v", r, got, byRecipient[r])
		}
		for _, status := range []string{api.NotificationPending, api.NotificationSent, api.NotificationDead} {
			want := byBoth[[2]string{status, r}]
			if want == nil {
				want = []string{}
			}
			if got, _ := listAll(t, st, status, r, 2); !slices.Equal(got, want) {
				t.Errorf("recipient %s status %s, pages of 2:\n got %v\nwant %v", r, status, got, want)
			}
		}
	}
	for _, r := range []string{"store:s", "store:s100", "store:", "user:nobody"} {
		if got, _ := listAll(t, st, "", r, 500); len(got) != 0 {
			t.Errorf("recipient %s has no notifications; listed %v", r, got)
		}
	}
}

// TestNotificationPages: following the cursors lists every notification
// once, oldest first, for every status and for all; a page that ends the
// list has no cursor; a notification that leaves a status between two
// pages is neither listed twice nor makes the rest disappear; a cursor the
// store did not hand out is ErrBadCursor.
func TestNotificationPages(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	var all []string
	byStatus := map[string][]string{}
	var ids []domain.NotificationID
	for i := range 30 {
		at := t0.Add(time.Duration(i) * time.Second)
		id, _ := w.create(fmt.Sprintf("evt-%02d", i), fmt.Sprintf("store:s%d", i%5), at)
		ids = append(ids, id)
		all = append(all, string(id))
	}
	// Change statuses out of creation order: the lists stay in the order
	// the notifications were created.
	for i := 29; i >= 0; i-- {
		switch {
		case i%4 == 1:
			w.deliver(ids[i], t0.Add(time.Hour))
		case i%4 == 2:
			w.kill(ids[i], t0.Add(time.Hour))
		}
	}
	for i, id := range ids {
		status := []string{api.NotificationPending, api.NotificationSent, api.NotificationDead, api.NotificationPending}[i%4]
		byStatus[status] = append(byStatus[status], string(id))
	}
	byStatus[""] = all

	for _, status := range []string{"", api.NotificationPending, api.NotificationSent, api.NotificationDead} {
		for _, limit := range []int{1, 4, 7, len(byStatus[status]), 500} {
			got, pages := listAll(t, st, status, "", limit)
			if !slices.Equal(got, byStatus[status]) {
				t.Errorf("status %q, pages of %d:\n got %v\nwant %v", status, limit, got, byStatus[status])
			}
			if want := max(1, (len(byStatus[status])+limit-1)/limit); pages != want {
				t.Errorf("status %q: %d pages of %d for %d notifications, want %d", status, pages, limit, len(byStatus[status]), want)
			}
		}
	}

	t.Run("a notification leaves the status between two pages", func(t *testing.T) {
		pending := byStatus[api.NotificationPending]
		first, err := st.Notifications(api.NotificationPending, "", 3, "")
		if err != nil || len(first.Notifications) != 3 || first.NextCursor == "" {
			t.Fatalf("first page: %+v, %v", first, err)
		}
		// The last one on the first page and the first one of the next
		// are sent meanwhile.
		w.deliver(domain.NotificationID(pending[2]), t0.Add(2*time.Hour))
		w.deliver(domain.NotificationID(pending[3]), t0.Add(2*time.Hour))
		var rest []string
		cursor := first.NextCursor
		for cursor != "" {
			page, err := st.Notifications(api.NotificationPending, "", 3, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range page.Notifications {
				rest = append(rest, n.NotificationID)
			}
			cursor = page.NextCursor
		}
		if want := pending[4:]; !slices.Equal(rest, want) {
			t.Fatalf("the pages after the first:\n got %v\nwant %v", rest, want)
		}
	})

	t.Run("a cursor it did not hand out", func(t *testing.T) {
		for _, c := range []string{"zz", "0", "00", "0000000000000000", "abc", "not a cursor"} {
			for _, status := range []string{"", api.NotificationDead} {
				if _, err := st.Notifications(status, "", 10, c); !errors.Is(err, projections.ErrBadCursor) {
					t.Errorf("cursor %q, status %q: got %v, want ErrBadCursor", c, status, err)
				}
			}
			if _, err := st.Notifications("", "store:s1", 10, c); !errors.Is(err, projections.ErrBadCursor) {
				t.Errorf("cursor %q with a recipient: got %v, want ErrBadCursor", c, err)
			}
		}
	})

	t.Run("an empty store", func(t *testing.T) {
		empty := openStore(t, tempPath(t, "empty.db"))
		page, err := empty.Notifications("", "", 10, "")
		if err != nil || page.Notifications == nil || len(page.Notifications) != 0 || page.NextCursor != "" {
			t.Fatalf("empty list: %+v, %v", page, err)
		}
		if _, ok, err := empty.Notification("ntf_000000000000000000000000"); ok || err != nil {
			t.Fatalf("an unknown notification: found %v, %v", ok, err)
		}
		checkCounts(t, empty, 0, 0, 0)
	})
}

// TestNotificationCounts: the counts per status follow every move, and
// match the lists.
func TestNotificationCounts(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	var ids []domain.NotificationID
	for i := range 12 {
		id, _ := w.create(fmt.Sprintf("evt-%d", i), "user:u1", t0)
		ids = append(ids, id)
	}
	checkCounts(t, st, 12, 0, 0)
	for _, id := range ids[:5] {
		w.deliver(id, t0.Add(time.Minute))
	}
	checkCounts(t, st, 7, 5, 0)
	for _, id := range ids[5:9] {
		w.kill(id, t0.Add(time.Minute))
	}
	checkCounts(t, st, 3, 5, 4)
	// A failure that is retried leaves the counts as they are.
	w.attempt(ids[9], t0.Add(time.Minute))
	w.fail(ids[9], "503", t0.Add(2*time.Minute), 10, t0.Add(time.Minute))
	checkCounts(t, st, 3, 5, 4)
	for _, id := range ids[5:7] {
		w.redrive(id, t0.Add(time.Hour))
	}
	checkCounts(t, st, 5, 5, 2)
	w.deliver(ids[5], t0.Add(2*time.Hour))
	checkCounts(t, st, 4, 6, 2)

	counts, err := st.NotificationCounts()
	if err != nil {
		t.Fatal(err)
	}
	for status, n := range counts {
		if got, _ := listAll(t, st, status, "", 500); len(got) != n {
			t.Errorf("%d %s listed, counted %d", len(got), status, n)
		}
	}
}

// TestNotificationEventsThatDoNotFit: an event for a notification never
// created, and a notification created twice, fail their batch with
// ErrInconsistent from the notifications projection and write nothing.
func TestNotificationEventsThatDoNotFit(t *testing.T) {
	id := domain.NewNotificationID("evt-x", domain.NotifyBillIssued, "store:s1")
	created := domain.NotificationCreated{
		NotificationID: id, Kind: domain.NotifyBillIssued, Recipient: "store:s1", Message: "m", Data: map[string]string{},
		SourceEventID: "evt-x", SourceType: "bill.issued", CreatedAt: t0,
	}
	cases := []struct {
		name   string
		before [][]domain.Event
		bad    []domain.Event
	}{
		{"attempted, never created", nil, []domain.Event{domain.NotificationAttempted{NotificationID: id, Attempt: 1, AttemptedAt: t0}}},
		{"failed, never created", nil, []domain.Event{domain.NotificationFailed{NotificationID: id, Attempt: 1, Error: "x", RetryAt: t0, FailedAt: t0}}},
		{"dead-lettered, never created", nil, []domain.Event{domain.NotificationDeadLettered{NotificationID: id, Attempts: 1, LastError: "x", DeadAt: t0}}},
		{"redriven, never created", nil, []domain.Event{domain.NotificationRedriven{NotificationID: id, RedrivenAt: t0}}},
		{"sent, never created", nil, []domain.Event{domain.NotificationSent{NotificationID: id, Attempt: 1, SentAt: t0}}},
		{"created twice", [][]domain.Event{{created}}, []domain.Event{created}},
		{"another's event after a create", [][]domain.Event{{created}}, []domain.Event{domain.NotificationSent{NotificationID: id + "x", Attempt: 1, SentAt: t0}}},
	}
	ref := notificationRef(id)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, tempPath(t, "rm.db"))
			l := newCommitLog()
			for _, evs := range tc.before {
				if err := st.Apply([]eventstore.Commit{l.commit(t, ref, t0, evs...)}); err != nil {
					t.Fatal(err)
				}
			}
			before, cpBefore := hashOf(t, st)
			err := st.Apply([]eventstore.Commit{l.commit(t, ref, t0, tc.bad...)})
			var ce *projections.CommitError
			if !errors.Is(err, projections.ErrInconsistent) || !errors.As(err, &ce) || ce.Projection != "notifications" {
				t.Fatalf("got %v, want ErrInconsistent from projection notifications", err)
			}
			if after, cp := hashOf(t, st); after != before || cp != cpBefore {
				t.Fatal("a refused batch changed the read models")
			}
		})
	}
}

// notifyHistory writes notifications in every status through w.
func notifyHistory(w *notifyWorld) {
	for i := range 9 {
		at := t0.Add(time.Duration(i) * time.Minute)
		id, _ := w.create(fmt.Sprintf("evt-h%d", i), fmt.Sprintf("store:s%d", i%3), at)
		switch i % 3 {
		case 1:
			w.attempt(id, at)
			w.fail(id, "503", at.Add(time.Minute), 10, at.Add(time.Second))
			w.deliver(id, at.Add(time.Minute))
		case 2:
			w.kill(id, at)
			if i == 5 {
				w.redrive(id, at.Add(time.Hour))
			}
		}
	}
}

// TestNotificationsRebuildToTheSameContent: the live file, fed one commit
// at a time, and a rebuild from sequence 1 in one batch have the same
// content hash.
func TestNotificationsRebuildToTheSameContent(t *testing.T) {
	live := openStore(t, tempPath(t, "live.db"))
	w, commits := newNotifyWorld(t, live)
	notifyHistory(w)
	liveHash, cp := hashOf(t, live)

	fresh := openStore(t, tempPath(t, "rebuilt.db"))
	if err := fresh.Apply(*commits); err != nil {
		t.Fatal(err)
	}
	if h, rcp := hashOf(t, fresh); h != liveHash || rcp != cp {
		t.Fatalf("rebuild %s at %d, live %s at %d", h, rcp, liveHash, cp)
	}
	empty, _ := hashOf(t, openStore(t, tempPath(t, "empty.db")))
	if liveHash == empty {
		t.Fatal("the notification history left no trace in the hash")
	}
}

// TestNotificationsFollowTheStreamAndReplay: with the real event stream,
// the runner builds the notifications read model live, among other
// aggregates' commits, and a replay into a fresh file has the live file's
// content hash.
func TestNotificationsFollowTheStreamAndReplay(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	startRunner(t, r)

	s := &streamSink{f: f, last: map[string]eventstore.Seq{}, ver: map[string]int{}}
	w := &notifyWorld{t: t, states: map[domain.NotificationID]domain.Notification{}, sink: s.sink(t)}
	history(t, f, 0, 3)
	notifyHistory(w)
	waitFor(t, r, f.lastSeq(t))

	checkCounts(t, st, 4, 3, 2)
	for id, n := range w.states {
		v := getNotification(t, st, id)
		if v.Status != string(n.Status) || v.Attempts != n.Attempts || v.Recipient != n.Recipient || v.LastError != n.LastError {
			t.Errorf("notification %s: view %+v, state %+v", id, v, n)
		}
	}
	if got, _ := listAll(t, st, api.NotificationDead, "store:s2", 500); len(got) != 2 {
		t.Errorf("dead for store:s2: %v, want 2", got)
	}

	liveHash, cp := hashOf(t, st)
	if replayed, rcp := replayHash(t, f, nil); replayed != liveHash || rcp != cp {
		t.Fatalf("live %s at %d, replay %s at %d", liveHash, cp, replayed, rcp)
	}
}

// indexes reads the notifications projection's index buckets straight from
// the closed read-model file at path: the IDs under each status prefix (and
// "*"), and under each recipient, in key order.
func indexes(t testing.TB, st *projections.Store, path string) (byStatus, byRecipient map[string][]string) {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	read := func(tx *bbolt.Tx, bucket string) (map[string][]string, error) {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil, fmt.Errorf("no bucket %s", bucket)
		}
		out := map[string][]string{}
		return out, b.ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k) < i+1+8+1 {
				return fmt.Errorf("%s: malformed key %q", bucket, k)
			}
			out[string(k[:i])] = append(out[string(k[:i])], string(k[i+1+8:]))
			return nil
		})
	}
	err = db.View(func(tx *bbolt.Tx) error {
		var err error
		if byStatus, err = read(tx, "notifications_by_status"); err != nil {
			return err
		}
		byRecipient, err = read(tx, "notifications_by_recipient")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return byStatus, byRecipient
}

// TestNotificationIndexesHoldEachOnce: in the file itself, every
// notification is indexed once under "*", once under its current status
// (the entry under the status it left is gone) and once under its
// recipient, in the order the notifications were created. The lists
// filter by status too, so an index entry left behind would not show in
// them.
func TestNotificationIndexesHoldEachOnce(t *testing.T) {
	path := tempPath(t, "rm.db")
	st := openStore(t, path)
	w, _ := newNotifyWorld(t, st)
	notifyHistory(w)
	// More moves: a dead one redriven and killed again, a redriven one sent.
	for _, id := range w.created {
		switch n := w.states[id]; {
		case n.Status == domain.NotificationStatusDead:
			w.redrive(id, t0.Add(3*time.Hour))
			w.kill(id, t0.Add(4*time.Hour))
		case n.Redrives > 0:
			w.deliver(id, t0.Add(3*time.Hour))
		}
	}
	byStatus, byRecipient := indexes(t, st, path)

	wantStatus := map[string][]string{}
	wantRecipient := map[string][]string{}
	for _, id := range w.created {
		n := w.states[id]
		wantStatus["*"] = append(wantStatus["*"], string(id))
		wantStatus[string(n.Status)] = append(wantStatus[string(n.Status)], string(id))
		wantRecipient[n.Recipient] = append(wantRecipient[n.Recipient], string(id))
	}
	if !reflect.DeepEqual(byStatus, wantStatus) {
		t.Errorf("the status index:\n got %v\nwant %v", byStatus, wantStatus)
	}
	if !reflect.DeepEqual(byRecipient, wantRecipient) {
		t.Errorf("the recipient index:\n got %v\nwant %v", byRecipient, wantRecipient)
	}
}

// PendingAhead names the oldest notification to the same recipient,
// created before, that is pending and not waiting for a retry: not one to
// another recipient, not one sent or dead, not one that failed and waits
// to be tried again; one under way, or redriven, is.
func TestPendingAheadIsTheRecipientsOldestUntried(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	ahead := func(id domain.NotificationID, want domain.NotificationID) {
		t.Helper()
		q, err := st.PendingAhead(string(id))
		if err != nil || q.Ahead != string(want) {
			t.Fatalf("PendingAhead(%s) = %+v, %v; want %q ahead", id, q, err, want)
		}
	}
	first, _ := w.create("evt-1", "store:s1", t0)
	w.create("evt-other", "store:s2", t0.Add(time.Second))
	second, _ := w.create("evt-2", "store:s1", t0.Add(2*time.Second))
	third, _ := w.create("evt-3", "store:s1", t0.Add(3*time.Second))
	ahead(first, "")
	ahead(second, first)
	ahead(third, first)
	// Queued before the third: every pending notification created before
	// it, to anyone.
	if q, err := st.PendingAhead(string(third)); err != nil || q.Queued != 3 {
		t.Fatalf("queued before the third: %d (%v), want 3", q.Queued, err)
	}
	if got, err := st.PendingAhead("no-such-notification"); err != nil || got != (projections.NotificationQueue{}) {
		t.Fatalf("PendingAhead of an unknown notification = %+v, %v; want nothing", got, err)
	}

	// Tried, with no outcome yet (under way, or in doubt, settled soon): it
	// still goes first.
	w.attempt(first, t0.Add(4*time.Second))
	ahead(second, first)
	// Throttled (a 429, its channel just created: not counted), it goes
	// again as soon as the limit allows: still first.
	w.on(first, t0.Add(4*time.Second), func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotificationThrottled(n, "429", t0.Add(5*time.Second), t0.Add(4*time.Second))
	})
	ahead(second, first)
	w.attempt(first, t0.Add(5*time.Second))
	ahead(second, first)
	// Failed, it waits to be tried again: it holds nothing up.
	w.fail(first, "503", t0.Add(time.Minute), 10, t0.Add(5*time.Second))
	ahead(second, "")
	ahead(third, second)
	// Sent or dead, it is no longer pending.
	w.deliver(second, t0.Add(6*time.Second))
	ahead(third, "")
	w.kill(third, t0.Add(7*time.Second))
	fourth, _ := w.create("evt-4", "store:s1", t0.Add(8*time.Second))
	ahead(fourth, "")

	// Redriven, a notification is due again: it goes before the later
	// events' notifications once more.
	w.redrive(third, t0.Add(9*time.Second))
	ahead(fourth, third)
	fifth, _ := w.create("evt-5", "store:s1", t0.Add(10*time.Second))
	ahead(fifth, third)
	// The index holds the pending ones only: first (failed), third
	// (redriven), fourth, fifth and the other recipient's.
	if n, err := projections.PendingTo(st); err != nil || n != 5 {
		t.Fatalf("%d notifications indexed as pending (%v), want 5", n, err)
	}
}

// One recipient's notifications are queued in the order of the events that
// called for them (their source commits' sequences), not in the order they
// were recorded: with several instances recording, a later event's may be
// recorded first. One recorded without its source's sequence stands at its
// own creation's.
func TestPendingAheadFollowsTheSourcesOrder(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newNotifyWorld(t, st)
	for i := range 3 { // commits 1 to 3, the sources below
		w.create(fmt.Sprintf("evt-other-%d", i), "store:s2", t0)
	}
	later, _ := w.createFrom("evt-later", "store:s1", 3, t0)     // commit 4
	earlier, _ := w.createFrom("evt-earlier", "store:s1", 2, t0) // commit 5
	unknown, _ := w.create("evt-unknown", "store:s1", t0)        // commit 6
	for id, want := range map[domain.NotificationID]projections.NotificationQueue{
		earlier: {SourceSeq: 2},
		later:   {Ahead: string(earlier), Queued: 3, SourceSeq: 3},
		unknown: {Ahead: string(earlier), Queued: 5},
	} {
		if got, err := st.PendingAhead(string(id)); err != nil || got != want {
			t.Errorf("PendingAhead(%s) = %+v, %v; want %+v", id, got, err, want)
		}
	}
}
