package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/logsample"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the ops web console. Create it with New, serve Handler under
// Prefix, and Close it when the engine stops.
type Console struct {
	cfg      Config
	byName   map[string]auth.Identity
	sessions *sessions
	throttle *throttle
	// deviceKey makes and checks device cookies (device.go); a new one
	// each start.
	deviceKey []byte
	// spent are the device keys whose logins failed MaxFailures times:
	// their cookies count for nothing any more.
	spentMu sync.Mutex
	spent   map[string]bool
	// tried counts each device's login attempts not taken back, over the
	// console's life (the throttle forgets them after its window): a
	// device past MaxFailures is spent.
	tried   map[string]int
	pages   *pages
	handler http.Handler
	// refusals logs requests the console refuses, and logins the failed
	// and locked-out ones: each sampled on its own, since anyone who
	// reaches the listener can cause them (and a flood of one kind then
	// does not hide the other).
	refusals, logins zerolog.Logger
	// redriving are the dead letters a redrive is running for.
	redriving inFlight

	closeOnce sync.Once
}

// New checks cfg and returns a Console. It opens no connection until
// someone logs in.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c := &Console{cfg: cfg, byName: map[string]auth.Identity{}, spent: map[string]bool{}, tried: map[string]int{}, refusals: logsample.Flood(cfg.Log), logins: logsample.Flood(cfg.Log)}
	for _, id := range cfg.Identities {
		c.byName[id.Name] = id
	}
	c.sessions = newSessions(cfg.IdleTimeout, cfg.AbsoluteTimeout, cfg.Now, cfg.MaxSessions, cfg.MaxSessionsPerIdentity)
	c.throttle = newThrottle(cfg.MaxFailures, cfg.LockoutWindow, cfg.Now)
	c.deviceKey = make([]byte, 32)
	_, _ = rand.Read(c.deviceKey) // crypto/rand.Read never fails (Go 1.24+)
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = p
	c.handler = c.routes()
	return c, nil
}

// Handler serves the console. Every path it answers starts with Prefix.
func (c *Console) Handler() http.Handler { return c.handler }

// Sessions is how many sessions are open (for tests and metrics).
func (c *Console) Sessions() int { return c.sessions.count() }

// Close ends every session and closes their NATS connections. It is
// idempotent; the console answers later requests with the login page and
// refuses later logins.
func (c *Console) Close() error {
	c.closeOnce.Do(c.sessions.closeAll)
	return nil
}

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", staticHandler(http.FileServerFS(static))))
	mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", c.login)
	mux.HandleFunc("POST "+Prefix+"logout", c.authed(c.logout))

	mux.HandleFunc("GET "+Prefix+"{$}", c.authed(c.overview))
	mux.HandleFunc("GET "+Prefix+"orphans", c.authed(c.orphans))
	mux.HandleFunc("GET "+Prefix+"orphans/{deposit}/resolve", c.authed(c.confirmResolve))
	mux.HandleFunc("POST "+Prefix+"orphans/{deposit}/resolve", c.authed(c.resolve))
	mux.HandleFunc("GET "+Prefix+"orders", c.authed(c.orders))
	mux.HandleFunc("GET "+Prefix+"orders/{order}", c.authed(c.order))
	mux.HandleFunc("GET "+Prefix+"wallets", c.authed(c.wallet))
	mux.HandleFunc("GET "+Prefix+"bills", c.authed(c.bills))
	mux.HandleFunc("GET "+Prefix+"payouts", c.authed(c.payouts))
	mux.HandleFunc("GET "+Prefix+"payouts/{payout}", c.authed(c.payout))
	mux.HandleFunc("GET "+Prefix+"notifications", c.authed(c.notifications))
	mux.HandleFunc("POST "+Prefix+"notifications/{notification}/redrive", c.authed(c.redriveNotification))
	mux.HandleFunc("GET "+Prefix+"deadletters", c.authed(c.deadLetters))
	mux.HandleFunc("POST "+Prefix+"deadletters/{id}/redrive", c.authed(c.redriveDeadLetter))
	mux.HandleFunc("POST "+Prefix+"deadletters/{id}/discard", c.authed(c.discardDeadLetter))
	mux.HandleFunc("GET "+Prefix+"reconcile", c.authed(c.reconcileRuns))
	mux.HandleFunc("GET "+Prefix+"reconcile/{run}", c.authed(c.reconcileRun))
	mux.HandleFunc("GET "+Prefix+"ledger", c.authed(c.ledger))
	mux.HandleFunc("GET "+Prefix+"ledger/account", c.authed(c.ledgerAccount))
	mux.HandleFunc(Prefix, c.notFound)

	// Browsers mark cross-origin form posts (Sec-Fetch-Site, Origin); they
	// are refused before any handler, on top of the per-session CSRF token.
	cop := http.NewCrossOriginProtection()
	return securityHeaders(c.hostCheck(cop.Handler(mux)))
}

// hostCheck refuses a request whose Host is a name the console was not
// told about. A web page that rebinds its own DNS name to the console's
// address makes the browser send requests the browser deems same-origin
// (past the cross-origin checks), but with the page's name as Host.
func (c *Console) hostCheck(next http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, h := range c.cfg.AllowedHosts {
		allowed[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
		if host == "" || net.ParseIP(host) != nil || allowed[host] || strings.HasSuffix(host, ".localhost") {
			next.ServeHTTP(w, r)
			return
		}
		c.refusals.Warn().Str("host", clip(r.Host)).Str("remote", clientIP(r)).Msg("console: request for an unknown host name refused")
		http.Error(w, "misdirected request: this console does not answer to that host name (see AllowedHosts in docs/console.md)", http.StatusMisdirectedRequest)
	})
}

// clip cuts a client's string to what a log line needs: a Host header or
// a path can be a megabyte long.
func clip(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	return strings.ToValidUTF8(s[:most], "") + fmt.Sprintf("…(%d bytes)", len(s))
}

// securityHeaders sets the headers every console response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// No script at all: the console is plain HTML forms and inline SVG.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// staticHandler lets browsers cache the stylesheet for an hour. It serves
// files only: a directory is not listed.
func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// sessionHandler is a handler of a logged-in request.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// authed serves h to a live session, checks the CSRF token of every POST,
// and sends everyone else to the login page.
func (c *Console) authed(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var cookie string
		if ck, err := r.Cookie(sessionCookie); err == nil {
			cookie = ck.Value
		}
		s, expired := c.sessions.get(cookie)
		if s == nil {
			if expired {
				c.cfg.Log.Info().Msg("console: session expired")
				c.setCookie(w, r, sessionCookie, "", -1)
				http.Redirect(w, r, Prefix+"login?expired=1", http.StatusSeeOther)
				return
			}
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if formTooLarge(w, r, maxForm) {
				c.render(w, r, s, http.StatusRequestEntityTooLarge, "error", view{Title: "Refused",
					Err: &errView{Status: http.StatusRequestEntityTooLarge, Code: codeFormTooLarge, Message: fmt.Sprintf("This form is larger than %d KiB; nothing was sent.", maxForm>>10)}})
				return
			}
			if !validCSRF(s.csrf, r.PostFormValue("csrf")) {
				c.refusals.Warn().Str("user", s.name).Str("path", clip(r.URL.Path)).Msg("console: POST without a valid CSRF token refused")
				c.render(w, r, s, http.StatusForbidden, "error", view{Title: "Refused",
					Err: &errView{Status: http.StatusForbidden, Code: "csrf", Message: "This form is stale or did not come from the console. Reload the page and try again."}})
				return
			}
		}
		h(w, r, s)
	}
}

// Form sizes: a console form, and the login's.
const (
	maxForm      = 64 << 10
	maxLoginForm = 16 << 10
)

// codeFormTooLarge is the error code of a form larger than its limit.
const codeFormTooLarge = "form_too_large"

// formTooLarge reads r's form, at most limit bytes of body, and reports
// whether the body was larger (then the form holds nothing to act on).
func formTooLarge(w http.ResponseWriter, r *http.Request, limit int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var tooLarge *http.MaxBytesError
	if err := r.ParseForm(); errors.As(err, &tooLarge) { // an url-encoded body
		return true
	}
	return errors.As(r.ParseMultipartForm(limit), &tooLarge) // a multipart one
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	var s *session
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s, _ = c.sessions.get(ck.Value)
	}
	c.render(w, r, s, http.StatusNotFound, "error", view{Title: "Not found",
		Err: &errView{Status: http.StatusNotFound, Code: "not_found", Message: "No such console page."}})
}

// ctx is the context of one API call of a page.
func (c *Console) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.cfg.RequestTimeout)
}

// errView is an error as the page shows it: the API's code and message.
type errView struct {
	Status  int
	Code    string
	Message string
}

// apiError turns an API call's error into what the page shows. An error
// the API answered is shown as it is (its code and message are the API's
// contract). Anything else — a timeout, a lost connection — is shown
// without its text, which names NATS subjects and client internals; call
// logs it.
func apiError(err error) *errView {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return &errView{Status: ae.Status, Code: ae.Code, Message: ae.Message}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &errView{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "The engine did not answer in time. Try again; an action retried with the same form acts at most once."}
	}
	return &errView{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, Message: "The engine cannot be reached right now. Try again shortly; an action retried with the same form acts at most once."}
}

// idempotencyKey is a fresh key for one rendered action form.
func idempotencyKey() string { return "console-" + randomToken(18) }

// now is the console's clock.
func (c *Console) now() time.Time { return c.cfg.Now() }

// call is client.Do with the page's deadline.
func call[Req, Rep any](c *Console, r *http.Request, s *session, ep api.Endpoint[Req, Rep], req Req, key string) (Rep, client.Reply, error) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	rep, raw, err := client.Do(ctx, s.client, ep, req, client.WithIdempotencyKey(key))
	if ae := (*api.Error)(nil); err != nil && !errors.As(err, &ae) {
		c.cfg.Log.Warn().Err(err).Str("user", s.name).Str("subject", ep.Subject).Msg("console: API call failed")
	}
	return rep, raw, err
}
