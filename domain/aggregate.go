package domain

// Aggregate is an aggregate type as a value: the type token its commits are
// stored under and the function that evolves its state. A repository is
// parameterised by one; nothing else about an aggregate type is needed to
// load, cache or append it.
type Aggregate[S any] struct {
	// Type is the aggregate type token (a subject token: no '.', '*', '>'
	// or spaces).
	Type string
	// Apply returns the state after an event. It never fails and never
	// mutates the state it is given.
	Apply func(S, Event) S
}

// bankbook's aggregates, each declared once.
var (
	OrderAggregate   = Aggregate[Order]{Type: AggregateOrder, Apply: Order.Apply}
	DepositAggregate = Aggregate[Deposit]{Type: AggregateDeposit, Apply: Deposit.Apply}
	WalletAggregate  = Aggregate[Wallet]{Type: AggregateWallet, Apply: Wallet.Apply}
	PayoutAggregate  = Aggregate[Payout]{Type: AggregatePayout, Apply: Payout.Apply}
	LinkAggregate    = Aggregate[Link]{Type: AggregateLink, Apply: Link.Apply}
	// NotificationAggregate is the outbox of messages (notification.go).
	NotificationAggregate = Aggregate[Notification]{Type: AggregateNotification, Apply: Notification.Apply}
	// ReconciliationAggregate is a reconciliation run (reconcile.go).
	ReconciliationAggregate = Aggregate[Reconciliation]{Type: AggregateReconciliation, Apply: Reconciliation.Apply}
)
