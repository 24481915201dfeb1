package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
)

// loginView is the login page's data.
type loginView struct {
	Name    string
	Token   string // the login form's CSRF token
	Expired bool
	Message string
}

// loginPage shows the login form with a fresh login CSRF token (a cookie
// and the same value in the form: a cross-site page can set neither).
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, r, http.StatusOK, loginView{Expired: r.URL.Query().Get("expired") == "1"})
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, lv loginView) {
	lv.Token = randomToken(32)
	c.setCookie(w, r, loginCookie, lv.Token, 3600)
	var ev *errView
	if lv.Message != "" {
		ev = &errView{Status: status, Code: "login_refused", Message: lv.Message}
	}
	c.render(w, r, nil, status, "login", view{Title: "Log in", Err: ev, Data: lv})
}

// badCredentials is what every wrong name or secret is told: the same
// words whatever was wrong.
const badCredentials = "Name or secret not accepted."

// login checks the name and secret, opens the session's NATS connection
// with them, and starts the session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	if formTooLarge(w, r, maxLoginForm) {
		c.showLogin(w, r, http.StatusRequestEntityTooLarge, loginView{Message: fmt.Sprintf("This login form is larger than %d KiB.", maxLoginForm>>10)})
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	// What the logs say: a known name, never what else was typed there (a
	// password or seed pasted into the name field).
	logName := "(unknown name)"
	if _, ok := c.byName[name]; ok {
		logName = name
	}
	secret := r.PostFormValue("secret")
	ck, err := r.Cookie(loginCookie)
	if err != nil || !validCSRF(ck.Value, r.PostFormValue("csrf")) {
		c.refusals.Warn().Str("remote", clientIP(r)).Msg("console: login without a valid form token refused")
		c.showLogin(w, r, http.StatusForbidden, loginView{Name: name, Message: "This login form is stale or did not come from the console. Try again."})
		return
	}
	ip := clientIP(r)
	// Attempts are counted per client address and per name, known or not
	// (a lockout that only known names reach would tell which names
	// exist). The name is kept as its hash, so its length costs nothing;
	// the throttle bounds how many keys it holds. A browser the name
	// already logged in from is counted on its device cookie alone, so
	// that failures from elsewhere do not lock the name out of it; a
	// device locked out is spent (device.go).
	keys := []string{"ip:" + ip, nameKey(name)}
	device := c.device(r, name)
	if device != "" {
		keys = []string{device}
	}
	// who is the key a success clears: the name's, or the device's.
	who := keys[len(keys)-1]
	// The attempt is counted now, before the secret is checked, so that
	// logins sent in parallel cannot all pass the lockout check first.
	attempt, wait := c.throttle.begin(keys...)
	if device != "" && c.throttle.lockedFor(device) > 0 {
		c.spend(device)
	}
	if wait > 0 {
		c.logins.Warn().Str("user", logName).Str("remote", ip).Msg("console: login refused: too many failures")
		c.showLogin(w, r, http.StatusTooManyRequests, loginView{Name: name,
			Message: fmt.Sprintf("Too many failed logins for this name, address or browser; try again in %s.", wait.Round(time.Second))})
		return
	}
	role, cl, err := c.authenticate(name, secret)
	switch {
	case errors.Is(err, ErrRoleRefused):
		c.throttle.forgive(attempt, keys...) // the secret was right
		c.throttle.succeed(who)
		c.untry(device)
		c.cfg.Log.Warn().Str("user", logName).Str("role", string(role)).Str("remote", ip).Msg("console: login refused: role may not use the console")
		c.showLogin(w, r, http.StatusForbidden, loginView{Name: name,
			Message: fmt.Sprintf("The %s role cannot use the console: only operator and auditor identities may log in.", role)})
		return
	case err != nil && !errors.Is(err, ErrBadCredentials):
		c.throttle.forgive(attempt, keys...) // not the secret's fault
		c.untry(device)
		c.cfg.Log.Error().Err(err).Str("user", logName).Msg("console: login could not reach the engine")
		c.showLogin(w, r, http.StatusServiceUnavailable, loginView{Name: name, Message: "The engine cannot be reached right now; try again shortly."})
		return
	case err != nil:
		c.logins.Warn().Str("user", logName).Str("remote", ip).Msg("console: login failed")
		// Every failure is answered FailureDelay after the login arrived:
		// secrets cannot be tried fast, and an unknown name, a wrong seed
		// (checked here) and a wrong password (checked by the NATS server)
		// take the same time.
		select {
		case <-time.After(time.Until(began.Add(c.cfg.FailureDelay))):
		case <-r.Context().Done():
			return
		}
		c.showLogin(w, r, http.StatusUnauthorized, loginView{Name: name, Message: badCredentials})
		return
	}
	c.throttle.forgive(attempt, keys...)
	c.throttle.succeed(who)
	c.untry(device)
	// A session this browser already had ends: one browser, one session,
	// and its connection is not left open until it times out.
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		c.sessions.remove(old.Value)
	}
	id := c.byName[name]
	cookie, _, err := c.sessions.add(id.Name, id.Role, cl)
	if err != nil {
		c.cfg.Log.Warn().Err(err).Str("user", id.Name).Str("remote", ip).Msg("console: login refused: no session started")
		msg := "The console has too many open sessions; try again later."
		if errors.Is(err, ErrClosed) {
			msg = "The console is shutting down."
		}
		c.showLogin(w, r, http.StatusServiceUnavailable, loginView{Name: name, Message: msg})
		return
	}
	c.setCookie(w, r, loginCookie, "", -1)
	c.rememberDevice(w, r, id)
	c.setCookie(w, r, sessionCookie, cookie, int(c.cfg.AbsoluteTimeout/time.Second))
	c.cfg.Log.Info().Str("user", id.Name).Str("role", string(id.Role)).Str("remote", ip).Msg("console: logged in")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// maxSecret bounds a secret's length, and a password's once JSON-escaped.
const maxSecret = 1024

// authenticate matches name to an identity, checks the secret against it by
// connecting to NATS with it, and returns the connection. A known identity
// whose role may not use the console is refused with ErrRoleRefused and its
// role, only once its secret proved right.
func (c *Console) authenticate(name, secret string) (auth.Role, *client.Client, error) {
	id, ok := c.byName[name]
	if !ok || secret == "" || len(secret) > maxSecret {
		return "", nil, ErrBadCredentials
	}
	secret = c.checkedSecret(name, secret)
	var cred nats.Option
	switch {
	case id.NKey != "":
		kp, err := nkeys.FromSeed([]byte(secret))
		if err != nil {
			return "", nil, ErrBadCredentials
		}
		pub, err := kp.PublicKey()
		if err != nil || pub != id.NKey {
			kp.Wipe()
			return "", nil, ErrBadCredentials
		}
		cred = nats.Nkey(pub, func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) })
	case id.Password != "":
		// nats.go sends the password JSON-escaped in its first message,
		// which the server takes up to 4 KiB: "<" becomes six bytes. A
		// longer one would look like an engine that cannot be reached.
		if b, _ := json.Marshal(secret); len(b) > maxSecret+2 {
			return "", nil, ErrBadCredentials
		}
		cred = nats.UserInfo(id.Name, secret)
	default:
		return "", nil, ErrBadCredentials
	}
	if id.Role != auth.Operator && id.Role != auth.Auditor {
		if id.Password != "" { // prove the password before saying anything about the role
			cl, err := c.connect(id, cred)
			if err != nil {
				return "", nil, err
			}
			cl.Close()
		}
		return id.Role, nil, ErrRoleRefused
	}
	cl, err := c.connect(id, cred)
	if err != nil {
		return "", nil, err
	}
	return id.Role, cl, nil
}

// checkedSecret is secret as it is checked for name: a seed has no spaces,
// so one pasted with a line break still works; a password is taken
// exactly as typed.
func (c *Console) checkedSecret(name, secret string) string {
	if c.byName[name].NKey != "" {
		return strings.TrimSpace(secret)
	}
	return secret
}

// connect opens a session's connection. An authorization failure is
// ErrBadCredentials; anything else says the engine is unreachable.
func (c *Console) connect(id auth.Identity, cred nats.Option) (*client.Client, error) {
	log := c.cfg.Log.With().Str("user", id.Name).Logger()
	opts := append([]nats.Option{
		nats.Name("bankbook-console:" + id.Name), cred, nats.Timeout(5 * time.Second), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Debug().Err(err).Msg("console: NATS reported an error on a session's connection")
		}),
	}, c.cfg.NATSOptions...)
	cl, err := client.Connect(c.cfg.URL, opts...)
	if errors.Is(err, nats.ErrAuthorization) || err != nil && strings.Contains(strings.ToLower(err.Error()), "authorization") {
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("console: connect to %s: %w", auth.Redact(c.cfg.URL), err)
	}
	return cl, nil
}

// logout ends the session and closes its NATS connection.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.remove(ck.Value)
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	c.cfg.Log.Info().Str("user", s.name).Msg("console: logged out")
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// nameKey is the throttle's key of a login name: its SHA-256.
func nameKey(name string) string { return "name:" + hashKey(name) }

// clientIP is the address the request came from (the console does not
// trust forwarding headers: it is served by the engine directly).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
