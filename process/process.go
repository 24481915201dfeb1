package process

import (
	"context"
	"errors"
	"fmt"
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
	// Deposits, Wallets and Payouts are the command handlers the steps run
	// through. Required.
	Deposits *commands.Deposits
	Wallets  *commands.Wallets
	Payouts  *commands.Payouts
	// Provider sends payouts (withdrawals, refunds to the bank). Optional:
	// without it payouts stay requested, and their commits wait
	// (NoProviderRetry) until an instance with a provider takes them.
	Provider firmbanking.Provider
	// SettleTimeout bounds how long one payout waits for the provider's final
	// answer before the reactor tries again later. Default 15s.
	SettleTimeout time.Duration
	// PendingRetry is how long a commit whose payout is still pending at the
	// provider after SettleTimeout waits before it is handled again. A wait,
	// not a failure: it never leads to a dead letter. Default 30s.
	PendingRetry time.Duration
	// NoProviderRetry is how long a commit whose payout cannot be sent (no
	// provider configured) waits before it is handled again, by this or
	// another instance. A wait, not a failure. Default 1m.
	NoProviderRetry time.Duration
	// UnknownEventRetry is how long a commit with an event type this engine
	// does not know (written by a newer version during a rolling upgrade)
	// waits for an instance that knows it. A wait, not a failure. Default 30s.
	UnknownEventRetry time.Duration
	// Log receives one line per payout result and per wait.
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.SettleTimeout == 0 {
		c.SettleTimeout = 15 * time.Second
	}
	if c.PendingRetry == 0 {
		c.PendingRetry = 30 * time.Second
	}
	if c.NoProviderRetry == 0 {
		c.NoProviderRetry = time.Minute
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
	if c.Deposits == nil || c.Wallets == nil || c.Payouts == nil {
		errs = append(errs, errors.New("the deposits, wallets and payouts handlers are required"))
	}
	if c.SettleTimeout < 0 {
		errs = append(errs, errors.New("settle timeout must not be negative"))
	}
	if c.PendingRetry < 0 || c.NoProviderRetry < 0 || c.UnknownEventRetry < 0 {
		errs = append(errs, errors.New("retry delays must not be negative"))
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

// decode decodes one event of c. An event type this engine does not know
// (written by a newer version) is a wait for an instance that knows it, not
// a failure.
func (m *Managers) decode(c eventstore.Commit, env eventstore.Envelope) (domain.Event, error) {
	ev, err := m.cfg.Codec.Decode(env.EventType, env.SchemaVersion, env.Data)
	if errors.Is(err, domain.ErrUnknownEventType) {
		m.cfg.Log.Warn().Err(err).Str("aggregate", c.Ref().String()).Uint64("seq", uint64(c.Seq)).Str("event_id", env.EventID).
			Str("retry_in", m.cfg.UnknownEventRetry.String()).Msg("event this engine does not know (from a newer version?); waiting")
		return nil, worker.RetryAfter(m.cfg.UnknownEventRetry, nil)
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
// follow for sure: withdrawals and refunds to the bank are sent through the
// provider and their result recorded (a failed one returns the money), and
// resolved orphans are paid out of suspense. It runs through a reactor
// shared by all instances; every step is idempotent.
//
// A payout still pending at the provider after SettleTimeout, or one that
// cannot be sent for want of a provider, returns worker.RetryAfter with a
// nil error: the commit waits (PendingRetry, NoProviderRetry) and is never
// dead-lettered for it. A refund to the bank without a bank account returns
// worker.Permanent: it can never succeed.
func (m *Managers) ReactToMoney(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := m.decode(c, env)
		if err != nil {
			return err
		}
		meta := commands.Meta{Command: "reactor.money", CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "reactor"}
		switch e := ev.(type) {
		case domain.WalletDebited:
			err = m.payout(ctx, meta, domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: e.To, PayFrom: m.cfg.Wallets.Config().CollectAccount.Number,
				Source: domain.PayoutFromWallet, SourceID: string(e.UserID), FromAccount: domain.AccountWallet(e.UserID), RequestedAt: e.DebitAt})
		case domain.DepositResolved:
			if e.Action == domain.ResolveRefundToBank {
				err = m.refundToBank(ctx, meta, e)
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

// refundToBank sends a resolved orphan back to its sender: from the account
// it arrived on.
func (m *Managers) refundToBank(ctx context.Context, meta commands.Meta, e domain.DepositResolved) error {
	if e.To == nil {
		return worker.Permanent(fmt.Errorf("deposit %s resolved to a refund to the bank without a bank account", e.DepositID))
	}
	d, err := m.cfg.Deposits.Get(ctx, e.DepositID)
	if err != nil {
		return err
	}
	return m.payout(ctx, meta, domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: *e.To, PayFrom: d.AccountNumber,
		Source: domain.PayoutFromDeposit, SourceID: string(e.DepositID), FromAccount: domain.AccountSuspense, RequestedAt: e.ResolvedAt})
}

// payout records the payout, has the provider send it (idempotent on the
// payout ID: a resend after a lost answer never sends twice), records the
// final result once, and returns the money of a failed payout to its
// source. A payout still pending at the provider, or without a provider,
// returns a wait (worker.RetryAfter with a nil error): the reactor tries
// again later, and never gives up on it.
func (m *Managers) payout(ctx context.Context, meta commands.Meta, req domain.PayoutRequested) error {
	p, err := m.cfg.Payouts.Request(ctx, meta, req)
	if err != nil {
		return err
	}
	if p.Status == domain.PayoutRequestedStatus && m.cfg.Provider == nil {
		m.cfg.Log.Info().Str("payout_id", string(p.ID)).Int64("amount", p.Amount).Str("retry_in", m.cfg.NoProviderRetry.String()).
			Msg("payout waits: no firm-banking provider is configured")
		return worker.RetryAfter(m.cfg.NoProviderRetry, nil)
	}
	if p.Status == domain.PayoutRequestedStatus {
		sctx, cancel := context.WithTimeout(ctx, m.cfg.SettleTimeout)
		res, err := firmbanking.Settle(sctx, m.cfg.Provider, firmbanking.Transfer{ID: string(p.ID), Amount: p.Amount, To: p.To, Memo: "bankbook"}, settlePoll)
		cancel()
		if errors.Is(err, firmbanking.ErrPending) {
			m.cfg.Log.Info().Str("payout_id", string(p.ID)).Str("provider_ref", res.ProviderRef).Str("retry_in", m.cfg.PendingRetry.String()).
				Msg("payout still pending at the provider; asking again later")
			return worker.RetryAfter(m.cfg.PendingRetry, nil)
		}
		if err != nil {
			return fmt.Errorf("payout %s: %w", p.ID, err)
		}
		now := m.cfg.Payouts.Now()
		var result domain.Event = domain.PayoutSettled{PayoutID: p.ID, Amount: p.Amount, Fee: res.Fee, BankAccount: p.PayFrom, ProviderRef: res.ProviderRef, SettledAt: now}
		if res.Status == firmbanking.StatusFailed {
			result = domain.PayoutFailed{PayoutID: p.ID, Reason: res.Reason, FailedAt: now}
		}
		if p, err = m.cfg.Payouts.RecordResult(ctx, meta, p.ID, result); err != nil {
			return err
		}
	}
	if p.Status != domain.PayoutFailedStatus {
		return nil
	}
	return m.returnMoney(ctx, meta, p)
}

// returnMoney gives the money of a failed payout back to its source, once.
func (m *Managers) returnMoney(ctx context.Context, meta commands.Meta, p domain.Payout) error {
	now := m.cfg.Payouts.Now()
	switch p.Source {
	case domain.PayoutFromWallet:
		_, err := m.cfg.Wallets.Credit(ctx, meta, domain.CreditWallet{UserID: domain.UserID(p.SourceID), Amount: p.Amount, Kind: domain.CreditPayoutReversal,
			Ref: "reversal:" + string(p.ID), FromAccount: domain.AccountPayoutsPending, Now: now})
		return err
	case domain.PayoutFromDeposit:
		return m.cfg.Deposits.Reopen(ctx, meta, domain.DepositReopened{DepositID: domain.DepositID(p.SourceID), Amount: p.Amount, PayoutID: p.ID, Reason: p.Reason, ReopenedAt: now})
	}
	return nil
}
