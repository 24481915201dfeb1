package eventstore

import (
	"errors"
	"strings"
	"time"

	"github.com/bankbook/bankbook/internal/transient"
)

// Config configures a Store. The zero value of every field means its default.
type Config struct {
	// Stream is the JetStream stream name. Default "BANKBOOK_EVENTS".
	Stream string
	// SubjectPrefix is the subject prefix of aggregate subjects. Default
	// "bankbook.evt"; the stream holds SubjectPrefix + ".>".
	SubjectPrefix string
	// Replicas is the stream's replica count (1 for the embedded server,
	// 3 for a cluster). Default 1.
	Replicas int
	// DuplicateWindow is the stream's Nats-Msg-Id dedup window. Default 2m.
	DuplicateWindow time.Duration
	// Timeout bounds each JetStream call when the context has no deadline.
	// Default 5s.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt of a JetStream request made by
	// Append, Load and LastSeq (a publish waiting for its ack, a get):
	// one that gets no answer in time, or a transient refusal (no leader),
	// is tried again while the caller's deadline (or Timeout) allows, so
	// a lost ack during a leader change does not use up a command's whole
	// budget. Default 1s (or Timeout, if that is shorter).
	AttemptTimeout time.Duration
	// Upcaster, when set, is applied to every event read back.
	Upcaster Upcaster
	// Check, when set, says whether this engine can decode an event read
	// back (after upcasting): an error makes its commit damaged (see
	// ErrDamaged), so Load refuses the aggregate (rather than handing over
	// a commit the caller cannot decode), SetAside accepts the commit and
	// reactors skip it once it is set aside. The engine passes its codec's
	// decoding (an unknown event type, a payload that does not fit its
	// type). Without Check only messages that are not commits, or whose
	// events cannot be upcast, are damaged.
	Check func(Envelope) error
	// SetAsideBucket is the KV bucket that records the damaged messages an
	// operator set aside (SetAside). Default "bankbook_set_aside".
	SetAsideBucket string
	// Now is the clock used for RecordedAt. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = "BANKBOOK_EVENTS"
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "bankbook.evt"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = min(transient.DefaultAttemptTimeout, c.Timeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SetAsideBucket == "" {
		c.SetAsideBucket = "bankbook_set_aside"
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Stream, ". *>") {
		errs = append(errs, errors.New("stream name must not contain '.', '*', '>' or spaces"))
	}
	if strings.ContainsAny(c.SubjectPrefix, " *>") || strings.HasSuffix(c.SubjectPrefix, ".") {
		errs = append(errs, errors.New("subject prefix must be a literal subject"))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, errors.New("replicas must be between 1 and 5"))
	}
	if c.DuplicateWindow < 100*time.Millisecond {
		errs = append(errs, errors.New("duplicate window must be at least 100ms"))
	}
	if err := (transient.Policy{AttemptTimeout: c.AttemptTimeout, Budget: c.Timeout}).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
