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
	// without it payouts stay requested and are retried until one is
	// configured.
	Provider firmbanking.Provider
	// SettleTimeout bounds how long one payout waits for the provider's final
	// answer before the reactor tries again later. Default 15s.
	SettleTimeout time.Duration
	// Log receives one line per payout result.
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.SettleTimeout == 0 {
		c.SettleTimeout = 15 * time.Second
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

// ReactToOrder settles the refunds of an order commit. Commands settle them
// as they go; this runs for every order commit through a reactor shared by
// all instances, so that a refund is settled even when the command that
// wrote it died before it could (the credit is idempotent).
func (m *Managers) ReactToOrder(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := m.cfg.Codec.Decode(env.EventType, env.SchemaVersion, env.Data)
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
func (m *Managers) ReactToMoney(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := m.cfg.Codec.Decode(env.EventType, env.SchemaVersion, env.Data)
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
		return fmt.Errorf("deposit %s resolved to a refund to the bank without a bank account", e.DepositID)
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
// source. A payout still pending at the provider returns an error, so the
// reactor tries again later.
func (m *Managers) payout(ctx context.Context, meta commands.Meta, req domain.PayoutRequested) error {
	p, err := m.cfg.Payouts.Request(ctx, meta, req)
	if err != nil {
		return err
	}
	if p.Status == domain.PayoutRequestedStatus && m.cfg.Provider == nil {
		return fmt.Errorf("payout %s stays requested: %w", p.ID, ErrNoProvider)
	}
	if p.Status == domain.PayoutRequestedStatus {
		sctx, cancel := context.WithTimeout(ctx, m.cfg.SettleTimeout)
		res, err := firmbanking.Settle(sctx, m.cfg.Provider, firmbanking.Transfer{ID: string(p.ID), Amount: p.Amount, To: p.To, Memo: "bankbook"}, settlePoll)
		cancel()
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
