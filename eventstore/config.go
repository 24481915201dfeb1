package eventstore

import (
	"errors"
	"strings"
	"time"
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
	// Upcaster, when set, is applied to every event read back.
	Upcaster Upcaster
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
	if c.Now == nil {
		c.Now = time.Now
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
	return errors.Join(errs...)
}
