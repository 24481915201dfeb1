package soak

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// keyedCommit names the commits one attempt of a command may write: at
// most one per aggregate for a command and its idempotency key.
type keyedCommit struct {
	command, key, aggregate string
}

// facts is what the whole event stream says, as far as the checks need it.
type facts struct {
	lastSeq eventstore.Seq
	commits int
	unknown int // events the codec does not know
	// keyed counts commits per (command, key, aggregate); used counts them
	// per command + "\x00" + key.
	keyed map[keyedCommit]int
	used  map[string]int
	// recorded lists deposit.recorded by bank transaction ID; recordedKey
	// is the idempotency key of the commit that recorded a deposit.
	recorded    map[string][]domain.DepositRecorded
	recordedKey map[domain.DepositID]string
	paid        map[domain.OrderID]int
	// credits counts wallet.credited per user + "\x00" + ref.
	credits   map[string]int
	debits    map[domain.PayoutID]int
	requested map[domain.PayoutID]int
	finished  map[domain.PayoutID]int
	failed    map[domain.PayoutID]bool
	resolved  map[domain.DepositID][]domain.DepositResolved
	reopened  map[domain.DepositID]int
	// balance is every wallet's credits minus debits.
	balance map[domain.UserID]int64
	// bills are the bills issued, by ID; closed says how each bill that
	// ended ended (closedExpired or closedCancelled) and closes how many
	// times; storePaid lists store.payment_received by deposit, and
	// billPaid sums them by bill.
	bills     map[string]domain.BillIssued
	closed    map[string]string
	closes    map[string]int
	storePaid map[domain.DepositID][]domain.StorePaymentReceived
	billPaid  map[string]paidSum
	// events holds every event ID in the stream; notes the notifications
	// created, by ID, notesFor counts them per source event and recipient,
	// and sent and dead count each one's notification.sent and
	// notification.dead_lettered.
	events   map[string]bool
	notes    map[domain.NotificationID]domain.NotificationCreated
	notesFor map[string]int
	sent     map[domain.NotificationID]int
	dead     map[domain.NotificationID]int
	// called are the notifications the stream's events call for
	// (domain.NotificationIntents), each with its event and recipient.
	called map[domain.NotificationID]string
	// reconciled counts reconcile.completed per run.
	reconciled map[domain.ReconciliationID]int
}

// paidSum is what a bill was paid in the stream.
type paidSum struct {
	amount int64
	count  int
}

func creditRef(user domain.UserID, ref string) string { return string(user) + "\x00" + ref }

func newFacts() *facts {
	return &facts{
		keyed: map[keyedCommit]int{}, used: map[string]int{},
		recorded: map[string][]domain.DepositRecorded{}, recordedKey: map[domain.DepositID]string{},
		paid: map[domain.OrderID]int{}, credits: map[string]int{}, debits: map[domain.PayoutID]int{},
		requested: map[domain.PayoutID]int{}, finished: map[domain.PayoutID]int{}, failed: map[domain.PayoutID]bool{},
		resolved: map[domain.DepositID][]domain.DepositResolved{}, reopened: map[domain.DepositID]int{},
		balance: map[domain.UserID]int64{},
		bills:   map[string]domain.BillIssued{}, closed: map[string]string{}, closes: map[string]int{},
		storePaid: map[domain.DepositID][]domain.StorePaymentReceived{}, billPaid: map[string]paidSum{},
		events: map[string]bool{}, notes: map[domain.NotificationID]domain.NotificationCreated{}, notesFor: map[string]int{},
		sent: map[domain.NotificationID]int{}, dead: map[domain.NotificationID]int{},
		called: map[domain.NotificationID]string{}, reconciled: map[domain.ReconciliationID]int{},
	}
}

// readStream reads the event stream from sequence 1 to its last sequence.
func readStream(ctx context.Context, nc *nats.Conn) (*facts, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	codec := domain.Events()
	es, err := eventstore.Bind(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		return nil, err
	}
	f := newFacts()
	if f.lastSeq, err = es.LastSeq(ctx); err != nil || f.lastSeq == 0 {
		return f, err
	}
	err = es.Follow(ctx, eventstore.FollowOptions{Until: f.lastSeq}, func(_ context.Context, batch []eventstore.Commit) error {
		for _, c := range batch {
			f.add(codec, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the event stream: %w", err)
	}
	return f, nil
}

func (f *facts) add(codec *domain.Codec, c eventstore.Commit) {
	f.commits++
	if len(c.Events) == 0 {
		return
	}
	if first := c.Events[0]; first.IdempotencyKey != "" {
		f.keyed[keyedCommit{first.Command, first.IdempotencyKey, c.Ref().String()}]++
		f.used[first.Command+"\x00"+first.IdempotencyKey]++
	}
	for _, env := range c.Events {
		f.events[env.EventID] = true
		ev, err := codec.Decode(env.EventType, env.SchemaVersion, env.Data)
		if err != nil {
			f.unknown++
			continue
		}
		for _, in := range domain.NotificationIntents(env.EventID, ev) {
			f.called[in.ID] = fmt.Sprintf("%s %s (%s) to %s", env.EventType, env.EventID, in.Kind, in.Recipient)
		}
		switch e := ev.(type) {
		case domain.DepositRecorded:
			f.recorded[e.BankTxnID] = append(f.recorded[e.BankTxnID], e)
			f.recordedKey[e.DepositID] = env.IdempotencyKey
		case domain.OrderPaid:
			f.paid[e.OrderID]++
		case domain.WalletCredited:
			f.credits[creditRef(e.UserID, e.Ref)]++
			f.balance[e.UserID] += e.Amount
		case domain.WalletDebited:
			f.debits[e.PayoutID]++
			f.balance[e.UserID] -= e.Amount
		case domain.PayoutRequested:
			f.requested[e.PayoutID]++
		case domain.PayoutSettled:
			f.finished[e.PayoutID]++
		case domain.PayoutFailed:
			f.finished[e.PayoutID]++
			f.failed[e.PayoutID] = true
		case domain.DepositResolved:
			f.resolved[e.DepositID] = append(f.resolved[e.DepositID], e)
		case domain.DepositReopened:
			f.reopened[e.DepositID]++
		case domain.BillIssued:
			f.bills[e.BillID] = e
		case domain.BillExpired:
			f.closed[e.BillID] = closedExpired
			f.closes[e.BillID]++
		case domain.BillCancelled:
			f.closed[e.BillID] = closedCancelled
			f.closes[e.BillID]++
		case domain.NotificationCreated:
			f.notes[e.NotificationID] = e
			f.notesFor[e.SourceEventID+"\x00"+e.Recipient]++
		case domain.NotificationSent:
			f.sent[e.NotificationID]++
		case domain.NotificationDeadLettered:
			f.dead[e.NotificationID]++
		case domain.ReconciliationCompleted:
			f.reconciled[e.RunID]++
		case domain.StorePaymentReceived:
			f.storePaid[e.DepositID] = append(f.storePaid[e.DepositID], e)
			if e.BillID != "" {
				p := f.billPaid[e.BillID]
				p.amount, p.count = p.amount+e.Amount, p.count+1
				f.billPaid[e.BillID] = p
			}
		}
	}
}
