package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// Msg is one message handed to a Handler: a delivery by the consumer, or
// the original of a dead letter being redriven.
type Msg struct {
	Subject string
	Data    []byte
	Header  nats.Header
	// Stream and Seq locate the message in its stream.
	Stream string
	Seq    uint64
	// Published is when the stream stored the message.
	Published time.Time
	// Delivered is how often JetStream has delivered the message, 1 the
	// first time (for a redrive: the deliveries before it was dead-lettered,
	// plus one).
	Delivered uint64
	// Attempt is this loop's count of failed handlings of the message plus
	// one: 1 on the first try.
	Attempt int
	// Redrive is the dead letter's ID when the message is being redriven, else 0.
	Redrive uint64
}

// Handler handles one message. Its error is the outcome:
//
//   - nil: done; the message is acknowledged.
//   - RetryAfter(d, nil): not due yet; delivered again after d, not a failure.
//   - RetryAfter(d, err): failed; delivered again after d.
//   - Permanent(err): cannot succeed; dead-lettered at once.
//   - any other error: failed; delivered again after a backoff that doubles
//     with each failure (MinBackoff to MaxBackoff), and dead-lettered after
//     MaxAttempts failures.
//
// A panic is recovered and counts as a failure (its stack is logged).
// While the handler runs, the loop keeps the message from being redelivered
// (InProgress), so long work is not handed to another instance.
// Delivery is at least once: handlers must be idempotent.
type Handler func(ctx context.Context, m Msg) error
