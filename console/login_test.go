package console_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/console"
)

// Logins: an operator with its NKey seed and one with its password get the
// overview; a wrong secret and an unknown name get the same answer; an app
// identity with the right secret is refused by role; nobody reaches a page
// without a session.
func TestLogin(t *testing.T) {
	env := start(t, func(c *console.Config) { c.MaxFailures = 100 }) // every login here comes from one address

	anon := env.browser(t)
	anon.get("/console/").must(t, http.StatusOK, `data-testid="login-form"`)
	anon.get("/console/orphans").must(t, http.StatusOK, `data-testid="login-form"`)

	t.Run("operator with its seed", func(t *testing.T) {
		p := env.browser(t).loginOK(opsName, env.seeds[opsName])
		if !p.has(`data-testid="user-role">operator<`) || !p.has(`data-testid="health-part-bank-scanner"`) || !p.has("scan refused: 401") {
			t.Errorf("overview lacks the role or the health of every part:\n%s", p.body)
		}
	})
	t.Run("operator with its password", func(t *testing.T) {
		env.browser(t).loginOK(kimName, kimPassword)
	})
	t.Run("auditor", func(t *testing.T) {
		env.browser(t).loginOK(audreyName, env.seeds[audreyName]).must(t, http.StatusOK, `data-testid="user-role">auditor<`)
	})

	wrong := []struct{ name, user, secret string }{
		{"wrong password", kimName, "not-the-password"},
		{"another identity's seed", opsName, env.seeds[audreyName]},
		{"not a seed", opsName, "SUAnotaseed"},
		{"unknown name", "nobody", kimPassword},
		{"empty secret", kimName, ""},
	}
	var bodies []string
	for _, c := range wrong {
		t.Run(c.name, func(t *testing.T) {
			p := env.browser(t).login(c.user, c.secret).must(t, http.StatusUnauthorized, "Name or secret not accepted.")
			if p.has(`data-testid="user-name"`) {
				t.Error("a failed login shows a session")
			}
			bodies = append(bodies, p.field(t, errMsgRE))
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("failed logins are told different things: %q and %q", bodies[0], b)
		}
	}

	t.Run("app identity refused by role", func(t *testing.T) {
		env.browser(t).login(shopName, shopPass).must(t, http.StatusForbidden, "The app role cannot use the console")
		env.browser(t).login(feedName, env.seeds[feedName]).must(t, http.StatusForbidden, "The feed role cannot use the console")
		// With a wrong secret it is told nothing about the role.
		p := env.browser(t).login(shopName, "wrong").must(t, http.StatusUnauthorized, "Name or secret not accepted.")
		if strings.Contains(p.body, "app role") {
			t.Error("a wrong secret revealed the name's role")
		}
	})
	if n := env.console.Sessions(); n != 3 {
		t.Errorf("%d sessions open, want the 3 that logged in", n)
	}
}

// Failed logins are throttled: past MaxFailures for one name, even the
// right secret is refused until the window passes.
func TestLoginLockout(t *testing.T) {
	env := start(t, func(c *console.Config) { c.MaxFailures, c.LockoutWindow = 3, 10*time.Minute })
	b := env.browser(t)
	for range 3 {
		b.login(kimName, "guess").must(t, http.StatusUnauthorized)
	}
	b.login(kimName, kimPassword).must(t, http.StatusTooManyRequests, "Too many failed logins")
	// Another address would be refused for the name as well; another name
	// from this address too (the address has 3 failures).
	b.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)
	env.clock.Add(10*time.Minute + time.Second)
	b.loginOK(kimName, kimPassword)
}

// Failed logins for a name do not lock it out of a browser it already
// logged in from: that browser is throttled on its device cookie alone.
// The cookie is good only for its name, and only as the console made it.
// Whether it counts never depends on the secret sent: a stolen cookie gets
// MaxFailures guesses, answered as any login is, and is then spent: its
// logins are counted on the locked name, the right secret refused too.
func TestLoginLockoutSparesKnownBrowsers(t *testing.T) {
	env := start(t, func(c *console.Config) { c.MaxFailures, c.LockoutWindow = 3, 10*time.Minute })
	known, robbed, other := env.browser(t), env.browser(t), env.browser(t)
	known.loginOK(opsName, env.seeds[opsName])
	robbed.loginOK(opsName, env.seeds[opsName])
	other.loginOK(kimName, kimPassword)

	attacker := env.browser(t)
	for range 3 {
		attacker.login(opsName, "guess").must(t, http.StatusUnauthorized)
	}
	attacker.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests, "Too many failed logins")
	// Another name's cookie, or a made-up one, is no device.
	u, _ := url.Parse(env.srv.URL + "/console/")
	deviceOf := func(b *browser) *http.Cookie {
		t.Helper()
		for _, ck := range b.c.Jar.Cookies(u) {
			if ck.Name == "bb_console_device" {
				return &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/console/"}
			}
		}
		t.Fatal("no device cookie")
		return nil
	}
	attacker.c.Jar.SetCookies(u, []*http.Cookie{deviceOf(other)})
	attacker.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)
	forged := env.browser(t)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "bb_console_device", Value: "AAAA.AAAA", Path: "/console/"}})
	forged.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)

	// The known browser: a guess there is counted on its device, and its
	// secret logs in while the name and the address are locked.
	known.login(opsName, "guess").must(t, http.StatusUnauthorized)
	known.loginOK(opsName, env.seeds[opsName])
	known.loginOK(opsName, "\n"+env.seeds[opsName]+"\n") // a seed pasted with line breaks is the same secret

	// A cookie stolen from another known browser: its guesses are answered
	// as any login's, then it is spent, and the right secret is refused.
	thief := env.browser(t)
	thief.c.Jar.SetCookies(u, []*http.Cookie{deviceOf(robbed)})
	for range 3 {
		thief.login(opsName, "guess").must(t, http.StatusUnauthorized)
	}
	thief.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)
	robbed.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests) // the same cookie

	env.clock.Add(10*time.Minute + time.Second)
	attacker.loginOK(opsName, env.seeds[opsName])
	other.loginOK(kimName, kimPassword)
	robbed.loginOK(opsName, env.seeds[opsName])
	// Spent for good: once the name is locked again, the stolen cookie is
	// refused like any browser's.
	for range 3 {
		env.browser(t).login(opsName, "guess").must(t, http.StatusUnauthorized)
	}
	thief.login(opsName, env.seeds[opsName]).must(t, http.StatusTooManyRequests)
}

// A session ends after the idle timeout and after the absolute timeout
// however busy; its NATS connection is closed and the login page says why.
func TestSessionExpiry(t *testing.T) {
	env := start(t, func(c *console.Config) { c.IdleTimeout, c.AbsoluteTimeout = 30*time.Minute, time.Hour })

	idle := env.browser(t)
	idle.loginOK(opsName, env.seeds[opsName])
	env.clock.Add(29 * time.Minute)
	idle.get("/console/ledger").must(t, http.StatusOK, `data-testid="trial-balance"`)
	env.clock.Add(30 * time.Minute)
	idle.get("/console/ledger").must(t, http.StatusOK, `data-testid="session-expired"`, `data-testid="login-form"`)
	if n := env.console.Sessions(); n != 0 {
		t.Errorf("%d sessions after the idle timeout, want 0", n)
	}

	busy := env.browser(t)
	busy.loginOK(opsName, env.seeds[opsName])
	for _, step := range []time.Duration{20 * time.Minute, 20 * time.Minute, 19 * time.Minute} {
		env.clock.Add(step)
		busy.get("/console/ledger").must(t, http.StatusOK, `data-testid="trial-balance"`)
	}
	env.clock.Add(2 * time.Minute) // 61 minutes after login, 2 after its last request
	busy.get("/console/ledger").must(t, http.StatusOK, `data-testid="session-expired"`)
}

// Logging out ends the session and its connection; the cookie no longer works.
func TestLogout(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	p := b.loginOK(opsName, env.seeds[opsName])
	csrf := p.field(t, csrfRE)
	b.post("/console/logout", url.Values{}).must(t, http.StatusForbidden, `data-testid="error-code">csrf<`)
	if env.console.Sessions() != 1 {
		t.Fatal("a logout without the CSRF token ended the session")
	}
	b.post("/console/logout", url.Values{"csrf": {csrf}}).must(t, http.StatusOK, `data-testid="login-form"`)
	if n := env.console.Sessions(); n != 0 {
		t.Errorf("%d sessions after logout", n)
	}
	b.get("/console/").must(t, http.StatusOK, `data-testid="login-form"`)
}

// The login form needs its own token: a login posted from elsewhere is refused.
func TestLoginWithoutFormToken(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	b.post("/console/login", url.Values{"name": {kimName}, "secret": {kimPassword}}).must(t, http.StatusForbidden, "stale or did not come from the console")
	if env.console.Sessions() != 0 {
		t.Error("a login without the form token opened a session")
	}
}

// Every response carries the security headers; the session cookie is
// HttpOnly, SameSite=Strict and scoped to the console.
func TestSecurityHeadersAndCookie(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	lp := b.get("/console/login")
	resp, err := http.PostForm(env.srv.URL+"/console/login", url.Values{"csrf": {lp.field(t, csrfRE)}, "name": {kimName}, "secret": {kimPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// (no login cookie in this client: refused, but the headers are there)
	for _, p := range []page{lp, b.loginOK(kimName, kimPassword), b.get("/console/orphans"), b.get("/console/nope"), {header: resp.Header, url: "login POST"}} {
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", p.url, h, got, want)
			}
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: Content-Security-Policy %q", p.url, csp)
		}
		if strings.Contains(p.body, "<script") {
			t.Errorf("%s: the page carries a script", p.url)
		}
	}
	b.get("/console/nope").must(t, http.StatusNotFound)

	// The cookie's attributes, as the login sets them.
	lp2 := b.get("/console/login")
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/console/login", strings.NewReader(url.Values{"csrf": {lp2.field(t, csrfRE)}, "name": {kimName}, "secret": {kimPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range b.c.Jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, ck := range resp.Cookies() {
		if ck.Name != "bb_console" {
			continue
		}
		found = true
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || len(ck.Value) < 43 {
			t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, 32 random bytes", ck)
		}
	}
	if !found || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login answered %d without a session cookie", resp.StatusCode)
	}

	css := b.get("/console/static/console.css").must(t, http.StatusOK, "svg.chart")
	if !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet Content-Type %q", css.header.Get("Content-Type"))
	}
}

// A form over its size limit is refused as too large, whatever else it
// holds (a valid CSRF token here), and does nothing.
func TestFormsOverTheirLimitAreRefusedAsTooLarge(t *testing.T) {
	env := start(t, nil)
	b := env.browser(t)
	p := b.loginOK(opsName, env.seeds[opsName])
	csrf := p.field(t, csrfRE)
	b.post("/console/logout", url.Values{"csrf": {csrf}, "pad": {strings.Repeat("a", 70<<10)}}).
		must(t, http.StatusRequestEntityTooLarge, `data-testid="error-code">form_too_large<`, "larger than 64 KiB")
	if n := env.console.Sessions(); n != 1 {
		t.Fatalf("%d sessions after a logout form over the limit, want the session kept", n)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", csrf)
	_ = mw.WriteField("pad", strings.Repeat("a", 70<<10))
	_ = mw.Close()
	payload := body.Bytes()
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/console/logout", bytes.NewReader(payload))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	b.do(req).must(t, http.StatusRequestEntityTooLarge, `data-testid="error-code">form_too_large<`)
	if n := env.console.Sessions(); n != 1 {
		t.Fatalf("%d sessions after a multipart logout form over the limit, want the session kept", n)
	}
	// Also behind a query string the form parser refuses.
	req, _ = http.NewRequest(http.MethodPost, env.srv.URL+"/console/logout?a=%zz", bytes.NewReader(payload))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	b.do(req).must(t, http.StatusRequestEntityTooLarge, `data-testid="error-code">form_too_large<`)

	other := env.browser(t)
	lp := other.get("/console/login")
	other.post("/console/login", url.Values{"csrf": {lp.field(t, csrfRE)}, "name": {opsName}, "secret": {env.seeds[opsName]}, "pad": {strings.Repeat("a", 17<<10)}}).
		must(t, http.StatusRequestEntityTooLarge, "larger than 16 KiB")
	if n := env.console.Sessions(); n != 1 {
		t.Fatalf("%d sessions after a login form over the limit, want no new one", n)
	}
}
