package groupcommit

import (
	"errors"
	"fmt"

	"github.com/bankbook/bankbook/internal/transient"
)

// ErrOptions: a Publisher takes expectations and message IDs as headers,
// not publish options.
var ErrOptions = errors.New("groupcommit: set expectations and message IDs as headers, not publish options")

// ErrUnexpectedAck: a batch was answered with something that does not
// account for it (an ack for another batch or another number of messages,
// an unreadable ack, a refusal while committing). Whether a message is
// stored is unknown, as after a lost ack. It matches
// transient.ErrUnavailable, so writers retry and check as they do then.
var ErrUnexpectedAck = fmt.Errorf("%w: groupcommit: the batch's answer does not account for it", transient.ErrUnavailable)

// ErrNotAtomic: the stream does not take atomic batches (a server before
// nats-server 2.12, or a setting that did not stick).
var ErrNotAtomic = errors.New("groupcommit: the stream does not allow atomic publish")
