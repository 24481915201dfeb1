package supervisor

import (
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a Supervisor. The zero value of every field means its
// default.
type Config struct {
	// MinBackoff is the wait before the first restart of a part. Default 1s.
	MinBackoff time.Duration
	// MaxBackoff caps the doubling wait between restarts. Default 1m.
	MaxBackoff time.Duration
	// ResetAfter is how long a run must last to count as healthy: the next
	// restart waits MinBackoff again. Default 1m.
	ResetAfter time.Duration
	// Log receives restarts (fields part, restarts, retry_in) and reported
	// failures. The zero Logger logs nothing.
	Log zerolog.Logger
	// Now is the clock of Status times. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Minute
	}
	if c.ResetAfter == 0 {
		c.ResetAfter = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with c (after defaults are filled in).
func (c Config) Validate() error {
	var errs []error
	if c.MinBackoff < 0 {
		errs = append(errs, errors.New("min backoff must not be negative"))
	}
	if c.MaxBackoff < c.MinBackoff {
		errs = append(errs, errors.New("max backoff must be at least min backoff"))
	}
	if c.ResetAfter < 0 {
		errs = append(errs, errors.New("reset-after must not be negative"))
	}
	return errors.Join(errs...)
}
