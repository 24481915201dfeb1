package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// links folds the commits of links (domain.Link.Apply) and checks that
// their bills move only as the engine moves them (docs/domain.md, "Bill
// statuses"). Each bill command's events are decided again on the link's
// state before them, with the inputs they carry (amount, memo, reason,
// times), and must be what the engine writes: a bill issued while another
// is current, numbered out of turn, for another store, an expiry without
// the next bill, a bill cancelled or reminded that is not current, or a
// payment given to another bill than the one current when the store paid
// (or, as the first engines gave it, when it was recorded: firstEngines),
// or with other figures, is a finding. Bills move no money, but these
// forgeries tell a store it owes what it does not, or credit its payment
// to a bill it never paid.
func (f *folder) links(c eventstore.Commit, events []domain.Event) {
	bad := func(format string, a ...any) {
		f.add(Finding{Check: CheckAggregates, Seq: c.Seq, Aggregate: c.Ref().String(), Message: fmt.Sprintf(format, a...)})
	}
	if c.AggregateType != domain.AggregateLink {
		for _, ev := range events {
			if linkEvent(ev) {
				bad("%s at seq %d is on %s: a store's events are on its link", ev.EventType(), c.Seq, c.Ref())
			}
		}
		return
	}
	l := f.linkStates[c.AggregateID]
	for i := 0; i < len(events); {
		ev := events[i]
		if e, ok := ev.(domain.StoreLinked); ok && (e.LinkID != c.AggregateID || domain.LinkID(e.DistributorID, e.StoreID) != c.AggregateID) {
			bad("store.linked at seq %d links distributor %s and store %s as %s on link %s; their link is %s", c.Seq, e.DistributorID, e.StoreID, e.LinkID, c.AggregateID, domain.LinkID(e.DistributorID, e.StoreID))
		}
		want, decided, err := redecide(l, ev, events[i+1:])
		n := max(1, min(len(want), len(events)-i))
		switch {
		case !decided:
		case err != nil:
			bad("%s at seq %d on link %s is a move the engine refuses on the link as it was: %v", ev.EventType(), c.Seq, c.AggregateID, err)
		case len(want) == 0:
			if p, ok := ev.(domain.StorePaymentReceived); ok {
				bad("store.payment_received at seq %d pays deposit %s to link %s again: the link took it before", c.Seq, p.DepositID, c.AggregateID)
				break
			}
			bad("%s at seq %d on link %s: the engine writes nothing for it on the link as it was", ev.EventType(), c.Seq, c.AggregateID)
		default:
			if diff := differs(events[i:i+n], want); diff != "" && differs(events[i:i+n], firstEngines(l, want)) != "" {
				bad("%s at seq %d on link %s is not what the engine writes on the link as it was: %s", ev.EventType(), c.Seq, c.AggregateID, diff)
			}
		}
		for _, e := range events[i : i+n] {
			l = l.Apply(e)
		}
		i += n
	}
	f.linkStates[c.AggregateID] = l
}

// linkEvent reports whether ev is one of a link's events: its store's,
// its bills' and its payments'.
func linkEvent(ev domain.Event) bool {
	switch ev.(type) {
	case domain.StoreLinked, domain.StoreRenamed, domain.BillIssued, domain.BillExpired, domain.BillCancelled, domain.StorePaymentReceived, domain.BillReminded:
		return true
	}
	return false
}

// redecide decides again, on link l, the command whose events begin with
// ev (next are the commit's events after it), with the inputs the events
// carry: the events the engine writes for it on that state, or its
// refusal. decided is false for an event that begins no bill command
// (store.linked, store.renamed). A payment's fee and settlement date
// depend on the configuration of its day and are not decided again
// (storePayment checks its fee). The rules of a command's own inputs (an
// amount's range, a memo's or a reason's characters and length) change
// between versions, and an older engine took what this one refuses: such
// a command is decided again with inputs every rule takes, and its own put
// back in what it writes, for the check is of moves, not of inputs.
func redecide(l domain.Link, ev domain.Event, next []domain.Event) (want []domain.Event, decided bool, err error) {
	switch e := ev.(type) {
	case domain.BillExpired:
		// Written only before the next bill, in its commit.
		issued, ok := first(next).(domain.BillIssued)
		if !ok {
			return nil, true, fmt.Errorf("bill %s expires without the next bill after it in the same commit", e.BillID)
		}
		want, err = issue(l, issued)
	case domain.BillIssued:
		want, err = issue(l, e)
	case domain.BillCancelled:
		want, err = domain.DecideCancelBill(l, domain.CancelBill{BillID: e.BillID, Reason: e.Reason, Now: e.CancelledAt})
		if errors.Is(err, domain.ErrInvalidInput) {
			want, err = domain.DecideCancelBill(l, domain.CancelBill{BillID: e.BillID, Now: e.CancelledAt})
			want = put(want, func(c domain.BillCancelled) domain.BillCancelled { c.Reason = e.Reason; return c })
		}
	case domain.BillReminded:
		want, err = domain.DecideRemind(l, domain.Remind{Now: e.RemindedAt, PaymentsCountedTo: e.PaymentsCountedTo})
	case domain.StorePaymentReceived:
		want, err = domain.DecideStorePayment(l, domain.StorePayment{DepositID: e.DepositID, Amount: e.Amount, PaidAt: e.PaidAt, CollectAccount: e.CollectAccount, Now: e.PaidAt})
		want = put(want, func(p domain.StorePaymentReceived) domain.StorePaymentReceived {
			p.Fee, p.Net, p.FeeBps, p.SettlementDate = e.Fee, e.Net, e.FeeBps, e.SettlementDate
			return p
		})
	default:
		return nil, false, nil
	}
	return want, true, err
}

// issue decides bill.issued's command again, with the amount and memo
// it carries (redecide).
func issue(l domain.Link, e domain.BillIssued) ([]domain.Event, error) {
	want, err := domain.DecideIssueBill(l, domain.IssueBill{Amount: e.Amount, Memo: e.Memo, Now: e.IssuedAt})
	if !errors.Is(err, domain.ErrInvalidInput) {
		return want, err
	}
	want, err = domain.DecideIssueBill(l, domain.IssueBill{Amount: 1, Now: e.IssuedAt})
	return put(want, func(b domain.BillIssued) domain.BillIssued { b.Amount, b.Memo = e.Amount, e.Memo; return b }), err
}

// put replaces each event of events that is an E by f of it.
func put[E domain.Event](events []domain.Event, f func(E) E) []domain.Event {
	for i, ev := range events {
		if e, ok := ev.(E); ok {
			events[i] = f(e)
		}
	}
	return events
}

// firstEngines is want as the first engines wrote it: they gave a payment
// to the bill current when it was recorded, whatever its paid_at, so one
// recorded after the next bill, though paid before it, went to that bill.
// Their streams are what they are; a bill's other moves are as today's.
func firstEngines(l domain.Link, want []domain.Event) []domain.Event {
	return put(slices.Clone(want), func(p domain.StorePaymentReceived) domain.StorePaymentReceived {
		p.BillID, p.BillAmount, p.BillPaidAmount, p.BillOutstanding, p.BillStatus = "", 0, 0, 0, ""
		if b := l.Current; b.ID != "" {
			paid := b.PaidAmount + p.Amount
			p.BillID, p.BillAmount, p.BillPaidAmount = b.ID, b.Amount, paid
			p.BillOutstanding, p.BillStatus = domain.BillOutstanding(b.Amount, paid), domain.BillStatusOf(b.Amount, paid)
		}
		return p
	})
}

func first(events []domain.Event) domain.Event {
	if len(events) == 0 {
		return nil
	}
	return events[0]
}

// carriedLater are fields of link events that engines before them did
// not write (a cancellation's store name and issue time, the
// distributor's name), which name but count nothing: absent from an event,
// they are not compared.
var carriedLater = []string{"store_name", "distributor_name", "issued_at"}

// differs describes how the recorded events differ from those the engine
// writes (want): the first differing event's fields, recorded then
// decided; "" when they agree.
func differs(got, want []domain.Event) string {
	for i, w := range want {
		if i >= len(got) {
			return fmt.Sprintf("the engine writes %s after it, in the same commit", w.EventType())
		}
		g := got[i]
		if g.EventType() != w.EventType() {
			return fmt.Sprintf("the engine writes %s where the commit has %s", w.EventType(), g.EventType())
		}
		gf, wf := fields(g), fields(w)
		keys := make([]string, 0, len(gf)+len(wf))
		for k := range gf {
			keys = append(keys, k)
		}
		for k := range wf {
			if _, ok := gf[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var diffs []string
		for _, k := range keys {
			gv, recorded := gf[k]
			wv := wf[k]
			if !recorded && slices.Contains(carriedLater, k) || string(gv) == string(wv) {
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s %s, the engine's %s", k, orAbsent(gv), orAbsent(wv)))
		}
		if len(diffs) > 0 {
			return g.EventType() + " has " + strings.Join(diffs, "; ")
		}
	}
	return ""
}

// fields is an event's JSON fields, as the engine stores them.
func fields(ev domain.Event) map[string]json.RawMessage {
	raw, err := json.Marshal(ev)
	if err != nil {
		return map[string]json.RawMessage{"": json.RawMessage(err.Error())}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return map[string]json.RawMessage{"": json.RawMessage(err.Error())}
	}
	return m
}

func orAbsent(v json.RawMessage) string {
	if v == nil {
		return "absent"
	}
	return string(v)
}
