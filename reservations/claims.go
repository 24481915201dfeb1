package reservations

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/transient"
)

// DepositClaimTTL is how long the claim of a bank transaction is kept: far
// longer than any attempt to record it and its retries take (the scanner
// repeats a transaction within minutes until it is recorded; after that,
// the recorded deposit answers every repeat), and as long as the default
// idempotency TTL keeps a key, so that a request repeated with its key is
// held to the first description too.
const DepositClaimTTL = 7 * 24 * time.Hour

// depositKey is the key of a deposit's claim. Name keys are base64url and
// hold no dot, so the two never meet.
func depositKey(id domain.DepositID) string {
	return "deposit." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// claimedBefore reports whether a create failed because the key exists:
// ErrKeyExists, or the bare wrong-last-sequence error a create over an
// expired key's marker gets when another create wins the race.
func claimedBefore(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &ae) &&
		(ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// ClaimDeposit claims deposit id, a bank transaction, for content (what
// the request recording it says of the transaction) and returns the
// content claimed: content when this is the first claim of id within
// DepositClaimTTL, otherwise what the first claim said. A request records
// the deposit with what ClaimDeposit returns, so that one bank transaction
// is applied with one content, however many requests that describe it
// differently run at once. The claim expires by itself (a per-message TTL).
func (s *Store) ClaimDeposit(ctx context.Context, id domain.DepositID, content []byte) ([]byte, error) {
	ctx, cancel := s.retry.Bound(ctx)
	defer cancel()
	k := depositKey(id)
	for attempt := 1; ; attempt++ {
		actx, acancel := s.retry.Attempt(ctx)
		_, err := s.kv.Create(actx, k, content, jetstream.KeyTTL(DepositClaimTTL))
		acancel()
		if err == nil {
			return content, nil
		}
		if claimedBefore(err) {
			// Claimed before, maybe by this very call if an answer was lost.
			e, err := transient.Do(ctx, s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, k) })
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue // expired in between: claim it again
			}
			if err != nil {
				return nil, fmt.Errorf("claim of deposit %s: %w", id, err)
			}
			return e.Value(), nil
		}
		if !transient.Retryable(err) || ctx.Err() != nil || !s.retry.Wait(ctx, attempt) {
			return nil, fmt.Errorf("claim of deposit %s: %w", id, transient.Mark(err))
		}
	}
}
