package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/console"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Wrong logins sent in parallel are throttled like wrong logins sent one
// after another: no more than MaxFailures of them get their secret
// checked, however many arrive at once.
func TestParallelWrongLoginsAreThrottled(t *testing.T) {
	const max, tries = 3, 24
	env := start(t, func(c *console.Config) { c.MaxFailures, c.LockoutWindow = max, 10*time.Minute })
	type attempt struct {
		b     *browser
		token string
	}
	var as []attempt
	for range tries {
		b := env.browser(t)
		as = append(as, attempt{b, b.get("/console/login").field(t, csrfRE)})
	}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		ready    = make(chan struct{})
	)
	for i, a := range as {
		wg.Go(func() {
			<-ready
			// A wrong password: the NATS server checks it (bcrypt), which
			// leaves time for the others to arrive meanwhile.
			p := a.b.post("/console/login", url.Values{"csrf": {a.token}, "name": {kimName}, "secret": {"guess-" + string(rune('a'+i))}})
			mu.Lock()
			statuses[p.status]++
			mu.Unlock()
		})
	}
	close(ready)
	wg.Wait()
	if statuses[http.StatusUnauthorized] > max || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != tries {
		t.Errorf("answers %v: want at most %d secrets checked (401) and the rest refused (429)", statuses, max)
	}
	env.browser(t).login(kimName, kimPassword).must(t, http.StatusTooManyRequests)
}

// A password is taken exactly as typed: spaces at its ends are part of it.
func TestPasswordIsNotTrimmed(t *testing.T) {
	env := start(t, nil)
	env.browser(t).login(spaceyName, strings.TrimSpace(spaceyPass)).must(t, http.StatusUnauthorized)
	env.browser(t).loginOK(spaceyName, spaceyPass)
	// A seed pasted with a line break still works.
	env.browser(t).loginOK(opsName, env.seeds[opsName]+"\n")
}

// A session nobody uses again (a closed tab) is ended when it times out,
// without waiting for its cookie to come back (its NATS connection is
// closed with it).
func TestIdleSessionEndsWithoutARequest(t *testing.T) {
	env := start(t, func(c *console.Config) { c.Now, c.IdleTimeout = time.Now, 2*time.Second })
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	if n := env.console.Sessions(); n != 1 {
		t.Fatalf("%d sessions after a login", n)
	}
	testenv.CheckFor(t, 15*time.Second, func() error {
		if env.console.Sessions() != 0 {
			return errNotYet
		}
		return nil
	})
	// The cookie, when it comes back, is told the session ended.
	b.get("/console/").must(t, http.StatusOK, `data-testid="session-expired"`)
}

// Logging in again from the same browser ends the session it had.
func TestLoginAgainEndsTheOldSession(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	b.loginOK(kimName, kimPassword)
	if n := env.console.Sessions(); n != 1 {
		t.Errorf("%d sessions after two logins in one browser, want 1", n)
	}
}

// Sessions are bounded: an identity's new login beyond its limit ends its
// oldest session; past the console's limit, logins are refused.
func TestSessionsAreBounded(t *testing.T) {
	env := start(t, func(c *console.Config) { c.MaxSessions, c.MaxSessionsPerIdentity = 3, 2 })
	first := env.browser(t)
	first.loginOK(opsName, env.seeds[opsName])
	env.clock.Add(time.Second)
	second := env.browser(t)
	second.loginOK(opsName, env.seeds[opsName])
	env.clock.Add(time.Second)
	env.browser(t).loginOK(opsName, env.seeds[opsName])
	if n := env.console.Sessions(); n != 2 {
		t.Errorf("%d sessions of one identity, want its limit of 2", n)
	}
	first.get("/console/").must(t, http.StatusOK, `data-testid="login-form"`)
	second.get("/console/").must(t, http.StatusOK, `data-testid="counts"`)

	env.browser(t).loginOK(kimName, kimPassword)
	env.browser(t).login(audreyName, env.seeds[audreyName]).must(t, http.StatusServiceUnavailable, "too many open sessions")
	if n := env.console.Sessions(); n != 3 {
		t.Errorf("%d sessions, want the console's limit of 3", n)
	}
}

// A closed console starts no more sessions (their connections would never
// be closed).
func TestNoLoginAfterClose(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	lp := b.get("/console/login")
	if err := env.console.Close(); err != nil {
		t.Fatal(err)
	}
	b.post("/console/login", url.Values{"csrf": {lp.field(t, csrfRE)}, "name": {opsName}, "secret": {env.seeds[opsName]}}).
		must(t, http.StatusServiceUnavailable)
	if n := env.console.Sessions(); n != 0 {
		t.Errorf("%d sessions after Close", n)
	}
}

// The static files are served, their directory is not listed.
func TestStaticDirectoryIsNotListed(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	for _, path := range []string{"/console/static/", "/console/static"} {
		if p := b.get(path); p.status == http.StatusOK || p.has("console.css") {
			t.Errorf("%s: %d\n%s", path, p.status, p.body)
		}
	}
	b.get("/console/static/console.css").must(t, http.StatusOK)
}

// When the engine cannot answer, the page says so without the client's
// error text (NATS subjects, connection internals).
func TestEngineFailureShowsNoInternals(t *testing.T) {
	env := start(t, func(c *console.Config) { c.RequestTimeout = 500 * time.Millisecond })
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	if err := env.e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := b.get("/console/orphans")
	if p.status < 500 || !p.has(`data-testid="error-code"`) {
		t.Fatalf("orphans with the engine stopped: %d\n%s", p.status, p.body)
	}
	for _, leak := range []string{"bankbook.", "nats:", "context deadline", "127.0.0.1"} {
		if p.has(leak) {
			t.Errorf("the error page shows %q:\n%s", leak, p.body)
		}
	}
}

// A redrive form without its Idempotency-Key is refused, not sent without
// one.
func TestRedriveWithoutKeyIsNotSent(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	csrf := b.loginOK(opsName, env.seeds[opsName]).field(t, csrfRE)
	b.post("/console/notifications/n-none/redrive", url.Values{"csrf": {csrf}}).
		must(t, http.StatusBadRequest, `data-testid="error-code">invalid_idempotency_key<`)
}

// A request naming a host the console does not know is refused: a web page
// that rebinds its DNS name to the console's address cannot use it.
func TestUnknownHostIsRefused(t *testing.T) {
	env := start(t, func(c *console.Config) { c.AllowedHosts = []string{"console.example.com"} })
	for host, want := range map[string]int{
		"evil.example":             http.StatusMisdirectedRequest,
		"evil.example:80":          http.StatusMisdirectedRequest,
		"localhost:8080":           http.StatusOK,
		"127.0.0.1":                http.StatusOK,
		"[::1]:8080":               http.StatusOK,
		"Console.Example.com:443":  http.StatusOK,
		"console.example.com.evil": http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/console/login", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// SecureCookies marks the cookies Secure on plain HTTP (behind a
// TLS-terminating proxy).
func TestSecureCookies(t *testing.T) {
	env := start(t, func(c *console.Config) { c.SecureCookies = true })
	resp, err := http.Get(env.srv.URL + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cks := resp.Cookies()
	if len(cks) == 0 {
		t.Fatal("no login cookie")
	}
	for _, ck := range cks {
		if !ck.Secure {
			t.Errorf("cookie %s is not Secure", ck.Name)
		}
	}
	for h, want := range map[string]string{"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

// Text that comes from events (a depositor name, a bank transaction id) is
// shown as text in every context it lands in: element content, attributes,
// the confirmation's hidden fields and links.
func TestHostileEventTextIsEscaped(t *testing.T) {
	env := start(t, nil)
	const name = `<svg onload=alert(1)>김"x'`
	dep := env.recordDeposit(t, `T1"><img/src=x>`, name, 4321)
	env.waitOrphans(t, 1)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	pages := []page{
		b.get("/console/orphans").must(t, http.StatusOK, `data-testid="orphan-row"`),
		b.get("/console/orphans/"+dep.DepositID+"/resolve?action=refund_to_bank&bank=%3Cb%3E%22%3E&number=1234-56&holder=%27%3Cx%3E").
			must(t, http.StatusOK, `data-testid="resolve-form"`),
		b.get("/console/orders?depositor_name="+url.QueryEscape(name)).must(t, http.StatusOK),
	}
	for _, p := range pages {
		for _, raw := range []string{"<svg", "<img", "<b>", "<x>"} {
			if p.has(raw) {
				t.Errorf("%s carries %q unescaped", p.url, raw)
			}
		}
	}
}

// A password made long by its JSON escapes ("<" is six bytes in the NATS
// client's first message) is a wrong secret like any other: answered 401
// after the delay and counted towards the lockout, not taken for an engine
// that cannot be reached.
func TestEscapedLongPasswordIsAWrongSecret(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	secret := strings.Repeat("<", 1000)
	for range 5 { // the default MaxFailures
		b.login(kimName, secret).must(t, http.StatusUnauthorized, "Name or secret not accepted.")
	}
	b.login(kimName, kimPassword).must(t, http.StatusTooManyRequests)
}

// What anyone who reaches the listener can make the console refuse is
// logged clipped and sampled, so that refusals cannot fill the disk; a
// password typed into the name field is not logged.
func TestRefusalsCannotFloodTheLog(t *testing.T) {
	var logs testenv.SyncBuffer
	env := start(t, func(c *console.Config) { c.Log = zerolog.New(&logs) })
	// Before the flood, whose refusals use up the log's burst.
	env.browser(t).login(kimPassword, kimPassword).must(t, http.StatusUnauthorized)
	if !strings.Contains(logs.String(), "console: login failed") || strings.Contains(logs.String(), kimPassword) {
		t.Fatalf("a failed login with a password typed as the name: %s", logs.String())
	}
	host := "evil" + strings.Repeat("a", 100_000) + ".example"
	began := time.Now()
	for range 300 {
		req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/console/login", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("an unknown host: %d", resp.StatusCode)
		}
	}
	took := time.Since(began)
	out := logs.String()
	// The first 20 of each second, then one in a thousand.
	if n, most := strings.Count(out, "unknown host name refused"), 20*(int(took/time.Second)+2)+1; n == 0 || n > most {
		t.Errorf("%d lines for 300 refusals in %v, want 1 to %d", n, took, most)
	}
	// Failed logins keep their own share of the log.
	env.browser(t).login(kimName, "wrong").must(t, http.StatusUnauthorized)
	if !strings.Contains(logs.String(), `"user":"kim"`) {
		t.Errorf("a failed login during a flood of refusals is not logged")
	}
	if len(out) > 300*300 {
		t.Errorf("300 refusals of a 100 kB Host wrote %d bytes of log", len(out))
	}
}

// A stolen device cookie gives MaxFailures guesses, whatever way its text
// is written: the last character of its MAC (43 base64 characters for 32
// bytes) carries two bits nobody reads, and each of the four spellings
// must not count as a device of its own with a fresh budget of guesses.
func TestDeviceCookieSpellingsShareOneBudget(t *testing.T) {
	env := start(t, func(c *console.Config) { c.MaxFailures, c.LockoutWindow = 3, 10*time.Minute })
	robbed := env.browser(t)
	robbed.loginOK(opsName, env.seeds[opsName])
	// The name is locked out of new browsers.
	attacker := env.browser(t)
	for range 3 {
		attacker.login(opsName, "guess").must(t, http.StatusUnauthorized)
	}
	attacker.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)

	u, _ := url.Parse(env.srv.URL + "/console/")
	var stolen string
	for _, ck := range robbed.c.Jar.Cookies(u) {
		if ck.Name == "bb_console_device" {
			stolen = ck.Value
		}
	}
	if stolen == "" {
		t.Fatal("no device cookie")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, stolen[len(stolen)-1])
	guesses := 0
	for v := range 4 {
		spelling := stolen[:len(stolen)-1] + string(alphabet[last&^3|v])
		thief := env.browser(t)
		thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: "bb_console_device", Value: spelling, Path: "/console/"}})
		for range 3 {
			if p := thief.login(opsName, "guess"); p.status == http.StatusUnauthorized {
				guesses++
			} else if p.status != http.StatusTooManyRequests {
				t.Fatalf("status %d", p.status)
			}
		}
	}
	if guesses > 3 {
		t.Errorf("one stolen device cookie had %d secrets checked while its name was locked out, want at most MaxFailures (3)", guesses)
	}
}

// A stolen device cookie whose guesses are spread out is spent all the
// same: docs/console.md "a stolen cookie ... gives at most 5 guesses
// beyond the name's lockout", not MaxFailures-1 in every window forever.
func TestDeviceCookieGuessesSpreadOverWindowsAreSpent(t *testing.T) {
	env := start(t, func(c *console.Config) { c.MaxFailures, c.LockoutWindow = 3, 10*time.Minute })
	robbed := env.browser(t)
	robbed.loginOK(opsName, env.seeds[opsName])
	u, _ := url.Parse(env.srv.URL + "/console/")
	thief := env.browser(t)
	for _, ck := range robbed.c.Jar.Cookies(u) {
		if ck.Name == "bb_console_device" {
			thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/console/"}})
		}
	}
	guesses := 0
	for range 4 {
		// The name is locked out of new browsers throughout.
		attacker := env.browser(t)
		for range 3 {
			attacker.login(opsName, "guess").must(t, http.StatusUnauthorized)
		}
		attacker.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)
		for range 2 {
			if thief.login(opsName, "guess").status == http.StatusUnauthorized {
				guesses++
			}
		}
		env.clock.Add(10*time.Minute + time.Second)
	}
	if guesses > 3 {
		t.Errorf("one stolen device cookie had %d secrets checked while its name was locked out, want at most MaxFailures (3)", guesses)
	}
}
