package commands

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
)

// Deps are the stores the handlers work with.
type Deps struct {
	Events     EventStore
	Codec      *domain.Codec
	Names      Names
	Timers     Timers
	Watermarks Watermarks
	// Accounts is the dedicated account directory of store links; nil: no
	// links (Handlers.Links is nil, and every deposit not on the collection
	// account is an unknown_account orphan).
	Accounts Accounts
}

// Handlers are the command handlers of every area of one instance, over one
// repository per aggregate type (so one cache per type).
type Handlers struct {
	Orders   *Orders
	Deposits *Deposits
	Wallets  *Wallets
	Payouts  *Payouts
	Links    *Links
	// Notifications are the messages to stores, distributors and buyers.
	Notifications *Notifications
}

// New returns the handlers of every area.
func New(d Deps, cfg Config, log zerolog.Logger) (Handlers, error) {
	core, err := NewCore(d.Events, d.Codec, cfg, log)
	if err != nil {
		return Handlers{}, err
	}
	if d.Names == nil || d.Timers == nil || d.Watermarks == nil {
		return Handlers{}, errors.New("commands: every dependency is required")
	}
	orders := NewRepository(core, domain.OrderAggregate)
	deposits := NewRepository(core, domain.DepositAggregate)
	wallets := &Wallets{Core: core, wallets: NewRepository(core, domain.WalletAggregate)}
	var links *Links
	if d.Accounts != nil {
		links = &Links{Core: core, links: NewRepository(core, domain.LinkAggregate), accounts: d.Accounts, marks: d.Watermarks}
	}
	return Handlers{
		Orders: &Orders{Core: core, orders: orders, wallets: wallets, names: d.Names, timers: d.Timers, marks: d.Watermarks},
		Deposits: &Deposits{Core: core, deposits: deposits, orders: orders, wallets: wallets, names: d.Names, marks: d.Watermarks, links: links,
			runs: NewRepository(core, domain.ReconciliationAggregate)},
		Wallets:       wallets,
		Payouts:       &Payouts{Core: core, payouts: NewRepository(core, domain.PayoutAggregate)},
		Links:         links,
		Notifications: &Notifications{Core: core, notifications: NewRepository(core, domain.NotificationAggregate)},
	}, nil
}
