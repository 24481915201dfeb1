package console

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/ops"
)

// Prefix is the path the console is served under. Every route of Handler
// starts with it: mount the handler at Prefix without stripping it.
const Prefix = "/console/"

// Config configures a Console. Fields left zero take their defaults.
type Config struct {
	// URL is the NATS client URL of the engine. Each login opens its own
	// connection there with the identity's credentials. Required.
	URL string
	// Identities are the identities the NATS server knows (auth.Identities):
	// a login is matched against them by name, and the role they give is
	// what the console shows. The NATS server's permissions decide what a
	// session may actually do. Required.
	Identities []auth.Identity
	// Readiness is the /readyz source, asked in-process for the overview's
	// health table. Required.
	Readiness ops.Readiness
	// NATSOptions are added to every session's connection (TLS roots, a
	// client certificate). Never credentials: those come from the login.
	NATSOptions []nats.Option
	// FirmBankingFee is the fee per transfer the firm-banking provider
	// charges, shown on the refund-to-bank confirmation; 0 when unknown
	// (then the page says the provider reports it on settlement).
	FirmBankingFee int64
	// NameGrace is the engine's name grace (how long after its closing an
	// order closed unpaid takes a deposit assigned to it, as a refund to
	// its buyer's wallet): the resolution's confirmation says which it
	// is. 0 is a grace of none (--name-grace 0: every assignment to a
	// closed order is refused); negative when unknown (then the page says
	// it depends on it).
	NameGrace time.Duration
	// IdleTimeout ends a session this long after its last request.
	// Default 30m.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after its login, however
	// busy. Default 12h.
	AbsoluteTimeout time.Duration
	// RequestTimeout bounds each API call a page makes. Default 10s.
	RequestTimeout time.Duration
	// FailureDelay is how long a failed login waits before it is answered,
	// so that secrets cannot be tried fast. Default 1s.
	FailureDelay time.Duration
	// MaxFailures is how many failed logins one name or one client address
	// may have within LockoutWindow; more are refused until the window
	// has passed. Default 5.
	MaxFailures int
	// LockoutWindow is the window failed logins are counted in. Default 15m.
	LockoutWindow time.Duration
	// MaxSessions is how many sessions the console holds at most (each has
	// its own NATS connection); a login beyond it is refused. Default 256.
	MaxSessions int
	// MaxSessionsPerIdentity is how many sessions one identity may hold; a
	// new login of an identity at the limit ends its oldest session.
	// Default 8.
	MaxSessionsPerIdentity int
	// SecureCookies marks the console's cookies Secure even on requests
	// that did not come over TLS: set it when browsers reach the console
	// through a TLS-terminating proxy (then r.TLS is nil). Cookies are
	// always Secure on a TLS request.
	SecureCookies bool
	// AllowedHosts are the host names (the Host header, without a port)
	// the console answers to besides IP literals and "localhost": the name
	// a TLS-terminating proxy forwards when it keeps the browser's Host.
	// Any other Host is refused (421), so that a web page cannot reach
	// the console through DNS rebinding.
	AllowedHosts []string
	// Log receives logins, logouts and refusals (never a secret). Default:
	// discard.
	Log zerolog.Logger
	// Now is the clock (tests move it to expire sessions). Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 12 * time.Hour
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.FailureDelay == 0 {
		c.FailureDelay = time.Second
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = 5
	}
	if c.LockoutWindow == 0 {
		c.LockoutWindow = 15 * time.Minute
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 256
	}
	if c.MaxSessionsPerIdentity == 0 {
		c.MaxSessionsPerIdentity = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with c. The error matches ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url is required: the engine's NATS client URL"))
	} else if err := auth.CheckURL(c.URL, "nats-nkey"); err != nil {
		errs = append(errs, err)
	}
	if len(c.Identities) == 0 {
		errs = append(errs, errors.New("identities are required: the console matches logins against them"))
	}
	for _, id := range c.Identities {
		if err := id.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Readiness == nil {
		errs = append(errs, errors.New("readiness source is required"))
	}
	for name, d := range map[string]time.Duration{"idle timeout": c.IdleTimeout, "absolute timeout": c.AbsoluteTimeout,
		"request timeout": c.RequestTimeout, "failure delay": c.FailureDelay, "lockout window": c.LockoutWindow} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	if c.MaxSessions < 0 || c.MaxSessionsPerIdentity < 0 {
		errs = append(errs, errors.New("max sessions must not be negative"))
	}
	if c.MaxFailures < 0 {
		errs = append(errs, errors.New("max failures must not be negative"))
	}
	if c.FirmBankingFee < 0 {
		errs = append(errs, errors.New("firm-banking fee must not be negative"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}
