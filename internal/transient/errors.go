package transient

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable means NATS or JetStream did not answer in time, or said it
// cannot serve the request right now (no leader, no quorum, no responders).
// The request may or may not have taken effect; the same request may
// succeed later.
var ErrUnavailable = errors.New("nats: temporarily unavailable")

// Sentinel returns a new sentinel error with text that matches
// ErrUnavailable (errors.Is), for a package that documents its own
// unavailability error (eventstore.ErrUnavailable).
func Sentinel(text string) error { return &sentinel{text: text} }

type sentinel struct{ text string }

func (e *sentinel) Error() string { return e.text }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *sentinel) Is(target error) bool { return target == ErrUnavailable }

// transientCodes are the JetStream API error codes that Is reports as
// transient: the server's answers while a stream, a consumer or the
// JetStream meta layer is without a leader or quorum, or is catching up, or
// while JetStream itself is not running (a server disables it on a storage
// failure). The names are nats-server's.
var transientCodes = map[jetstream.ErrorCode]string{
	10004: "JSClusterIncompleteErr: incomplete results",
	10005: "JSClusterNoPeersErrF: no suitable peers for placement",
	10007: "JSClusterNotAssignedErr: JetStream cluster not assigned to this server",
	10008: "JSClusterNotAvailErr: JetStream system temporarily unavailable",
	10009: "JSClusterNotLeaderErr: JetStream cluster can not handle request",
	10039: "JSNotEnabledForAccountErr: JetStream not enabled for account",
	10076: "JSNotEnabledErr: JetStream not enabled",
	10118: "JSStreamOfflineErr: stream is offline",
	10119: "JSConsumerOfflineErr: consumer is offline",
	10158: "JSStreamDuplicateMessageConflict: duplicate message id is in process",
	10163: "JSStreamExpectedLastSeqPerSubjectNotReady: expected last sequence per subject temporarily unavailable",
	10194: "JSStreamOfflineReasonErrF: stream is offline",
	10195: "JSConsumerOfflineReasonErrF: consumer is offline",
}

// outOfStorageCodes are the JetStream API error codes IsOutOfStorage
// reports: a write refused because the account's or the server's
// JetStream storage (or memory) limit is reached. Nothing was stored.
var outOfStorageCodes = map[jetstream.ErrorCode]string{
	10002: "JSAccountResourcesExceededErr: resource limits exceeded for account",
	10023: "JSInsufficientResourcesErr: insufficient resources",
	10028: "JSMemoryResourcesExceededErr: insufficient memory resources available",
	10047: "JSStorageResourcesExceededErr: insufficient storage resources available",
}

// IsOutOfStorage reports whether err is JetStream refusing a write for want
// of storage: the account's limit (a tenant's share of a server) or the
// server's is reached (10023 is also a cluster that cannot place a
// consumer; 10028 and 10047 come from creating or updating a stream). It
// is not transient: the same write is refused until space is freed or the
// limit raised, so it is not worth retrying at once.
func IsOutOfStorage(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		_, ok := outOfStorageCodes[apiErr.ErrorCode]
		return ok
	}
	return false
}

// transientErrors are the client-side errors Is reports as transient.
var transientErrors = []error{
	context.DeadlineExceeded,
	nats.ErrTimeout,
	nats.ErrNoResponders,
	nats.ErrConnectionClosed,
	nats.ErrConnectionDraining,
	nats.ErrConnectionReconnecting,
	nats.ErrDisconnected,
	nats.ErrReconnectBufExceeded,
	nats.ErrStaleConnection,
	nats.ErrNoServers,
	jetstream.ErrNoStreamResponse,
	jetstream.ErrAsyncPublishTimeout,
	jetstream.ErrServerShutdown,
}

// Is reports whether err is a transient NATS failure (see the package
// documentation). Is(nil) is false.
func Is(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	for _, t := range transientErrors {
		if errors.Is(err, t) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		_, ok := transientCodes[apiErr.ErrorCode]
		return ok
	}
	return false
}

// Retryable reports whether an operation that failed with err is worth
// trying again: err is transient, and not a connection that is closed or
// draining (it will not come back).
func Retryable(err error) bool {
	return Is(err) && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionDraining)
}

// Mark returns err wrapped so that it matches ErrUnavailable, when it is
// transient and does not already; otherwise err itself. The original
// error stays in the chain (errors.Is and errors.As see through).
func Mark(err error) error {
	if !Is(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
