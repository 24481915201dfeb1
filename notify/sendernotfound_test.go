package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/notify"
	"github.com/bankbook/bankbook/worker"
)

// TestMissingSenderUserIsNotAnEndlessChannelCreation: Sendbird answers a
// message sent as a user that does not exist (the sender deleted in the
// dashboard) 400 with code 400201, `"User" not found.`, the code of a
// missing channel. The channel exists, so creating it answers 400202. The
// notification must not be sent, "channel created", sent again forever,
// uncounted, at two requests a round of the shared limit: it is counted
// and ends dead, for an operator to see.
func TestMissingSenderUserIsNotAnEndlessChannelCreation(t *testing.T) {
	w := newDispatchWorld(t)
	var posts atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages"):
			posts.Add(1)
			rw.WriteHeader(http.StatusBadRequest)
			_, _ = rw.Write([]byte(`{"message":"\"User\" not found.","code":400201,"error":true}`))
		case r.Method == http.MethodPost && r.URL.Path == "/v3/group_channels":
			rw.WriteHeader(http.StatusBadRequest)
			_, _ = rw.Write([]byte(`{"message":"\"channel_url\" violates a unique constraint.","code":400202,"error":true}`))
		default:
			rw.WriteHeader(http.StatusNotFound)
		}
	}))
	n := quickNotifier(t, w, ts.URL)
	id, c := w.pending(t, "store:s-nouser")
	waits, last := dispatchWaiting(t, n, c, 30)
	note, err := w.notes.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d waits (last %v): %d send requests, notification %+v", waits, last, posts.Load(), note)
	if note.Status != domain.NotificationStatusDead {
		t.Fatalf("notification %s after %d rounds and %d send requests, %d counted attempts; want dead after %d counted attempts (last error %q)",
			note.Status, waits, posts.Load(), note.AttemptsSinceRedrive, 3, note.LastError)
	}
}

// TestMissingChannelIsCreatedAndSentUncounted: a channel that does not
// exist yet is created, and the message sent in the next round, nothing
// counted against it.
func TestMissingChannelIsCreatedAndSentUncounted(t *testing.T) {
	w := newDispatchWorld(t)
	sim, err := chat.NewSim(chat.SimConfig{Rate: 100, Token: "sim", RequireChannels: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	provider, err := chat.NewSendbird(chat.SendbirdConfig{URL: ts.URL, Token: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Config{Codec: domain.Events(), Notifications: w.notes, Provider: provider, Limiter: w.limiter(t), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	id, c := w.pending(t, "store_new")
	waits, last := dispatchWaiting(t, n, c, 5)
	note, err := w.notes.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if last != nil || waits != 1 || note.Status != domain.NotificationStatusSent || note.AttemptsSinceRedrive != 1 || len(sim.Messages("store_new")) != 1 {
		t.Fatalf("dispatch %v after %d waits; notification %+v, %d message(s); want sent once after one wait, one attempt counted",
			last, waits, note, len(sim.Messages("store_new")))
	}
}

// TestARedrivenNotificationCreatesItsChannelUncounted: a notification dead
// after "channel created" twice in a row (the sender was missing) and
// redriven once the sender is back finds its channel gone: that first
// creation is the redriven notification's own, not the second in a row of
// the attempts before the redrive, so it is not counted.
func TestARedrivenNotificationCreatesItsChannelUncounted(t *testing.T) {
	w := newDispatchWorld(t)
	var (
		fixed   atomic.Bool // the sender user exists again
		channel atomic.Bool // the recipient's channel exists
	)
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages"):
			if !fixed.Load() || !channel.Load() {
				rw.WriteHeader(http.StatusBadRequest)
				_, _ = rw.Write([]byte(`{"message":"\"User\" not found.","code":400201,"error":true}`))
				return
			}
			_, _ = rw.Write([]byte(`{"message_id":42}`))
		case r.Method == http.MethodPost && r.URL.Path == "/v3/group_channels":
			if channel.Load() || !fixed.Load() {
				rw.WriteHeader(http.StatusBadRequest)
				_, _ = rw.Write([]byte(`{"message":"\"channel_url\" violates a unique constraint.","code":400202,"error":true}`))
				return
			}
			channel.Store(true)
			_, _ = rw.Write([]byte(`{"channel_url":"store:s-back"}`))
		default:
			rw.WriteHeader(http.StatusNotFound)
		}
	}))
	n := quickNotifier(t, w, ts.URL)
	id, c := w.pending(t, "store:s-back")
	dispatchWaiting(t, n, c, 30)
	get := func() domain.Notification { t.Helper(); return w.get(t, id) }
	if note := get(); note.Status != domain.NotificationStatusDead || !strings.Contains(note.LastError, "channel") {
		t.Fatalf("before the redrive: %+v, want dead after channels created in a row", note)
	}

	fixed.Store(true)
	waits, last := dispatchWaiting(t, n, w.redrive(t, id, "sender user restored"), 10)
	if note := get(); last != nil || note.Status != domain.NotificationStatusSent || note.AttemptsSinceRedrive != 1 {
		t.Fatalf("after the redrive: dispatch %v after %d waits, notification %+v; want sent with one attempt counted (the channel's creation not)",
			last, waits, note)
	}
}

// quickNotifier is a dispatcher sending to the Sendbird-compatible
// provider at url, with three attempts and short waits (10–40 ms backoff).
// Its attempt's lease is a second: with 100 ms, a loaded machine let it
// run out between recording the attempt and the send, which left the
// attempt in doubt and the notification dead for a check these providers
// cannot answer.
func quickNotifier(t *testing.T, w *dispatchWorld, url string) *notify.Notifier {
	t.Helper()
	provider, err := chat.NewSendbird(chat.SendbirdConfig{URL: url, Token: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	return quickNotifierOf(t, w, provider)
}

// quickNotifierOf is quickNotifier with another provider.
func quickNotifierOf(t *testing.T, w *dispatchWorld, provider chat.Provider) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{
		Codec: domain.Events(), Notifications: w.notes, Provider: provider, Limiter: w.limiter(t), Log: zerolog.Nop(),
		MaxAttempts: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		MaxSlotWait: 50 * time.Millisecond, AttemptLease: time.Second, SendTimeout: time.Second, ClockSkew: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAWrongProviderURLIsRetriedNotDead: a --chat-url with a wrong path
// answers 404 or 405 with no provider error code. That is the deployment's
// fault, not the message's: the notification fails, counted, and waits for
// its retry; it is not dead at once, so fixing the URL needs no redrive.
func TestAWrongProviderURLIsRetriedNotDead(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			w := newDispatchWorld(t)
			ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", "text/html")
				rw.WriteHeader(status)
				_, _ = rw.Write([]byte("<html>not here</html>"))
			}))
			t.Cleanup(ts.Close)
			n := quickNotifier(t, w, ts.URL)
			id, c := w.pending(t, "store:s-wrong-url")
			err := n.Dispatch(context.Background(), c)
			if ra, ok := errors.AsType[*worker.RetryAfterError](err); !ok || ra.Err != nil {
				t.Fatalf("a send to a wrong URL: %v, want a wait until its retry", err)
			}
			note, err := w.notes.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if note.Status != domain.NotificationStatusPending || note.AttemptsSinceRedrive != 1 {
				t.Fatalf("after a %d without a provider code: %s with %d counted attempts, want pending with 1 (last error %q)", status, note.Status, note.AttemptsSinceRedrive, note.LastError)
			}
		})
	}
}

// TestARedirectingProviderURLIsRetriedNotSent: a --notify-webhook-url (or
// --chat-url) that answers with a redirect, an http:// URL the receiver
// moved to https:// say, has not taken the message. Followed, the POST
// became a GET without the message, and the receiver's 200 to that GET
// recorded the notification sent: it never arrived. Like a wrong path, it
// is the deployment's fault: the notification fails, counted, and waits
// for its retry, so fixing the URL needs no redrive.
func TestARedirectingProviderURLIsRetriedNotSent(t *testing.T) {
	w := newDispatchWorld(t)
	var posts, moved atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hook/") {
			moved.Add(1)
			_, _ = rw.Write([]byte("ok"))
			return
		}
		posts.Add(1)
		http.Redirect(rw, r, "/hook/", http.StatusMovedPermanently)
	}))
	t.Cleanup(ts.Close)
	provider, err := chat.NewWebhook(chat.WebhookConfig{URL: ts.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	n := quickNotifierOf(t, w, provider)
	id, c := w.pending(t, "store:s-moved")
	err = n.Dispatch(context.Background(), c)
	note := w.get(t, id)
	if ra, ok := errors.AsType[*worker.RetryAfterError](err); !ok || ra.Err != nil {
		t.Fatalf("a send to a redirecting URL: %v (notification %s, last error %q), want a wait until its retry", err, note.Status, note.LastError)
	}
	if note.Status != domain.NotificationStatusPending || note.AttemptsSinceRedrive != 1 || !strings.Contains(note.LastError, "301") {
		t.Fatalf("after a 301: %s with %d counted attempts (last error %q), want pending with 1, the 301 its last error", note.Status, note.AttemptsSinceRedrive, note.LastError)
	}
	if posts.Load() != 1 || moved.Load() != 0 {
		t.Fatalf("%d request(s) to the URL, %d to where it redirects; want 1 and 0", posts.Load(), moved.Load())
	}
}
