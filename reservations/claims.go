package reservations

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

// DepositClaimTTL is how long the claim of a bank transaction is kept: far
// longer than any attempt to record it and its retries take (the scanner
// repeats a transaction within minutes until it is recorded; after that,
// the recorded deposit answers every repeat), and as long as the default
// idempotency TTL keeps a key, so that a request repeated with its key is
// held to the first description too.
const DepositClaimTTL = 7 * 24 * time.Hour

// DepositClaimLease is how long the attempt holding a claim has to record
// the deposit before another attempt may take the claim over (an attempt
// takes well under a second; one that died leaves its claim to the next).
const DepositClaimLease = 15 * time.Second

// depositKey is the key of a deposit's claim. Name keys are base64url and
// hold no dot, so the two never meet.
func depositKey(id domain.DepositID) string {
	return "deposit." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// claimRecord is a claim as stored: the first description of the
// transaction, and the attempt recording it until when.
type claimRecord struct {
	Content json.RawMessage `json:"content"`
	Holder  string          `json:"holder"`
	Until   time.Time       `json:"until"`
}

// ClaimHeldError means another attempt holds the claim of a deposit: it is
// recording the transaction until Until at the latest. Content is what the
// claim says of the transaction.
type ClaimHeldError struct {
	Until   time.Time
	Content []byte
}

func (e *ClaimHeldError) Error() string {
	return fmt.Sprintf("another attempt is recording this bank transaction (until %s)", e.Until.Format(time.RFC3339))
}

// ClaimDeposit claims deposit id, a bank transaction, for the attempt
// holder to record with content (what its request says of the
// transaction), and returns the content claimed: content when this is the
// first claim of id within DepositClaimTTL, otherwise what the first claim
// said. The caller records the deposit with what ClaimDeposit returns, so
// that one bank transaction is applied with one description, however many
// requests describe it differently.
//
// Only one attempt at a time holds the claim: while another attempt's
// lease (DepositClaimLease) runs, ClaimDeposit returns a *ClaimHeldError
// and the caller must not touch the transaction (it looks again later, and
// finds the deposit recorded, or the lease run out and the claim its own).
// A claim expires by itself after DepositClaimTTL (a per-message TTL).
// created reports that this call created the claim: no attempt has held
// it within DepositClaimTTL, so none has recorded the deposit meanwhile.
func (s *Store) ClaimDeposit(ctx context.Context, id domain.DepositID, content []byte, holder string) (claimed []byte, created bool, err error) {
	ctx, cancel := s.retry.Bound(ctx)
	defer cancel()
	k := depositKey(id)
	for attempt := 1; ; attempt++ {
		now := s.now()
		mine, err := json.Marshal(claimRecord{Content: content, Holder: holder, Until: now.Add(DepositClaimLease)})
		if err != nil {
			return nil, false, err
		}
		actx, acancel := s.retry.Attempt(ctx)
		_, err = s.kv.Create(actx, k, mine, jetstream.KeyTTL(DepositClaimTTL))
		acancel()
		if err == nil {
			return content, true, nil
		}
		if kvcas.Conflict(err) {
			first, taken, err := s.takeOver(ctx, k, holder, now)
			if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, errRaced) {
				continue // expired, or taken over by another, in between: look again
			}
			if err != nil {
				return nil, false, fmt.Errorf("claim of deposit %s: %w", id, err)
			}
			if taken {
				return first, false, nil
			}
			continue
		}
		if !transient.Retryable(err) || ctx.Err() != nil || !s.retry.Wait(ctx, attempt) {
			return nil, false, fmt.Errorf("claim of deposit %s: %w", id, transient.Mark(err))
		}
	}
}

// errRaced means another attempt changed a claim between its read and a
// take-over.
var errRaced = errors.New("reservations: the claim changed meanwhile")

// takeOver reads the claim at k: it is holder's (a create whose answer was
// lost), or its lease ran out and holder takes it over, keeping its
// content; otherwise it is held, a *ClaimHeldError. taken reports that
// holder holds it now, with first its content.
func (s *Store) takeOver(ctx context.Context, k, holder string, now time.Time) (first []byte, taken bool, err error) {
	e, err := transient.Do(ctx, s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, k) })
	if err != nil {
		return nil, false, err
	}
	var cur claimRecord
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return nil, false, fmt.Errorf("claim %s: %w", k, err)
	}
	if len(cur.Content) == 0 || string(cur.Content) == "null" {
		// A claim without a holder, the description alone: taken over,
		// the description kept.
		cur = claimRecord{Content: e.Value()}
	}
	switch {
	case cur.Holder == holder:
		return cur.Content, true, nil
	case now.Before(cur.Until):
		return nil, false, &ClaimHeldError{Until: cur.Until, Content: cur.Content}
	}
	// The attempt that held it died (or finished; the deposit then exists,
	// which the caller looks at next). The first description stays. (An
	// update carries no per-message TTL: a claim taken over stays until the
	// bucket's key is purged. Only a dead attempt leaves one behind.)
	next, err := json.Marshal(claimRecord{Content: cur.Content, Holder: holder, Until: now.Add(DepositClaimLease)})
	if err != nil {
		return nil, false, err
	}
	actx, acancel := s.retry.Attempt(ctx)
	_, err = s.kv.Update(actx, k, next, e.Revision())
	acancel()
	if kvcas.Conflict(err) {
		return nil, false, errRaced
	}
	if err != nil {
		return nil, false, err
	}
	return cur.Content, true, nil
}
