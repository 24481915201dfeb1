package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
)

// Cookie names. Both are HttpOnly, SameSite=Strict and scoped to Prefix.
const (
	sessionCookie = "bb_console"       // the session: 32 random bytes
	loginCookie   = "bb_console_login" // the login form's CSRF token, before a session exists
)

// session is one logged-in identity and its own NATS connection.
type session struct {
	key     string // SHA-256 of the cookie value: the store never holds the cookie itself
	name    string
	role    auth.Role
	client  *client.Client
	csrf    string
	created time.Time

	mu       sync.Mutex
	lastSeen time.Time
}

// canAct reports whether the console shows action buttons: an operator's
// session. The NATS server decides whether the action is carried.
func (s *session) canAct() bool { return s.role == auth.Operator }

// sessions holds the live sessions. A janitor ends those that time out
// even when nobody asks for them again (a closed browser tab), so that
// their NATS connections do not stay open; at most maxTotal sessions are
// held, and at most perName for one identity (a new login of an identity
// at its limit ends that identity's oldest session).
type sessions struct {
	idle, absolute    time.Duration
	now               func() time.Time
	maxTotal, perName int

	mu   sync.Mutex
	byID map[string]*session
	// timedOut are the keys of sessions swept because they timed out,
	// so that their cookie, when it comes back, is told the session ended
	// (at most maxTimedOut, each kept for the idle timeout).
	timedOut map[string]time.Time
	closed   bool
	// janitor sweeps while there are sessions (armed); an idle console
	// holds no timer.
	janitor *time.Timer
	armed   bool
}

// maxTimedOut bounds how many timed-out sessions are remembered.
const maxTimedOut = 1024

func newSessions(idle, absolute time.Duration, now func() time.Time, maxTotal, perName int) *sessions {
	return &sessions{idle: idle, absolute: absolute, now: now, maxTotal: maxTotal, perName: perName, byID: map[string]*session{},
		timedOut: map[string]time.Time{}}
}

// armLocked makes sure the janitor will sweep.
func (ss *sessions) armLocked() {
	if ss.armed {
		return
	}
	ss.armed = true
	if ss.janitor == nil {
		ss.janitor = time.AfterFunc(ss.sweepEvery(), ss.sweep)
	} else {
		ss.janitor.Reset(ss.sweepEvery())
	}
}

// sweepEvery is how often the janitor looks for timed-out sessions: a
// quarter of the shorter timeout, between 10ms and a minute.
func (ss *sessions) sweepEvery() time.Duration {
	return min(max(min(ss.idle, ss.absolute)/4, 10*time.Millisecond), time.Minute)
}

// sweep ends every timed-out session and closes its connection.
func (ss *sessions) sweep() {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	expired := ss.sweepLocked(ss.now())
	if len(ss.byID) > 0 || len(ss.timedOut) > 0 {
		ss.janitor.Reset(ss.sweepEvery())
	} else {
		ss.armed = false
	}
	ss.mu.Unlock()
	closeAll(expired)
}

// randomToken is n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashKey(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

// add registers a new session and returns the cookie value that names it.
// It takes c over: when there is no room (maxTotal sessions are live) or
// the sessions are closed, c is closed and the error is
// ErrTooManySessions or ErrClosed.
func (ss *sessions) add(name string, role auth.Role, c *client.Client) (string, *session, error) {
	cookie := randomToken(32)
	now := ss.now()
	s := &session{key: hashKey(cookie), name: name, role: role, client: c, csrf: randomToken(32), created: now, lastSeen: now}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		c.Close()
		return "", nil, ErrClosed
	}
	ended := ss.sweepLocked(now)
	// The identity's oldest sessions make room for the new one.
	var mine []*session
	for _, o := range ss.byID {
		if o.name == name {
			mine = append(mine, o)
		}
	}
	slices.SortFunc(mine, func(a, b *session) int { return a.created.Compare(b.created) })
	for len(mine) >= ss.perName {
		delete(ss.byID, mine[0].key)
		ended, mine = append(ended, mine[0]), mine[1:]
	}
	if len(ss.byID) >= ss.maxTotal {
		ss.mu.Unlock()
		closeAll(ended)
		c.Close()
		return "", nil, ErrTooManySessions
	}
	ss.byID[s.key] = s
	ss.armLocked()
	ss.mu.Unlock()
	closeAll(ended)
	return cookie, s, nil
}

// get returns the live session the cookie names and marks it used; nil and
// expired=true when it has timed out (its connection is then closed).
func (ss *sessions) get(cookie string) (s *session, expired bool) {
	if cookie == "" {
		return nil, false
	}
	now := ss.now()
	key := hashKey(cookie)
	ss.mu.Lock()
	s = ss.byID[key]
	if _, ok := ss.timedOut[key]; ok && s == nil {
		delete(ss.timedOut, key)
		ss.mu.Unlock()
		return nil, true
	}
	if s != nil && ss.expiredLocked(s, now) {
		delete(ss.byID, key)
		ss.mu.Unlock()
		s.client.Close()
		return nil, true
	}
	ss.mu.Unlock()
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	s.lastSeen = now
	s.mu.Unlock()
	return s, false
}

func (ss *sessions) expiredLocked(s *session, now time.Time) bool {
	s.mu.Lock()
	last := s.lastSeen
	s.mu.Unlock()
	return now.Sub(last) >= ss.idle || now.Sub(s.created) >= ss.absolute
}

// sweepLocked removes every expired session and returns them to be closed.
func (ss *sessions) sweepLocked(now time.Time) []*session {
	var out []*session
	for k, s := range ss.byID {
		if ss.expiredLocked(s, now) {
			delete(ss.byID, k)
			out = append(out, s)
			if len(ss.timedOut) < maxTimedOut {
				ss.timedOut[k] = now
			}
		}
	}
	for k, at := range ss.timedOut {
		if now.Sub(at) >= ss.idle {
			delete(ss.timedOut, k)
		}
	}
	return out
}

// remove ends the session the cookie names and closes its connection.
func (ss *sessions) remove(cookie string) *session {
	key := hashKey(cookie)
	ss.mu.Lock()
	s := ss.byID[key]
	delete(ss.byID, key)
	ss.mu.Unlock()
	if s != nil {
		s.client.Close()
	}
	return s
}

// closeAll ends every session and refuses new ones.
func (ss *sessions) closeAll() {
	ss.mu.Lock()
	ss.closed = true
	if ss.janitor != nil {
		ss.janitor.Stop()
	}
	clear(ss.timedOut)
	all := make([]*session, 0, len(ss.byID))
	for k, s := range ss.byID {
		all = append(all, s)
		delete(ss.byID, k)
	}
	ss.mu.Unlock()
	closeAll(all)
}

// count is how many sessions are held (expired ones not yet swept included).
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

func closeAll(ss []*session) {
	for _, s := range ss {
		s.client.Close()
	}
}

// validCSRF compares a submitted token with the expected one in constant time.
func validCSRF(expected, got string) bool {
	return expected != "" && len(got) == len(expected) && subtle.ConstantTimeCompare([]byte(expected), []byte(got)) == 1
}

// setCookie writes a console cookie: HttpOnly, SameSite=Strict, Path
// Prefix, Secure on a TLS request or when Config.SecureCookies says the
// browser reaches the console over TLS (a TLS-terminating proxy). maxAge
// < 0 deletes it.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, Secure: r.TLS != nil || c.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}
