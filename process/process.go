package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/worker"
)

// Config configures the process managers.
type Config struct {
	// Codec decodes the events of the commits reacted to. Required.
	Codec *domain.Codec
	// Orders, Deposits, Wallets and Payouts are the command handlers the
	// steps run through. Required.
	Orders   *commands.Orders
	Deposits *commands.Deposits
	Wallets  *commands.Wallets
	Payouts  *commands.Payouts
	// Provider sends payouts (withdrawals, refunds to the bank). Optional:
	// without it SendPayouts cannot run (an instance without a provider
	// runs no payouts part; payouts stay requested until one with a
	// provider sends them), and ReturnFailedPayouts can.
	Provider firmbanking.Provider
	// SettleTimeout bounds how long one payout waits for the provider's final
	// answer before the reactor tries again later. Default 15s.
	SettleTimeout time.Duration
	// SendArrival is how long after a send's SettleTimeout ran out a
	// request made before it may still reach the provider and be taken
	// (the way there: a connection's unsent bytes, a proxy; the provider's
	// own queue): each send's note counts until SettleTimeout +
	// SendArrival after it. Default 30s: it only makes a refusal wait
	// longer.
	SendArrival time.Duration
	// PendingRetry is how long a commit whose payout is still pending at the
	// provider after SettleTimeout waits before it is handled again. A wait,
	// not a failure: it never leads to a dead letter. Default 30s.
	PendingRetry time.Duration
	// RefusalLag is how long the provider may take to show a transfer it
	// accepted (its status answers 404 meanwhile). A payout refused now is
	// failed, its money returned, only if the provider still does not know
	// it this long after its first send and after the latest send that the
	// provider may have taken, by any instance: a send it accepted (whose
	// answer was lost, or whose instance died) shows by then. The payout
	// waits meanwhile (worker.RetryAfter), holding no handler. Default 1m,
	// at most worker.MaxUncertainWait.
	RefusalLag time.Duration
	// Sends is shared by every engine instance: each send of a payout is
	// noted there before it is made, and noted again if the provider did
	// not take it. Required with a Provider.
	Sends SendLog
	// UnknownEventRetry is how long a commit with an event type this engine
	// does not know (written by a newer version during a rolling upgrade)
	// waits for an instance that knows it. A wait, not a failure. Default 30s.
	UnknownEventRetry time.Duration
	// Log receives one line per payout result and per wait.
	Log zerolog.Logger
}

// SendLog is where the instances note their payout sends, timed by one
// clock (worker.DeadLetters keeps it in the lease stream, by the NATS
// server's clock).
type SendLog interface {
	// Begin notes a send of payout about to be made, which the provider
	// may take until within after the note; End takes the mark.
	Begin(ctx context.Context, payout domain.PayoutID, within time.Duration) (uint64, error)
	// End notes that the provider did not take the send Begin marked.
	End(ctx context.Context, payout domain.PayoutID, began uint64) error
	// Uncertainty is what the notes on payout say now.
	Uncertainty(ctx context.Context, payout domain.PayoutID) (worker.Uncertainty, error)
	// Decide notes that payout is failed for reason and sent no more, if
	// nothing was noted since u was read (else worker.ErrNotedSince); it
	// returns the reason decided, another instance's if it decided first.
	// Begin answers *worker.DecidedError from then on.
	Decide(ctx context.Context, payout domain.PayoutID, u worker.Uncertainty, reason string) (string, error)
}

// SendsIn is the SendLog kept in the dead-letter lease stream of d, for
// part (worker.DeadLetters.BeginUncertain).
func SendsIn(d *worker.DeadLetters, part string) SendLog { return sendsIn{d, part} }

type sendsIn struct {
	d    *worker.DeadLetters
	part string
}

func (s sendsIn) Begin(ctx context.Context, id domain.PayoutID, within time.Duration) (uint64, error) {
	return s.d.BeginUncertain(ctx, s.part, string(id), within)
}

func (s sendsIn) End(ctx context.Context, id domain.PayoutID, began uint64) error {
	return s.d.EndUncertain(ctx, s.part, string(id), began)
}

func (s sendsIn) Uncertainty(ctx context.Context, id domain.PayoutID) (worker.Uncertainty, error) {
	return s.d.Uncertainty(ctx, s.part, string(id))
}

func (s sendsIn) Decide(ctx context.Context, id domain.PayoutID, u worker.Uncertainty, reason string) (string, error) {
	return s.d.Decide(ctx, s.part, string(id), u, reason)
}

func (c *Config) setDefaults() {
	if c.SettleTimeout == 0 {
		c.SettleTimeout = 15 * time.Second
	}
	if c.SendArrival == 0 {
		c.SendArrival = 30 * time.Second
	}
	if c.PendingRetry == 0 {
		c.PendingRetry = 30 * time.Second
	}
	if c.RefusalLag == 0 {
		c.RefusalLag = time.Minute
	}
	if c.UnknownEventRetry == 0 {
		c.UnknownEventRetry = 30 * time.Second
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Codec == nil {
		errs = append(errs, errors.New("a codec is required"))
	}
	if c.Orders == nil || c.Deposits == nil || c.Wallets == nil || c.Payouts == nil {
		errs = append(errs, errors.New("the orders, deposits, wallets and payouts handlers are required"))
	}
	if c.SettleTimeout < 0 || c.SendArrival < 0 {
		errs = append(errs, errors.New("settle timeout and send arrival must not be negative"))
	}
	if c.SettleTimeout > worker.MaxUncertainWait || c.SendArrival > worker.MaxUncertainWait || c.SettleTimeout+c.SendArrival > worker.MaxUncertainWait {
		errs = append(errs, fmt.Errorf("settle timeout and send arrival must not be more than %v together (a send's bound; its note outlives the bound and the refusal lag)", worker.MaxUncertainWait))
	}
	if c.PendingRetry < 0 || c.UnknownEventRetry < 0 || c.RefusalLag < 0 {
		errs = append(errs, errors.New("retry delays must not be negative"))
	}
	if c.RefusalLag > worker.MaxUncertainWait {
		errs = append(errs, fmt.Errorf("refusal lag %v must not be more than %v (a send's note outlives its bound and the refusal lag)", c.RefusalLag, worker.MaxUncertainWait))
	}
	if c.Provider != nil && c.Sends == nil {
		errs = append(errs, errors.New("a send log is required with a provider"))
	}
	return errors.Join(errs...)
}

// Managers are the process managers. They are safe for concurrent use.
type Managers struct {
	cfg Config
}

// New returns the process managers.
func New(cfg Config) (*Managers, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	return &Managers{cfg: cfg}, nil
}

// settlePoll is how often a payout's status is asked while it is pending.
var settlePoll = firmbanking.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Factor: 2, Jitter: true}

// decode decodes one event of c (Decode, with this manager's wait).
func (m *Managers) decode(c eventstore.Commit, env eventstore.Envelope) (domain.Event, error) {
	return Decode(m.cfg.Codec, c, env, m.cfg.UnknownEventRetry, m.cfg.Log)
}

// Decode decodes one event of commit c for a reactor. An event type this
// engine does not know (written by a newer version during a rolling
// upgrade) is a wait of wait for an instance that knows it
// (worker.RetryAfter with a nil error), not a failure.
func Decode(codec *domain.Codec, c eventstore.Commit, env eventstore.Envelope, wait time.Duration, log zerolog.Logger) (domain.Event, error) {
	ev, err := codec.Decode(env.EventType, env.SchemaVersion, env.Data)
	if errors.Is(err, domain.ErrUnknownEventType) {
		log.Warn().Err(err).Str("aggregate", c.Ref().String()).Uint64("seq", uint64(c.Seq)).Str("event_id", env.EventID).
			Str("retry_in", wait.String()).Msg("event this engine does not know (from a newer version?); waiting")
		return nil, worker.RetryAfter(wait, nil)
	}
	return ev, err
}

// ReactToOrder settles the refunds of an order commit. Commands settle them
// as they go; this runs for every order commit through a reactor shared by
// all instances, so that a refund is settled even when the command that
// wrote it died before it could (the credit is idempotent).
func (m *Managers) ReactToOrder(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := m.decode(c, env)
		if err != nil {
			return err
		}
		if r, ok := ev.(domain.OrderRefunded); ok {
			meta := commands.Meta{Command: "reactor.order_refund", CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "reactor"}
			if _, err := m.cfg.Wallets.SettleRefund(ctx, meta, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReactToMoney carries out, for every wallet and deposit commit, what must
// follow for sure: withdrawals and refunds to the bank are recorded as
// payouts (payout.requested), which SendPayouts sends, resolved orphans
// are paid out of suspense, and a wallet's payment of an order is taken by
// the order or returned to the wallet. It never calls the provider, so a slow
// or refusing provider delays no wallet or deposit reaction. It runs
// through a reactor shared by all instances; every step is idempotent.
//
// A refund to the bank without a bank account returns worker.Permanent: it
// can never succeed.
func (m *Managers) ReactToMoney(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := m.decode(c, env)
		if err != nil {
			return err
		}
		meta := commands.Meta{Command: "reactor.money", CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "reactor"}
		switch e := ev.(type) {
		case domain.WalletDebited:
			_, err = m.cfg.Payouts.Request(ctx, meta, domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: e.To, PayFrom: m.cfg.Wallets.Config().CollectAccount.Number,
				Source: domain.PayoutFromWallet, SourceID: string(e.UserID), FromAccount: domain.AccountWallet(e.UserID), RequestedAt: e.DebitAt})
		case domain.WalletSpent:
			var returned *commands.PaymentReturnedError
			if _, err = m.cfg.Orders.CompleteWalletPayment(ctx, meta, e); errors.As(err, &returned) {
				err = nil // the order did not take it: the money is back in the wallet
			}
		case domain.DepositResolved:
			if e.Action == domain.ResolveRefundToBank {
				err = m.requestRefundToBank(ctx, meta, e)
			} else {
				_, err = m.cfg.Deposits.CarryOut(ctx, meta, e)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// requestRefundToBank records the payout that sends a resolved orphan back
// to its sender: from the account its money is in (the one it arrived on,
// or the account a dedicated one is of).
func (m *Managers) requestRefundToBank(ctx context.Context, meta commands.Meta, e domain.DepositResolved) error {
	if e.To == nil {
		return worker.Permanent(fmt.Errorf("deposit %s resolved to a refund to the bank without a bank account", e.DepositID))
	}
	d, err := m.cfg.Deposits.Get(ctx, e.DepositID)
	if err != nil {
		return err
	}
	_, err = m.cfg.Payouts.Request(ctx, meta, domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: *e.To, PayFrom: d.Landed(),
		Source: domain.PayoutFromDeposit, SourceID: string(e.DepositID), FromAccount: domain.AccountSuspense, RequestedAt: e.ResolvedAt})
	return err
}

// SendPayouts sends, for every payout commit that requests one, the
// payout through the provider (idempotent on the payout ID: a resend after
// a lost answer never sends twice) and records its final result once. It
// runs through a reactor of its own, shared by the instances that have a
// provider, that handles several payouts at once. The money of a payout
// failed goes back through ReturnFailedPayouts.
//
// Outcomes (package worker):
//   - settled, or failed by the provider (a failed status, or a refusal:
//     firmbanking.ErrRefused, the transfer is invalid or its account is
//     refused) → payout.settled or payout.failed, done. A refusal the
//     provider does not know is a wait of RefusalLag, then one more send:
//     refused and unknown again, the money was not sent and is returned;
//   - asked to come back later (429 or 503 with a Retry-After longer than
//     SettleTimeout left: firmbanking.ThrottledError) → a wait of what the
//     provider asked for (worker.RetryAfter with a nil error);
//   - still pending after SettleTimeout → a wait (worker.RetryAfter with a
//     nil error) of PendingRetry, never dead-lettered; a status check the
//     provider throttled past SettleTimeout ends the polling at once, and
//     the wait is then at least what the provider asked for (as for the
//     status checks after a refusal or a decision);
//   - the ID already used for a different transfer
//     (firmbanking.ErrIdempotencyMismatch) → worker.Permanent: that transfer
//     may have been sent, so an operator decides;
//   - a payout an operator recorded meanwhile (payout.resolve) while a send
//     of it may have been taken → the provider is asked again: pending is a
//     wait of PendingRetry, a final result that contradicts the record is
//     worker.Permanent (followRecorded);
//   - anything else (provider unavailable, timeouts, 429, a wrong token) →
//     a failure, retried after a backoff and dead-lettered when the
//     reactor's attempts run out.
func (m *Managers) SendPayouts(ctx context.Context, c eventstore.Commit) error {
	if m.cfg.Provider == nil {
		return errors.New("no firm-banking provider to send payouts through")
	}
	return m.eachPayoutEvent(ctx, c, func(ctx context.Context, meta commands.Meta, ev domain.Event) error {
		if e, ok := ev.(domain.PayoutRequested); ok {
			return m.payout(ctx, meta, e)
		}
		return nil
	})
}

// ReturnFailedPayouts returns, for every commit that fails a payout, the
// payout's money to its source, once (a repeat changes nothing), whoever
// recorded the failure: SendPayouts, from the provider's answer, or an
// operator (payout.resolve). It runs through a reactor of its own, shared
// by all instances, with or without a provider.
func (m *Managers) ReturnFailedPayouts(ctx context.Context, c eventstore.Commit) error {
	return m.eachPayoutEvent(ctx, c, func(ctx context.Context, meta commands.Meta, ev domain.Event) error {
		e, ok := ev.(domain.PayoutFailed)
		if !ok {
			return nil
		}
		p, err := m.cfg.Payouts.Get(ctx, e.PayoutID)
		if err != nil {
			return err
		}
		return m.returnMoney(ctx, meta, p)
	})
}

// eachPayoutEvent calls fn for each event of payout commit c, with the
// meta of a reaction to it.
func (m *Managers) eachPayoutEvent(ctx context.Context, c eventstore.Commit, fn func(context.Context, commands.Meta, domain.Event) error) error {
	for _, env := range c.Events {
		ev, err := m.decode(c, env)
		if err != nil {
			return err
		}
		meta := commands.Meta{Command: "reactor.payout", CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "reactor"}
		if err := fn(ctx, meta, ev); err != nil {
			return err
		}
	}
	return nil
}

// payout has the provider send a recorded payout and records the final
// result once. The money of a failed payout goes back when its payout.failed
// commit arrives (ReturnFailedPayouts).
func (m *Managers) payout(ctx context.Context, meta commands.Meta, req domain.PayoutRequested) error {
	p, err := m.cfg.Payouts.Request(ctx, meta, req) // recorded already: its current state
	if err != nil {
		return err
	}
	if p.Status != domain.PayoutRequestedStatus {
		return m.followRecorded(ctx, p) // recorded meanwhile (payout.resolve)
	}
	result, err := m.send(ctx, p)
	if err != nil {
		return err
	}
	if p, err = m.cfg.Payouts.RecordResult(ctx, meta, p.ID, result); err != nil {
		return err
	}
	if err := contradiction(p, result); err != nil {
		m.cfg.Log.Error().Err(err).Str("payout_id", string(p.ID)).Int64("amount", p.Amount).Msg("the provider's result contradicts the recorded one")
		return worker.Permanent(err)
	}
	return nil
}

// followRecorded checks payout p, whose result an operator recorded
// (payout.resolve) while the part still worked on it, against the
// provider each time the part is handed its commit again. A send made
// before the record may have been taken (its note not ended), and a
// transfer the provider reported pending when the operator forced a
// result may end the other way: while the provider reports it pending,
// the part waits (PendingRetry) and asks again; a final result that
// contradicts the record is a permanent failure naming it
// (contradiction), for an operator to mend by hand (the money went out
// twice, or never left). Nothing ends the work quietly before the
// provider has had its say: a payout it does not know counts as such
// only once a send taken before would show (refusalWait), and then
// contradicts a record of it settled. No send the provider may have
// taken, or a result that agrees, ends the work.
func (m *Managers) followRecorded(ctx context.Context, p domain.Payout) error {
	u, err := m.cfg.Sends.Uncertainty(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("payout %s recorded %s; reading the sends made before: %w", p.ID, p.Status, err)
	}
	if u.LastOpen.IsZero() {
		return nil
	}
	st, err := m.cfg.Provider.Status(ctx, string(p.ID))
	var throttled *firmbanking.ThrottledError
	switch {
	case errors.Is(err, firmbanking.ErrUnknownTransfer):
		if wait := m.refusalWait(u); wait > 0 {
			return worker.RetryAfter(wait, nil)
		}
		if p.Status == domain.PayoutSettledStatus {
			// No send was taken: the money recorded as gone never left.
			err := fmt.Errorf("payout %s: the provider does not know it, but it was recorded settled: its money never left and is owed back to %s %s; return it by hand", p.ID, p.Source, p.SourceID)
			m.cfg.Log.Error().Err(err).Str("payout_id", string(p.ID)).Int64("amount", p.Amount).Msg("the provider's result contradicts the recorded one")
			return worker.Permanent(err)
		}
		return nil
	case errors.As(err, &throttled):
		return worker.RetryAfter(throttled.Wait, nil)
	case err != nil:
		return fmt.Errorf("payout %s recorded %s; asking the provider whether a send made before agrees: %w", p.ID, p.Status, err)
	case !st.Status.Final():
		m.cfg.Log.Info().Str("payout_id", string(p.ID)).Str("status", string(p.Status)).
			Msg("payout recorded by an operator, but a send of it is pending at the provider; asking again later")
		return worker.RetryAfter(m.cfg.PendingRetry, nil)
	}
	if err := contradiction(p, finalResult(p, st, m.cfg.Payouts.Now())); err != nil {
		m.cfg.Log.Error().Err(err).Str("payout_id", string(p.ID)).Int64("amount", p.Amount).Msg("the provider's result contradicts the recorded one")
		return worker.Permanent(err)
	}
	return nil
}

// send drives payout p to its final result at the provider: the
// payout.settled or payout.failed to record, or the outcome to return.
//
// Each send is noted (Sends) before it is made, so that a send the
// provider takes is known to every instance even when this one never
// learns of it (killed, cut off, its answer lost), and noted again if the
// provider did not take it (firmbanking.ErrNotTaken): a refusal waits for
// the sends the provider may have taken.
func (m *Managers) send(ctx context.Context, p domain.Payout) (domain.Event, error) {
	// The send's deadline is set before its note, so that every attempt of
	// it is made within SettleTimeout of the note, and may be taken up to
	// SendArrival later.
	sctx, cancel := context.WithTimeout(ctx, m.cfg.SettleTimeout)
	defer cancel()
	began, err := m.cfg.Sends.Begin(ctx, p.ID, m.cfg.SettleTimeout+m.cfg.SendArrival)
	var decided *worker.DecidedError
	if errors.As(err, &decided) {
		return m.decidedResult(ctx, p, decided.Reason)
	}
	if err != nil {
		return nil, fmt.Errorf("payout %s: noting the send before making it: %w", p.ID, err)
	}
	res, err := firmbanking.Settle(sctx, m.cfg.Provider, firmbanking.Transfer{ID: string(p.ID), Amount: p.Amount, To: p.To, Memo: "bankbook"}, settlePoll)
	if firmbanking.NotTaken(err) {
		if nerr := m.cfg.Sends.End(ctx, p.ID, began); nerr != nil {
			// The send stays noted as one the provider may have taken: a
			// refusal of the payout waits longer, nothing worse.
			m.cfg.Log.Warn().Err(nerr).Str("payout_id", string(p.ID)).Msg("could not note that the provider did not take a send")
		}
	}
	now := m.cfg.Payouts.Now()
	var throttled *firmbanking.ThrottledError
	switch {
	case errors.Is(err, firmbanking.ErrPending):
		// Pending; a provider that throttled the status checks asked
		// when to come back, and is not asked before.
		wait := m.cfg.PendingRetry
		if errors.As(err, &throttled) {
			wait = max(wait, throttled.Wait)
		}
		m.cfg.Log.Info().Str("payout_id", string(p.ID)).Str("provider_ref", res.ProviderRef).Str("retry_in", wait.String()).
			Msg("payout still pending at the provider; asking again later")
		return nil, worker.RetryAfter(wait, nil)
	case errors.Is(err, firmbanking.ErrRefused):
		// Refused as it is now. Whether anything was ever sent under this
		// ID is the provider's to say: an earlier attempt (an older
		// version's, before a validation rule tightened, or before the
		// account changed, whose answer was lost) may have been accepted,
		// and failing the payout then would pay the money out twice. A
		// provider may not show a transfer it accepted a moment ago, so
		// "unknown" counts only RefusalLag after the payout's first send
		// and after the latest send the provider may have taken:
		// until then the payout waits (a wait, not a failure), and is
		// sent, refused and asked again.
		st, serr := m.cfg.Provider.Status(ctx, string(p.ID))
		switch {
		case errors.Is(serr, firmbanking.ErrUnknownTransfer):
			return m.failRefused(ctx, p, err)
		case errors.As(serr, &throttled):
			return nil, worker.RetryAfter(throttled.Wait, nil)
		case serr != nil:
			return nil, fmt.Errorf("payout %s refused; asking the provider whether an earlier attempt was accepted: %w", p.ID, serr)
		case st.Status == firmbanking.StatusFailed || st.Status == firmbanking.StatusSettled:
			return finalResult(p, st, now), nil
		default:
			m.cfg.Log.Info().Str("payout_id", string(p.ID)).Msg("payout refused now, but an earlier attempt is pending at the provider; asking again later")
			return nil, worker.RetryAfter(m.cfg.PendingRetry, nil)
		}
	case errors.Is(err, firmbanking.ErrIdempotencyMismatch):
		return nil, worker.Permanent(fmt.Errorf("payout %s: %w", p.ID, err))
	case errors.As(err, &throttled):
		// The provider said when to come back: a wait, not a failure.
		m.cfg.Log.Info().Str("payout_id", string(p.ID)).Str("retry_in", throttled.Wait.String()).Msg("the provider asked to come back later; the payout waits")
		return nil, worker.RetryAfter(throttled.Wait, nil)
	case err != nil:
		// Unless ErrNotTaken, the provider may have taken this send: its
		// note stays, and a refusal waits for it.
		return nil, fmt.Errorf("payout %s: %w", p.ID, err)
	}
	return finalResult(p, res, now), nil
}

// decidedResult is the result to record for payout p once its failure was
// decided in the notes, for reason (by an operator's forced resolve, or by
// an instance that found it refused and unknown to the provider): no send
// starts after the decision, but one made before it may have been taken by
// the provider, its answer lost (its instance killed, stopped, cut off).
// Without such a send the failure stands. With one, the provider says:
// settled or failed is recorded, pending waits, and unknown counts only
// RefusalLag after the payout's first send and after the latest time a
// send may have been taken (refusalWait), as a refusal does.
func (m *Managers) decidedResult(ctx context.Context, p domain.Payout, reason string) (domain.Event, error) {
	u, err := m.cfg.Sends.Uncertainty(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("payout %s failed by a decision; reading the sends made before it: %w", p.ID, err)
	}
	now := m.cfg.Payouts.Now()
	if u.LastOpen.IsZero() {
		m.cfg.Log.Warn().Str("payout_id", string(p.ID)).Str("reason", reason).Msg("payout failed by a decision, and no send the provider may have taken: recording the failure")
		return domain.PayoutFailed{PayoutID: p.ID, Reason: reason, FailedAt: now}, nil
	}
	st, err := m.cfg.Provider.Status(ctx, string(p.ID))
	var throttled *firmbanking.ThrottledError
	switch {
	case errors.Is(err, firmbanking.ErrUnknownTransfer):
		if wait := m.refusalWait(u); wait > 0 {
			m.cfg.Log.Info().Str("payout_id", string(p.ID)).Str("ask_again_in", wait.String()).
				Msg("payout failed by a decision, and unknown to the provider; asking again once a send taken before the decision would show")
			return nil, worker.RetryAfter(wait, nil)
		}
		m.cfg.Log.Warn().Str("payout_id", string(p.ID)).Str("reason", reason).Msg("payout failed by a decision, and never taken by the provider: recording the failure")
		return domain.PayoutFailed{PayoutID: p.ID, Reason: reason, FailedAt: now}, nil
	case errors.As(err, &throttled):
		return nil, worker.RetryAfter(throttled.Wait, nil)
	case err != nil:
		return nil, fmt.Errorf("payout %s failed by a decision; asking the provider whether a send before it was taken: %w", p.ID, err)
	case st.Status == firmbanking.StatusFailed || st.Status == firmbanking.StatusSettled:
		if st.Status == firmbanking.StatusSettled {
			m.cfg.Log.Warn().Str("payout_id", string(p.ID)).Str("reason", reason).Msg("payout failed by a decision, but the provider settled a send made before it: recording the settlement")
		}
		return finalResult(p, st, now), nil
	default:
		m.cfg.Log.Info().Str("payout_id", string(p.ID)).Msg("payout failed by a decision, but a send made before it is pending at the provider; asking again later")
		return nil, worker.RetryAfter(m.cfg.PendingRetry, nil)
	}
}

// finalResult is the event that records the provider's final result res
// (failed, or else settled) of payout p, at now.
func finalResult(p domain.Payout, res firmbanking.Result, now time.Time) domain.Event {
	if res.Status == firmbanking.StatusFailed {
		return domain.PayoutFailed{PayoutID: p.ID, Reason: res.Reason, FailedAt: now}
	}
	return p.Settled(res.Fee, res.ProviderRef, now)
}

// failRefused fails payout p, refused (refusal) and unknown to the
// provider, once that counts: RefusalLag after its first send, and after
// the latest time a send by any instance may have been taken (a send's
// note plus its bound), whichever is later (Sends, by one clock). Until
// then it waits. The failure is decided in the notes only if no send was
// noted since they were read, and no send is made after it (ADR 0014), so
// two instances cannot fail it while the other sends it. Sends from before
// the notes were kept (an older version's) all came before the first noted
// one, once every older instance has stopped.
func (m *Managers) failRefused(ctx context.Context, p domain.Payout, refusal error) (domain.Event, error) {
	reason := refusalReason(refusal)
	for range maxDecideRaces {
		u, err := m.cfg.Sends.Uncertainty(ctx, p.ID)
		if err != nil {
			return nil, fmt.Errorf("payout %s refused; asking when a send the provider may have taken was last made: %w", p.ID, err)
		}
		// A decision stops later sends, not the ones made before it: they
		// are waited for all the same.
		if wait := m.refusalWait(u); wait > 0 {
			m.cfg.Log.Info().Str("payout_id", string(p.ID)).Str("ask_again_in", wait.String()).
				Msg("payout refused, and unknown to the provider; asking again once an earlier acceptance would show")
			return nil, worker.RetryAfter(wait, nil)
		}
		decided, err := m.cfg.Sends.Decide(ctx, p.ID, u, reason)
		if errors.Is(err, worker.ErrNotedSince) {
			continue // another instance's send or reading: read again
		}
		if err != nil {
			return nil, fmt.Errorf("payout %s refused; deciding its failure: %w", p.ID, err)
		}
		m.cfg.Log.Warn().Err(refusal).Str("payout_id", string(p.ID)).Int64("amount", p.Amount).Str("source", p.Source).Str("source_id", p.SourceID).
			Msg("payout refused by the provider, which never accepted it; failing it and returning the money")
		return domain.PayoutFailed{PayoutID: p.ID, Reason: decided, FailedAt: m.cfg.Payouts.Now()}, nil
	}
	return nil, fmt.Errorf("payout %s refused; other instances noted sends or readings while it was decided, %d times", p.ID, maxDecideRaces)
}

// maxDecideRaces bounds how often failRefused reads the notes again after
// another note came before its decision.
const maxDecideRaces = 5

// refusalWait is how long a payout refused and unknown to the provider,
// whose notes say u, must still wait before that counts (failRefused).
func (m *Managers) refusalWait(u worker.Uncertainty) time.Duration {
	quiet, known := u.QuietFor(m.cfg.Payouts.Now())
	if !known {
		return m.cfg.RefusalLag // the notes of this very send are gone: start over
	}
	return m.cfg.RefusalLag - quiet
}

// contradiction is an error when the provider's result for payout p (the
// payout.settled or payout.failed that send returned) is not what p, as
// recorded, says: an operator recorded the other result (payout.resolve)
// while the send was under way. One side of it needs mending by hand.
func contradiction(p domain.Payout, result domain.Event) error {
	switch result.(type) {
	case domain.PayoutSettled:
		if p.Status == domain.PayoutFailedStatus {
			return fmt.Errorf("payout %s: the provider settled it, but it was recorded failed (%s) and its money went back to %s %s: the money went out twice; recover it by hand", p.ID, p.Reason, p.Source, p.SourceID)
		}
	case domain.PayoutFailed:
		if p.Status == domain.PayoutSettledStatus {
			return fmt.Errorf("payout %s: the provider failed it, but it was recorded settled: its money never left and is owed back to %s %s; return it by hand", p.ID, p.Source, p.SourceID)
		}
	}
	return nil
}

// maxReasonLen bounds the provider's words kept in a refusal's reason.
const maxReasonLen = 200

// refusalReason is the failure reason recorded for a refused payout:
// "refused: " and the refusal, shortened.
func refusalReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "firmbanking: ")
	if r := []rune(msg); len(r) > maxReasonLen {
		msg = string(r[:maxReasonLen]) + "…"
	}
	return domain.PayoutRefusedPrefix + msg
}

// returnMoney gives the money of a failed payout back to its source, once.
func (m *Managers) returnMoney(ctx context.Context, meta commands.Meta, p domain.Payout) error {
	now := m.cfg.Payouts.Now()
	switch p.Source {
	case domain.PayoutFromWallet:
		_, err := m.cfg.Wallets.Credit(ctx, meta, domain.CreditWallet{UserID: domain.UserID(p.SourceID), Amount: p.Amount, Kind: domain.CreditPayoutReversal,
			Ref: domain.ReversalRef(p.ID), FromAccount: domain.AccountPayoutsPending, Now: now})
		return err
	case domain.PayoutFromDeposit:
		return m.cfg.Deposits.Reopen(ctx, meta, domain.DepositReopened{DepositID: domain.DepositID(p.SourceID), Amount: p.Amount, PayoutID: p.ID, Reason: p.Reason, ReopenedAt: now})
	}
	return nil
}
