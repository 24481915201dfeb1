package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/subject"
)

// Config configures a Loop. The zero value of every optional field means
// its default.
type Config struct {
	// Name names the part: in logs (part=), dead letters and their subjects.
	// It must be a subject token. Required.
	Name string
	// Consumer creates or looks up the pull consumer. Run calls it each time
	// it starts, so a consumer that vanished is created again. Required.
	Consumer func(ctx context.Context) (jetstream.Consumer, error)
	// Handler handles one message. Required.
	Handler Handler
	// Dead records dead letters. Required.
	Dead *DeadLetters
	// Concurrency is how many messages are handled at once. Default 1
	// (stream order, apart from redeliveries).
	Concurrency int
	// Prefetch is how many messages the client pulls ahead of the handlers.
	// Default 2×Concurrency, at least MinPrefetch. Prefetched messages
	// count as in progress once they are handed over, so their AckWait does
	// not run out while they wait; those the client holds behind them
	// (Prefetch more at most) do not, so a part whose handlers may take
	// long against its AckWait sets a smaller Prefetch.
	Prefetch int
	// MaxAttempts is how many failed handlings of one message lead to a dead
	// letter. Default 20; negative: never by count (Permanent still
	// dead-letters). Failures are counted by this Loop, by stream sequence:
	// a restarted process or another instance counts afresh, so a message
	// may be tried more often, never less.
	MaxAttempts int
	// MinBackoff is the delay before the first retry of a failed message;
	// it doubles with each failure up to MaxBackoff. Defaults 1s and 5m.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HandlerTimeout bounds one handler call; its context also survives the
	// end of Run's, so work in flight at shutdown finishes. Default 1m.
	HandlerTimeout time.Duration
	// InProgressEvery is how often the loop tells the server that a message
	// it holds is still being worked on. Default a third of the consumer's
	// AckWait.
	InProgressEvery time.Duration
	// Expiry of each pull request. Default 30s. A consumer that vanished
	// silently is noticed after two missed heartbeats (ConsumeOptions).
	Expiry time.Duration
	// Log receives failures, dead letters and panics. The zero Logger logs
	// nothing.
	Log zerolog.Logger
}

// MinPrefetch is the least default Prefetch. nats.go's Consume (1.55)
// stops asking for messages now and then until heartbeats are missed
// (ConsumeOptions.Heartbeat), the more often the fewer it asks for at a
// time: under load, a part that pulled two at a time stood idle about half
// the time (docs/performance.md, "A pull the client skips").
const MinPrefetch = 16

func (c *Config) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Prefetch == 0 {
		c.Prefetch = max(2*c.Concurrency, MinPrefetch)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 20
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = time.Minute
	}
	if c.Expiry == 0 {
		c.Expiry = 30 * time.Second
	}
}

// Validate reports every problem with c (after defaults are filled in).
func (c Config) Validate() error {
	var errs []error
	if !subject.Token(c.Name) {
		errs = append(errs, fmt.Errorf("name %q must be a subject token", c.Name))
	}
	if c.Consumer == nil {
		errs = append(errs, errors.New("a consumer function is required"))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("a handler is required"))
	}
	if c.Dead == nil {
		errs = append(errs, errors.New("dead letters are required"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("concurrency must be at least 1"))
	}
	if c.Prefetch < 1 {
		errs = append(errs, errors.New("prefetch must be at least 1"))
	}
	if c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, errors.New("backoff needs 0 < min <= max"))
	}
	if c.HandlerTimeout <= 0 {
		errs = append(errs, errors.New("handler timeout must be positive"))
	}
	if c.InProgressEvery < 0 {
		errs = append(errs, errors.New("in-progress interval must not be negative"))
	}
	if c.Expiry < time.Second {
		errs = append(errs, errors.New("expiry must be at least 1s"))
	}
	return errors.Join(errs...)
}
