package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/ops"
)

// newTestConsole is a console whose engine is never reached: logins with
// an unknown name or a wrong seed are refused before any connection.
func newTestConsole(t *testing.T, maxFailures int) *Console {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	c, err := New(Config{URL: "nats://127.0.0.1:1", Identities: []auth.Identity{{Name: "ops", Role: auth.Operator, NKey: pub}},
		Readiness:   ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { return nil, nil }),
		MaxFailures: maxFailures, FailureDelay: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// postLogin posts a login form from addr and returns the status.
func postLogin(c *Console, addr, name, secret string) int {
	form := url.Values{"csrf": {"tok"}, "name": {name}, "secret": {secret}}
	r := httptest.NewRequest(http.MethodPost, Prefix+"login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: loginCookie, Value: "tok"})
	r.Host, r.RemoteAddr = "127.0.0.1:8080", addr+":40000"
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	return w.Code
}

// A scan of names (each up to the form's size) cannot fill the throttle's
// memory: it holds at most its bound of keys, each of a fixed size.
func TestNameScanDoesNotFillTheThrottle(t *testing.T) {
	c := newTestConsole(t, 1000)
	c.throttle.maxKeys = 50
	for i := range 200 {
		if code := postLogin(c, "192.0.2.1", strings.Repeat("x", 1000)+strconv.Itoa(i), "guess"); code != http.StatusUnauthorized {
			t.Fatalf("login %d: %d, want 401", i, code)
		}
	}
	if n := c.throttle.keys(); n > 50 {
		t.Errorf("the throttle holds %d keys after 200 names, want at most its bound of 50", n)
	}
	c.throttle.mu.Lock()
	for k := range c.throttle.failures {
		if len(k) > 80 {
			t.Errorf("a throttle key of %d bytes", len(k))
		}
	}
	c.throttle.mu.Unlock()
}

// An unknown name is locked out like a known one: the lockout does not
// tell which names exist.
func TestUnknownNameLockedOutLikeAKnownOne(t *testing.T) {
	c := newTestConsole(t, 2)
	for _, name := range []string{"ops", "ghost"} {
		for i, addr := range []string{"192.0.2.1", "192.0.2.2"} {
			if code := postLogin(c, addr, name, "SUguess"); code != http.StatusUnauthorized {
				t.Fatalf("%s, attempt %d: %d, want 401", name, i, code)
			}
		}
	}
	for _, name := range []string{"ops", "ghost"} {
		if code := postLogin(c, "192.0.2.9", name, "SUguess"); code != http.StatusTooManyRequests {
			t.Errorf("%s after 2 failures: %d, want 429", name, code)
		}
	}
}

// Keys past the bound are forgotten fewest attempts first: a key being
// attacked in earnest outlives a flood of one-attempt keys.
func TestThrottleBoundKeepsBusyKeys(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(5, 10*time.Minute, func() time.Time { return now })
	th.maxKeys = 10
	for range 4 {
		th.begin("name:target")
	}
	for i := range 100 {
		th.begin("name:" + strconv.Itoa(i))
	}
	if th.keys() > 10 {
		t.Errorf("%d keys, want at most 10", th.keys())
	}
	th.begin("name:target")
	if th.lockedFor("name:target") == 0 {
		t.Error("the flood made the throttle forget the attacked key")
	}
}

// An attempt is counted when it begins; forgiving it takes back only it.
func TestThrottleBeginForgive(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(2, 10*time.Minute, func() time.Time { return now })
	a, wait := th.begin("name:a", "ip:1")
	if wait != 0 {
		t.Fatal("locked before any attempt")
	}
	now = now.Add(time.Second)
	if _, wait := th.begin("name:a", "ip:1"); wait != 0 {
		t.Fatal("locked after one attempt")
	}
	if _, wait := th.begin("name:a", "ip:1"); wait == 0 {
		t.Fatal("a third attempt began while two are counted")
	}
	th.forgive(a, "name:a", "ip:1")
	if _, wait := th.begin("name:a", "ip:1"); wait != 0 {
		t.Fatal("a forgiven attempt still counts")
	}
}

// A dead letter's redrive sent while one for the same letter is running
// (a double click) is refused, not handed to its part a second time.
func TestConcurrentDeadLetterRedriveRefused(t *testing.T) {
	c := newTestConsole(t, 5)
	cookie, s, err := c.sessions.add("ops", auth.Operator, &client.Client{}) // never asked: no connection
	if err != nil {
		t.Fatal(err)
	}
	if !c.redriving.begin(7) {
		t.Fatal("begin")
	}
	form := url.Values{"csrf": {s.csrf}}
	r := httptest.NewRequest(http.MethodPost, Prefix+"deadletters/7/redrive", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	r.Host = "127.0.0.1:8080"
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `data-testid="error-code">in_progress<`) {
		t.Errorf("a redrive while one runs: %d\n%s", w.Code, w.Body.String())
	}
	c.redriving.end(7)
	if !c.redriving.begin(7) {
		t.Error("the letter stays in flight after its redrive ended")
	}
}

// An attempt counts against the name and the address until it is forgiven
// (the secret was right); at the limit both are locked until the oldest
// attempt leaves the window, and a success forgets the name, not the
// address.
func TestThrottle(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(2, 10*time.Minute, func() time.Time { return now })
	if _, wait := th.begin("name:a", "ip:1"); wait != 0 {
		t.Fatal("locked before any attempt")
	}
	if th.lockedFor("name:a") != 0 {
		t.Fatal("locked after one attempt")
	}
	now = now.Add(time.Minute)
	at, _ := th.begin("name:a", "ip:1")
	if got := th.lockedFor("name:b", "ip:1"); got != 9*time.Minute {
		t.Errorf("locked for %v, want 9m (until the first attempt leaves the window)", got)
	}
	if _, wait := th.begin("name:a", "ip:2"); wait != 9*time.Minute {
		t.Errorf("a third attempt for the name waits %v, want 9m", wait)
	}
	th.forgive(at, "ip:1")
	if th.lockedFor("ip:1") != 0 {
		t.Error("a forgiven attempt still counts against the address")
	}
	th.succeed("name:a")
	if th.lockedFor("name:a") != 0 {
		t.Error("success should forget the name")
	}
	now = now.Add(9 * time.Minute)
	if th.lockedFor("name:b", "ip:1") != 0 {
		t.Error("still locked after the window")
	}
}
