package ops

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// DefaultListen is the address the operations server listens on when Config
// leaves Listen empty. See the package documentation for why this one.
const DefaultListen = "127.0.0.1:8080"

// ConsolePath is where Config.Console is mounted.
const ConsolePath = "/console/"

// WebhooksPath is where Config.Webhooks is mounted.
const WebhooksPath = "/webhooks/"

// Config configures a Server. The zero value of every field but Readiness
// means its default.
type Config struct {
	// Listen is the HOST:PORT to serve on. Port 0 picks a free port (see
	// Server.Addr). Default DefaultListen.
	Listen string
	// Metrics is what /metrics serves. Default a new Metrics with no
	// sources; pass the one the API server observes requests on.
	Metrics *Metrics
	// Readiness tells /readyz which parts are ready. Required: a server that
	// cannot know whether it is ready must not say that it is.
	Readiness Readiness
	// EnablePprof serves net/http/pprof under /debug/pprof/. Off by
	// default: profiles reveal internals and cost CPU.
	EnablePprof bool
	// Console, when set, is served under ConsolePath (the ops console,
	// package console, whose routes keep the prefix). Nil: no console.
	Console http.Handler
	// Webhooks, when set, is served under WebhooksPath: third parties'
	// signed calls (the firm-banking provider's results). Its routes keep
	// the prefix. Nil: no webhooks.
	Webhooks http.Handler
	// Log receives the server's own lines (start, stop, failed readiness
	// checks). Default: discard.
	Log zerolog.Logger
	// ReadyTimeout bounds one /readyz call of Readiness; a source that does
	// not answer in time makes /readyz answer 503. Default 2s.
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits for in-flight requests once
	// its context ends; connections still open then are closed. Default 5s.
	ShutdownTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(&MetricsOptions{Log: c.Log})
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 2 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
}

// Validate reports every problem with c. The error matches ErrInvalidConfig.
// Fields left zero are not problems: they take their defaults.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: %w", c.Listen, err))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("listen address %q: port must be a number from 0 to 65535", c.Listen))
		} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			errs = append(errs, fmt.Errorf("listen address %q: bad host", c.Listen))
		}
	}
	if c.Readiness == nil {
		errs = append(errs, errors.New("readiness source is required"))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, errors.New("ready timeout must not be negative"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdown timeout must not be negative"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// validHostname accepts names such as "localhost" or "ops.internal".
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}
