package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// stream is a real embedded JetStream event stream that a test writes
// commits to, as the engine's command handlers would.
type stream struct {
	t     *testing.T
	js    jetstream.JetStream
	store *eventstore.Store
	last  map[eventstore.Ref]eventstore.Commit
	n     int
}

func newStream(t *testing.T) *stream {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	st, err := eventstore.Open(context.Background(), js, eventstore.Config{Upcaster: domain.Events()})
	if err != nil {
		t.Fatal(err)
	}
	return &stream{t: t, js: js, store: st, last: map[eventstore.Ref]eventstore.Commit{}}
}

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// append appends one commit of events to the aggregate and returns its seq.
func (s *stream) append(typ, id string, events ...domain.Event) eventstore.Seq {
	s.t.Helper()
	return s.appendAt(t0, typ, id, events...)
}

// appendAt is append with events that occurred at at.
func (s *stream) appendAt(at time.Time, typ, id string, events ...domain.Event) eventstore.Seq {
	s.t.Helper()
	ref := eventstore.Ref{Type: typ, ID: id}
	prev := s.last[ref]
	version := 0
	if n := len(prev.Events); n > 0 {
		version = prev.Events[n-1].Version
	}
	var envs []eventstore.Envelope
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			s.t.Fatal(err)
		}
		s.n++
		envs = append(envs, eventstore.Envelope{EventID: fmt.Sprintf("ev-%d", s.n), EventType: ev.EventType(), SchemaVersion: 1, OccurredAt: at, Data: data})
	}
	c, err := s.store.Append(context.Background(), ref, prev.Seq, version, fmt.Sprintf("c-%d", s.n), envs)
	if err != nil {
		s.t.Fatal(err)
	}
	s.last[ref] = c
	return c.Seq
}

// raw publishes data on the aggregate's subject, as a tamperer would.
func (s *stream) raw(typ, id string, data []byte) eventstore.Seq {
	s.t.Helper()
	ack, err := s.js.Publish(context.Background(), "bankbook.evt."+typ+"."+id, data)
	if err != nil {
		s.t.Fatal(err)
	}
	return eventstore.Seq(ack.Sequence)
}

func (s *stream) verify(mutate ...func(*audit.Options)) audit.Report {
	s.t.Helper()
	opts := audit.Options{Reader: s.store.Reader(), Now: func() time.Time { return t0.Add(90 * time.Minute) }, TempDir: s.t.TempDir()}
	for _, m := range mutate {
		m(&opts)
	}
	rep, err := audit.Verify(context.Background(), opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

// wantFinding verifies the stream and requires a finding of check, the
// first of its kind, at seq (and the report not OK).
func (s *stream) wantFinding(check string, seq eventstore.Seq) {
	s.t.Helper()
	rep := s.verify()
	if f := findings(rep, check); rep.OK || len(f) == 0 || f[0].Seq != seq {
		s.t.Fatalf("want a %s finding at seq %d: %+v", check, seq, rep.Findings)
	}
}

func findings(rep audit.Report, check string) []audit.Finding {
	var out []audit.Finding
	for _, f := range rep.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

const bankAcct = "100-200-300"

// depID is the ID of the deposit of bank transaction txn on account, as
// the engine derives it (domain.NewDepositID): every deposit a fixture
// writes, or names, is under it.
func depID(account, txn string) domain.DepositID { return domain.NewDepositID(account, txn) }

// d1 and d2 are money's orphans (transactions X1 and X2 on bankAcct).
var d1, d2 = depID(bankAcct, "X1"), depID(bankAcct, "X2")

// money writes orphans, a refund to a wallet, a failed withdrawal returned
// to the wallet and a withdrawal still pending.
func money(s *stream) {
	s.append(domain.AggregateDeposit, string(d1), domain.DepositRecorded{DepositID: d1, BankTxnID: "X1", AccountNumber: bankAcct, DepositorName: "누군가", Amount: 1000, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	s.append(domain.AggregateDeposit, string(d2), domain.DepositRecorded{DepositID: d2, BankTxnID: "X2", AccountNumber: bankAcct, DepositorName: "아무개", Amount: 500, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	s.append(domain.AggregateDeposit, string(d2), domain.DepositResolved{DepositID: d2, Action: domain.ResolveRefundToWallet, Amount: 500, UserID: "u1", ResolvedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 500, Kind: domain.CreditOrphanRefund, Ref: string(d2), FromAccount: domain.AccountSuspense, CreditedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "p1", DebitAt: t0})
	s.append(domain.AggregatePayout, "p1", domain.PayoutRequested{PayoutID: "p1", Amount: 300, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
	s.append(domain.AggregatePayout, "p1", domain.PayoutFailed{PayoutID: "p1", Reason: "closed account", FailedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 300, Kind: domain.CreditPayoutReversal, Ref: "reversal:p1", FromAccount: domain.AccountPayoutsPending, CreditedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 200, PayoutID: "p2", DebitAt: t0.Add(30 * time.Minute)})
	s.append(domain.AggregatePayout, "p2", domain.PayoutRequested{PayoutID: "p2", Amount: 200, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
}

// paidOrder writes an order of buyer's paid by a recorded deposit of amount.
func paidOrder(s *stream, order domain.OrderID, buyer domain.UserID, amount int64) {
	submittedFor(s, order, buyer, amount)
	dep := depID(bankAcct, "X-"+string(order))
	s.append(domain.AggregateOrder, string(order), domain.OrderPaid{OrderID: order, DepositID: dep, Amount: amount, FromAccount: domain.AccountBank(bankAcct), PaidAt: t0})
	s.append(domain.AggregateDeposit, string(dep), domain.DepositRecorded{DepositID: dep, BankTxnID: "X-" + string(order), AccountNumber: bankAcct, DepositorName: "김001", Amount: amount, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: order})
}

// submitted writes order's order.submitted, for buyer.
func submitted(s *stream, order domain.OrderID, buyer domain.UserID) eventstore.Seq {
	return submittedFor(s, order, buyer, 0)
}

// submittedFor writes order's order.submitted, for buyer, of amount.
func submittedFor(s *stream, order domain.OrderID, buyer domain.UserID, amount int64) eventstore.Seq {
	return s.append(domain.AggregateOrder, string(order), domain.OrderSubmitted{OrderID: order, BuyerID: buyer, BuyerName: "김", Amount: domain.Money{Amount: amount, Currency: "KRW"}, DepositorName: "김001", SubmittedAt: t0})
}

func TestVerifyCleanStreamListsOpenItems(t *testing.T) {
	s := newStream(t)
	money(s)
	rep := s.verify()
	if !rep.OK || len(rep.Findings) != 0 {
		t.Fatalf("findings on a clean stream: %+v", rep.Findings)
	}
	if rep.Checked.Commits != 10 || rep.Checked.Wallets != 1 || rep.Checked.BankTransactions != 2 || rep.Checked.ReadModels != "not checked: no live read models given" {
		t.Fatalf("checked: %+v", rep.Checked)
	}
	want := []audit.OpenItem{
		{Account: domain.AccountSuspense, Kind: audit.KindOrphanDeposit, ID: string(d1), Amount: 1000, Status: "orphaned", Seq: 1, Since: t0, Age: "1h30m0s", AgeSeconds: 5400},
		{Account: domain.AccountPayoutsPending, Kind: audit.KindPayout, ID: "p2", Amount: 200, Status: "requested", Seq: 9, Since: t0.Add(30 * time.Minute), Age: "1h0m0s", AgeSeconds: 3600},
	}
	if len(rep.OpenItems) != len(want) {
		t.Fatalf("open items: %+v", rep.OpenItems)
	}
	for i := range want {
		if got := rep.OpenItems[i]; got != want[i] {
			t.Fatalf("open item %d: %+v, want %+v", i, got, want[i])
		}
	}
	// The JSON report writes since as the API writes times, the fraction
	// of a whole second included.
	b, err := json.Marshal(rep.OpenItems[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `"since":"` + domain.FormatTime(t0) + `"`; !strings.Contains(string(b), want) || strings.Count(string(b), `"since"`) != 1 {
		t.Fatalf("open item as JSON: %s, want %s once", b, want)
	}
}

func TestVerifyComparesAReadModelFile(t *testing.T) {
	s := newStream(t)
	money(s)
	path := filepath.Join(t.TempDir(), "readmodels.db")
	if _, _, err := projections.Replay(context.Background(), s.store.Reader(), path, nil); err != nil {
		t.Fatal(err)
	}
	rep := s.verify(func(o *audit.Options) { o.ReadModels = path })
	if !rep.OK || rep.Checked.ReadModels != "file" || rep.Checked.ReadModelsSeq != 10 {
		t.Fatalf("report: %+v", rep)
	}
	// The stream moves on; the file does not.
	d9 := depID(bankAcct, "X9")
	s.append(domain.AggregateDeposit, string(d9), domain.DepositRecorded{DepositID: d9, BankTxnID: "X9", AccountNumber: bankAcct, DepositorName: "누군가", Amount: 5, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	rep = s.verify(func(o *audit.Options) { o.ReadModels = path })
	if !rep.OK || rep.Checked.ReadModelsSeq != 10 || rep.Checked.LastSeq != 11 {
		t.Fatalf("a file behind the stream is compared at its own checkpoint: %+v", rep)
	}
	// A live hash that no replay gives.
	rep = s.verify(func(o *audit.Options) {
		o.Live = func(context.Context) (audit.LiveState, error) { return audit.LiveState{Hash: "feed", Seq: 11}, nil }
	})
	if f := findings(rep, audit.CheckReadModels); len(f) != 1 || f[0].Seq != 11 || rep.Checked.ReadModels != "engine" {
		t.Fatalf("read_models findings: %+v", rep.Findings)
	}
}

func TestVerifyNamesEachCheckAndSeq(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(s *stream) eventstore.Seq
		check  string
	}{
		{"clearing: a payout settled that was never pending", func(s *stream) eventstore.Seq {
			// named where it closes an item that is not open (and by the
			// end-of-stream balance, which has no sequence)
			return s.append(domain.AggregatePayout, "p9", domain.PayoutSettled{PayoutID: "p9", Amount: 50, BankAccount: bankAcct, SettledAt: t0})
		}, audit.CheckClearing},
		{"clearing: an unresolved orphan's money credited to a wallet", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountSuspense, CreditedAt: t0})
		}, audit.CheckClearing},
		{"clearing: an orphan resolved to one wallet credited to another", func(s *stream) eventstore.Seq {
			s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToWallet, Amount: 1000, UserID: "u1", ResolvedAt: t0})
			return s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountSuspense, CreditedAt: t0})
		}, audit.CheckClearing},
		{"clearing: an order paid from suspense with an unassigned orphan", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateOrder, "oS", domain.OrderPaid{OrderID: "oS", DepositID: d1, Amount: 1000, FromAccount: domain.AccountSuspense, PaidAt: t0})
		}, audit.CheckClearing},
		{"clearing: a payout that did not fail returned to the wallet", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 200, Kind: domain.CreditPayoutReversal, Ref: domain.ReversalRef("p2"), FromAccount: domain.AccountPayoutsPending, CreditedAt: t0})
		}, audit.CheckClearing},
		{"wallets: a paid order's refund credited that the order never refunded", func(s *stream) eventstore.Seq {
			dP := depID(bankAcct, "XP")
			s.append(domain.AggregateOrder, "oP", domain.OrderPaid{OrderID: "oP", DepositID: dP, Amount: 3900, FromAccount: domain.AccountBank(bankAcct), PaidAt: t0})
			s.append(domain.AggregateDeposit, string(dP), domain.DepositRecorded{DepositID: dP, BankTxnID: "XP", AccountNumber: bankAcct, DepositorName: "김001", Amount: 3900, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oP"})
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 3900, Kind: domain.CreditOrderRefund, Ref: "order:oP", OrderID: "oP", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
		}, audit.CheckWallets},
		{"wallets: a refund credited for more than the order refunded", func(s *stream) eventstore.Seq {
			paidOrder(s, "oQ", "u1", 100)
			s.append(domain.AggregateOrder, "oQ", domain.OrderRefunded{OrderID: "oQ", BuyerID: "u1", Amount: 100, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 9000, Kind: domain.CreditOrderRefund, Ref: "order:oQ", OrderID: "oQ", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
		}, audit.CheckWallets},
		{"wallets: a deposit refund credited out of revenue", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 700, Kind: domain.CreditDepositRefund, Ref: string(depID(bankAcct, "XR")), OrderID: "oR", FromAccount: domain.AccountRevenueFees, CreditedAt: t0})
		}, audit.CheckWallets},
		{"wallets: an orphan refund credited out of revenue", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 700, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountRevenueFees, CreditedAt: t0})
		}, audit.CheckWallets},
		{"wallets: a credit without its order (written before credits named it) that no order refunded", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 700, Kind: domain.CreditOrderRefund, Ref: "order:oZ", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
		}, audit.CheckWallets},
		{"wallets: one order refund credited twice, under two refs", func(s *stream) eventstore.Seq {
			paidOrder(s, "oD", "u1", 3900)
			s.append(domain.AggregateOrder, "oD", domain.OrderRefunded{OrderID: "oD", BuyerID: "u1", Amount: 3900, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
			s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 3900, Kind: domain.CreditOrderRefund, Ref: "order:oD", OrderID: "oD", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 3900, Kind: domain.CreditOrderRefund, Ref: "order:oD#2", OrderID: "oD", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
		}, audit.CheckWallets},
		{"wallets: an order refunded to another than its buyer", func(s *stream) eventstore.Seq {
			paidOrder(s, "oE", "u1", 2500)
			return s.append(domain.AggregateOrder, "oE", domain.OrderRefunded{OrderID: "oE", BuyerID: "u9", Amount: 2500, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
		}, audit.CheckWallets},
		{"wallets: a wallet debited below zero", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateWallet, "u9", domain.WalletDebited{UserID: "u9", Amount: 50000, PayoutID: "pX", DebitAt: t0})
		}, audit.CheckWallets},
		{"trial_balance: orders payable left in debit", func(s *stream) eventstore.Seq {
			submitted(s, "oF", "u1")
			s.append(domain.AggregateOrder, "oF", domain.OrderRefunded{OrderID: "oF", BuyerID: "u1", Amount: 700, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
			return s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 700, Kind: domain.CreditOrderRefund, Ref: "order:oF", OrderID: "oF", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
		}, audit.CheckTrialBalance},
		{"bank_transactions: an order paid out of a distributor's money", func(s *stream) eventstore.Seq {
			submitted(s, "oG", "u1")
			return s.append(domain.AggregateOrder, "oG", domain.OrderPaid{OrderID: "oG", DepositID: depID(bankAcct, "XG"), Amount: 700, FromAccount: domain.AccountPayableDistributor("d-1"), PaidAt: t0})
		}, audit.CheckBankTransactions},
		{"aggregates: an event dated after the verification", func(s *stream) eventstore.Seq {
			return s.appendAt(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), domain.AggregateOrder, "oH", domain.OrderPaid{OrderID: "oH", DepositID: depID(bankAcct, "XH"), Amount: 400, FromAccount: domain.AccountBank(bankAcct), PaidAt: t0})
		}, audit.CheckAggregates},
		{"bank_transactions: money in for a deposit never recorded, dated after the verification", func(s *stream) eventstore.Seq {
			return s.appendAt(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), domain.AggregateOrder, "oH", domain.OrderPaid{OrderID: "oH", DepositID: depID(bankAcct, "XH"), Amount: 400, FromAccount: domain.AccountBank(bankAcct), PaidAt: t0})
		}, audit.CheckBankTransactions},
		{"aggregates: an event version skipped", func(s *stream) eventstore.Seq {
			last := s.last[eventstore.Ref{Type: domain.AggregateWallet, ID: "u1"}]
			data, _ := json.Marshal(domain.WalletCredited{UserID: "u1", Amount: 1, Kind: domain.CreditOrderRefund, Ref: "o-2", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
			c, err := eventstore.NewCommit(last.Ref(), last.Seq, last.Hash, last.Events[len(last.Events)-1].Version+1, "c-skip",
				[]eventstore.Envelope{{EventID: "ev-skip", EventType: "wallet.credited", SchemaVersion: 1, OccurredAt: t0, Data: data}}, t0)
			if err != nil {
				s.t.Fatal(err)
			}
			b, _ := json.Marshal(c)
			return s.raw(domain.AggregateWallet, "u1", b)
		}, audit.CheckAggregates},
		{"bank_transactions: one transaction pays two orders", func(s *stream) eventstore.Seq {
			from, d9 := domain.AccountBank(bankAcct), depID(bankAcct, "X9")
			s.append(domain.AggregateOrder, "oA", domain.OrderPaid{OrderID: "oA", DepositID: d9, Amount: 700, FromAccount: from, PaidAt: t0})
			s.append(domain.AggregateOrder, "oB", domain.OrderPaid{OrderID: "oB", DepositID: d9, Amount: 700, FromAccount: from, PaidAt: t0})
			return s.append(domain.AggregateDeposit, string(d9), domain.DepositRecorded{DepositID: d9, BankTxnID: "X9", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oA"})
		}, audit.CheckBankTransactions},
		{"bank_transactions: money in for a deposit never recorded", func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateOrder, "oC", domain.OrderPaid{OrderID: "oC", DepositID: depID(bankAcct, "X8"), Amount: 400, FromAccount: domain.AccountBank(bankAcct), PaidAt: t0})
		}, audit.CheckBankTransactions},
		{"chains: a commit linked to the wrong message", func(s *stream) eventstore.Seq {
			first := s.last[eventstore.Ref{Type: domain.AggregateDeposit, ID: string(d1)}]
			data, _ := json.Marshal(domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToWallet, Amount: 1000, UserID: "u1", ResolvedAt: t0})
			c, err := eventstore.NewCommit(first.Ref(), first.Seq+1, first.Hash, 1, "c-link",
				[]eventstore.Envelope{{EventID: "ev-link", EventType: "deposit.resolved", SchemaVersion: 1, OccurredAt: t0, Data: data}}, t0)
			if err != nil {
				s.t.Fatal(err)
			}
			b, _ := json.Marshal(c)
			return s.raw(domain.AggregateDeposit, string(d1), b)
		}, audit.CheckChains},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStream(t)
			money(s)
			seq := tt.tamper(s)
			rep := s.verify()
			f := findings(rep, tt.check)
			if rep.OK || len(f) == 0 || f[0].Seq != seq {
				t.Fatalf("want a %s finding at seq %d: %+v", tt.check, seq, rep.Findings)
			}
		})
	}
}

// A refund of an order never submitted is named as such.
func TestVerifyNamesARefundOfAnOrderNeverSubmitted(t *testing.T) {
	s := newStream(t)
	money(s)
	seq := s.append(domain.AggregateOrder, "oN", domain.OrderRefunded{OrderID: "oN", BuyerID: "u1", Amount: 100, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
	f := findings(s.verify(), audit.CheckWallets)
	if len(f) != 1 || f[0].Seq != seq || !strings.Contains(f[0].Message, "never submitted") {
		t.Fatalf("want one wallets finding at seq %d naming an order never submitted: %+v", seq, f)
	}
}

func TestVerifyAcceptsSetAsideDamage(t *testing.T) {
	s := newStream(t)
	money(s)
	seq := s.raw(domain.AggregateOrder, "o-x", []byte("{not a commit"))
	rep := s.verify()
	if f := findings(rep, audit.CheckNoEventSkipped); len(f) != 1 || f[0].Seq != seq || f[0].Aggregate != "order/o-x" {
		t.Fatalf("no_event_skipped: %+v", rep.Findings)
	}
	rep = s.verify(func(o *audit.Options) {
		o.SetAside = func(_ context.Context, at eventstore.Seq) (bool, error) { return at == seq, nil }
	})
	if !rep.OK || rep.Checked.Damaged != 1 || rep.Checked.SetAside != 1 {
		t.Fatalf("set aside: %+v", rep)
	}
}

func TestVerifyNeedsAReader(t *testing.T) {
	if _, err := audit.Verify(context.Background(), audit.Options{}); err == nil {
		t.Fatal("Verify without a Reader ran")
	}
}

// With a readable read-model file, its skipped-commit records alone say
// what is set aside: Options.SetAside (the engine's API, which may not
// answer) is not asked.
func TestVerifyReadsSetAsideFromAReadableFile(t *testing.T) {
	s := newStream(t)
	money(s)
	seq := s.raw(domain.AggregateOrder, "o-x", []byte("{not a commit"))
	path := filepath.Join(t.TempDir(), "readmodels.db")
	if _, _, err := projections.Replay(context.Background(), s.store.Reader(), path, nil); err != nil {
		t.Fatal(err)
	}
	rep := s.verify(func(o *audit.Options) {
		o.ReadModels = path
		o.SetAside = func(context.Context, eventstore.Seq) (bool, error) {
			return false, errors.New("no responders: the engine is down")
		}
	})
	if f := findings(rep, audit.CheckNoEventSkipped); len(f) != 1 || f[0].Seq != seq {
		t.Fatalf("no_event_skipped: %+v", rep.Findings)
	}
}

// A balance that leaves the 64-bit range wraps around; the trial balance
// still sums to 0, so only this check names it.
func TestVerifyNamesABalanceThatOverflows(t *testing.T) {
	s := newStream(t)
	const big = 5_000_000_000_000_000_000 // more than half of the int64 range
	s.append(domain.AggregateDeposit, string(d1), domain.DepositRecorded{DepositID: d1, BankTxnID: "X1", AccountNumber: bankAcct, DepositorName: "누군가", Amount: big, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	seq := s.append(domain.AggregateDeposit, string(d2), domain.DepositRecorded{DepositID: d2, BankTxnID: "X2", AccountNumber: bankAcct, DepositorName: "누군가", Amount: big, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	// Both accounts overflow in one commit: reported by account, in every
	// run (a map's order would vary from one to the next).
	for range 10 {
		rep := s.verify()
		var accounts []string
		for _, f := range findings(rep, audit.CheckTrialBalance) {
			if f.Seq != seq {
				t.Errorf("finding at seq %d, want %d: %s", f.Seq, seq, f.Message)
			}
			accounts = append(accounts, f.Account)
		}
		if want := []string{domain.AccountBank(bankAcct), domain.AccountSuspense}; !slices.Equal(accounts, want) {
			t.Fatalf("overflow findings on %v, want %v: %+v", accounts, want, rep.Findings)
		}
		if rep.OK {
			t.Fatal("a wrapped-around balance verified OK")
		}
	}
}

// Each way money comes in from the bank for a deposit is followed: an order
// paid, a second payment refunded to the buyer's wallet (the order's refund
// posts nothing, the wallet credit does), an orphan; a deposit whose money
// never came in is named at its recording.
// Refund credits written before credits named their order carry only
// their ref: they are backed by the order's refund all the same.
func TestVerifyBacksRefundCreditsWithoutTheirOrder(t *testing.T) {
	s := newStream(t)
	money(s)
	from, d7, d8 := domain.AccountBank(bankAcct), depID(bankAcct, "X7"), depID(bankAcct, "X8")
	submittedFor(s, "o7", "u7", 700)
	s.append(domain.AggregateOrder, "o7", domain.OrderPaid{OrderID: "o7", DepositID: d7, Amount: 700, FromAccount: from, PaidAt: t0})
	s.append(domain.AggregateDeposit, string(d7), domain.DepositRecorded{DepositID: d7, BankTxnID: "X7", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "o7"})
	s.append(domain.AggregateOrder, "o7", domain.OrderRefunded{OrderID: "o7", BuyerID: "u7", Amount: 700, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
	s.append(domain.AggregateWallet, "u7", domain.WalletCredited{UserID: "u7", Amount: 700, Kind: domain.CreditOrderRefund, Ref: "order:o7", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
	s.append(domain.AggregateOrder, "o7", domain.OrderRefunded{OrderID: "o7", BuyerID: "u7", DepositID: d8, Amount: 300, FromAccount: from, RefundedAt: t0})
	s.append(domain.AggregateWallet, "u7", domain.WalletCredited{UserID: "u7", Amount: 300, Kind: domain.CreditDepositRefund, Ref: string(d8), FromAccount: from, CreditedAt: t0})
	s.append(domain.AggregateDeposit, string(d8), domain.DepositRecorded{DepositID: d8, BankTxnID: "X8", AccountNumber: bankAcct, DepositorName: "김001", Amount: 300, DepositedAt: t0, Outcome: domain.OutcomeRefundedToWallet, OrderID: "o7", UserID: "u7"})
	if rep := s.verify(); len(findings(rep, audit.CheckWallets)) != 0 {
		t.Fatalf("wallets findings on refund credits without their order: %+v", findings(rep, audit.CheckWallets))
	}
}

func TestVerifyFollowsEachDepositsMoney(t *testing.T) {
	from, dA, dB := domain.AccountBank(bankAcct), depID(bankAcct, "XA"), depID(bankAcct, "XB")
	scene := func(s *stream, credit bool) eventstore.Seq {
		submittedFor(s, "o1", "u9", 900)
		s.append(domain.AggregateOrder, "o1", domain.OrderPaid{OrderID: "o1", DepositID: dA, Amount: 900, FromAccount: from, PaidAt: t0})
		s.append(domain.AggregateDeposit, string(dA), domain.DepositRecorded{DepositID: dA, BankTxnID: "XA", AccountNumber: bankAcct, DepositorName: "김001", Amount: 900, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "o1"})
		s.append(domain.AggregateOrder, "o1", domain.OrderRefunded{OrderID: "o1", BuyerID: "u9", DepositID: dB, Amount: 900, FromAccount: from, RefundedAt: t0})
		if credit {
			s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 900, Kind: domain.CreditDepositRefund, Ref: string(dB), OrderID: "o1", FromAccount: from, CreditedAt: t0})
		}
		return s.append(domain.AggregateDeposit, string(dB), domain.DepositRecorded{DepositID: dB, BankTxnID: "XB", AccountNumber: bankAcct, DepositorName: "김001", Amount: 900, DepositedAt: t0, Outcome: domain.OutcomeRefundedToWallet, OrderID: "o1", UserID: "u9"})
	}
	s := newStream(t)
	money(s)
	scene(s, true)
	if rep := s.verify(); !rep.OK {
		t.Fatalf("findings on a clean stream with a refunded deposit: %+v", rep.Findings)
	}
	s = newStream(t)
	money(s)
	seq := scene(s, false)
	f := findings(s.verify(), audit.CheckBankTransactions)
	if len(f) != 1 || f[0].Seq != seq || !strings.Contains(f[0].Message, "only 0") {
		t.Fatalf("a refunded deposit whose money never came in: %+v, want one bank_transactions finding at seq %d", f, seq)
	}
}

// A reconciliation run is recorded once, under the ID its kind and file
// give, with counts its lists hold: a second result that turns findings
// into matches, a result under another ID, and counts its lists do not
// hold are each named at their sequence; a clean run is not.
func TestVerifyNamesAForgedReconciliation(t *testing.T) {
	s := newStream(t)
	money(s)
	sha := strings.Repeat("a6", 32)
	id := domain.NewReconciliationID(domain.ReconcileKindBank, sha)
	item := domain.ReconcileItem{BankTxnID: "X9", AccountNumber: bankAcct, StatementAmount: 40000, At: t0}
	real := domain.ReconciliationCompleted{RunID: id, Kind: domain.ReconcileKindBank, FileSHA256: sha, Lines: 1,
		Counts: domain.ReconcileCounts{MissingInLedger: 1}, ReconcileItems: domain.ReconcileItems{MissingInLedger: []domain.ReconcileItem{item}}, CompletedAt: t0}
	s.append(domain.AggregateReconciliation, string(id), real)
	if rep := s.verify(); !rep.OK {
		t.Fatalf("a clean run: %+v", rep.Findings)
	}
	forged := real
	forged.Counts = domain.ReconcileCounts{Matched: 1}
	forged.ReconcileItems = domain.ReconcileItems{Matched: []domain.ReconcileItem{item}}
	second := s.append(domain.AggregateReconciliation, string(id), forged)
	other := real
	other.RunID = "rec_000000000000000000000000"
	elsewhere := s.append(domain.AggregateReconciliation, string(other.RunID), other)
	miscounted := real
	miscounted.FileSHA256 = strings.Repeat("b7", 32)
	miscounted.RunID = domain.NewReconciliationID(domain.ReconcileKindBank, miscounted.FileSHA256)
	miscounted.Counts = domain.ReconcileCounts{MissingInLedger: 3}
	counted := s.append(domain.AggregateReconciliation, string(miscounted.RunID), miscounted)

	got := findings(s.verify(), audit.CheckReconciliations)
	var seqs []eventstore.Seq
	for _, f := range got {
		seqs = append(seqs, f.Seq)
	}
	if want := []eventstore.Seq{second, elsewhere, counted}; !slices.Equal(seqs, want) {
		t.Fatalf("reconciliations findings at %v, want %v: %+v", seqs, want, got)
	}
}

// A run that left items out says so: its counts may exceed its lists, its
// timing differences too (engines before those were never cut left them
// out as well), but never fall below them.
func TestVerifyAcceptsATruncatedReconciliation(t *testing.T) {
	s := newStream(t)
	money(s)
	sha := strings.Repeat("c3", 32)
	id := domain.NewReconciliationID(domain.ReconcileKindBank, sha)
	missing := make([]domain.ReconcileItem, domain.MaxReconcileItems)
	for i := range missing {
		missing[i] = domain.ReconcileItem{BankTxnID: fmt.Sprintf("M%d", i), AccountNumber: bankAcct, StatementAmount: 1000, At: t0}
	}
	run := domain.ReconciliationCompleted{RunID: id, Kind: domain.ReconcileKindBank, FileSHA256: sha, Lines: 1005,
		Counts:         domain.ReconcileCounts{MissingInLedger: domain.MaxReconcileItems, TimingDifference: 5},
		ReconcileItems: domain.ReconcileItems{MissingInLedger: missing}, Truncated: true, CompletedAt: t0}
	s.append(domain.AggregateReconciliation, string(id), run)
	if got := findings(s.verify(), audit.CheckReconciliations); len(got) > 0 {
		t.Fatalf("a truncated run: %+v", got)
	}
	over := run
	over.FileSHA256 = strings.Repeat("d4", 32)
	over.RunID = domain.NewReconciliationID(domain.ReconcileKindBank, over.FileSHA256)
	over.Counts.MissingInLedger = 3 // fewer than it lists
	seq := s.append(domain.AggregateReconciliation, string(over.RunID), over)
	if got := findings(s.verify(), audit.CheckReconciliations); len(got) != 1 || got[0].Seq != seq {
		t.Fatalf("a run listing more than it counts: %+v, want one finding at seq %d", got, seq)
	}
}

// A projection's checkpoint moved back by hand, its content left where it
// was: the file has no content hash, and verify compares the projection
// with a fresh replay up to its own checkpoint, naming where it differs at
// that checkpoint.
func TestVerifyNamesAProjectionWhoseCheckpointMovedBack(t *testing.T) {
	s := newStream(t)
	money(s)
	path := filepath.Join(t.TempDir(), "readmodels.db")
	if _, _, err := projections.Replay(context.Background(), s.store.Reader(), path, nil); err != nil {
		t.Fatal(err)
	}
	editReadModels(t, path, func(tx *bbolt.Tx) error { return setCheckpoint(tx, "ledger", 7) })
	rep := s.verify(func(o *audit.Options) { o.ReadModels = path })
	f := findings(rep, audit.CheckReadModels)
	if rep.OK || len(f) == 0 {
		t.Fatalf("read_models findings %+v, want the ledger named at seq 7", f)
	}
	for _, x := range f {
		if x.Seq != 7 || !strings.Contains(x.Message, "ledger") {
			t.Fatalf("read_models finding %+v, want each naming projection ledger at seq 7", x)
		}
	}
	if !slices.ContainsFunc(f, func(x audit.Finding) bool { return strings.Contains(x.Message, "bucket ledger_entries, key ") }) {
		t.Fatalf("read_models findings %+v, want one naming a key of bucket ledger_entries", f)
	}
	if want := []audit.ProjectionCheckpoint{{Projection: "ledger", Seq: 7}}; rep.Checked.ReadModelsSeq != 10 || !slices.Equal(rep.Checked.ReadModelsBehind, want) {
		t.Fatalf("checked: %+v, want read models at seq 10 with %+v behind", rep.Checked, want)
	}
}

// A file an engine left while it rebuilt one projection (the ledger as a
// replay up to seq 7 has it, or empty at checkpoint 0, the others at seq
// 10) is no finding: each
// projection holds what a fresh replay up to its own checkpoint holds. What
// was edited in it is named, at the checkpoint of the projection it is in.
func TestVerifyComparesAFileWhoseProjectionsStandAtDifferentCheckpoints(t *testing.T) {
	tests := []struct {
		name   string
		ledger eventstore.Seq // the ledger's checkpoint
		edit   func(tx *bbolt.Tx) error
		seq    eventstore.Seq
		bucket string
	}{
		{"none", 7, nil, 0, ""},
		{"ledger rebuilding from the start", 0, nil, 0, ""},
		{"ledger entry posted twice, in the projection behind", 7, func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("ledger_entries"))
			k, v := b.Cursor().Last()
			twice := bytes.Clone(k)
			twice[len(twice)-1]++ // the next posting of the same event
			if b.Get(twice) != nil {
				return fmt.Errorf("ledger entry %q is there", twice)
			}
			return b.Put(twice, bytes.Clone(v))
		}, 7, "ledger_entries"},
		{"wallet balance changed, in a projection ahead", 7, func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("wallets"))
			v := b.Get([]byte("u1"))
			edited := bytes.Replace(v, []byte(`"balance":300`), []byte(`"balance":3000`), 1)
			if bytes.Equal(v, edited) {
				return fmt.Errorf("wallet u1: %s", v)
			}
			return b.Put([]byte("u1"), edited)
		}, 10, "wallets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStream(t)
			money(s)
			dir := t.TempDir()
			path, behind := filepath.Join(dir, "readmodels.db"), filepath.Join(dir, "behind.db")
			if _, _, err := projections.Replay(context.Background(), s.store.Reader(), path, nil); err != nil {
				t.Fatal(err)
			}
			if tt.ledger == 0 {
				st, err := projections.Open(behind, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := projections.ReplayWith(context.Background(), s.store.Reader(), behind, nil, &projections.ReplayOptions{UntilSeq: tt.ledger}); err != nil {
				t.Fatal(err)
			}
			// The ledger stopped at its checkpoint while the others are
			// at 10.
			src, err := bbolt.Open(behind, 0o600, &bbolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			editReadModels(t, path, func(tx *bbolt.Tx) error {
				return src.View(func(stx *bbolt.Tx) error {
					for _, name := range []string{"ledger_balances", "ledger_entries"} {
						if err := tx.DeleteBucket([]byte(name)); err != nil {
							return err
						}
						b, err := tx.CreateBucket([]byte(name))
						if err != nil {
							return err
						}
						if err := stx.Bucket([]byte(name)).ForEach(func(k, v []byte) error { return b.Put(k, v) }); err != nil {
							return err
						}
					}
					if err := setCheckpoint(tx, "ledger", tt.ledger); err != nil {
						return err
					}
					if tt.edit != nil {
						return tt.edit(tx)
					}
					return nil
				})
			})
			rep := s.verify(func(o *audit.Options) { o.ReadModels = path })
			f := findings(rep, audit.CheckReadModels)
			switch {
			case tt.edit == nil:
				if !rep.OK || len(rep.Findings) != 0 {
					t.Fatalf("findings on a file stopped mid-rebuild: %+v", rep.Findings)
				}
			case rep.OK || len(f) == 0:
				t.Fatalf("read_models findings %+v, want the edit named", rep.Findings)
			default:
				for _, x := range f {
					if x.Seq != tt.seq {
						t.Fatalf("read_models finding %+v, want each at seq %d", x, tt.seq)
					}
				}
				if !slices.ContainsFunc(f, func(x audit.Finding) bool { return strings.Contains(x.Message, "bucket "+tt.bucket+", key ") }) {
					t.Fatalf("read_models findings %+v, want one naming a key of bucket %s", f, tt.bucket)
				}
			}
			if want := []audit.ProjectionCheckpoint{{Projection: "ledger", Seq: tt.ledger}}; rep.Checked.ReadModels != "file" || rep.Checked.ReadModelsSeq != 10 || !slices.Equal(rep.Checked.ReadModelsBehind, want) {
				t.Fatalf("checked: %+v, want the file compared at seq 10 with %+v behind", rep.Checked, want)
			}
		})
	}
}

// editReadModels changes the read-model file at path in one bbolt
// transaction, as a hand (or a tamperer) would.
func editReadModels(t *testing.T, path string, edit func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(edit); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// setCheckpoint moves projection's checkpoint in the file to seq.
func setCheckpoint(tx *bbolt.Tx, projection string, seq eventstore.Seq) error {
	meta := tx.Bucket([]byte("meta"))
	key := []byte("projection:" + projection)
	rec := bytes.Clone(meta.Get(key))
	if len(rec) != 16 {
		return fmt.Errorf("%s's record %x", projection, rec)
	}
	binary.BigEndian.PutUint64(rec[8:], uint64(seq))
	return meta.Put(key, rec)
}

// The engine's read models are compared by content hash only when its
// projections are those of this bankbook: an engine of other projection
// versions (another bankbook during an upgrade), or without one of them,
// hashes otherwise, and verify says so (the projections named, the report
// saying they were not compared) instead of naming a difference; one that
// does not say its versions gets a hint on the hash's finding.
func TestVerifyComparesTheEnginesReadModelsOnlyAtTheSameVersions(t *testing.T) {
	s := newStream(t)
	money(s)
	path := filepath.Join(t.TempDir(), "readmodels.db")
	seq, hash, err := projections.Replay(context.Background(), s.store.Reader(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	own := projections.Versions(projections.DefaultProjections())
	older, fewer := maps.Clone(own), maps.Clone(own)
	older["orders"]--
	delete(fewer, "orders")
	verify := func(l audit.LiveState) audit.Report {
		return s.verify(func(o *audit.Options) {
			o.Live = func(context.Context) (audit.LiveState, error) { return l, nil }
		})
	}
	if rep := verify(audit.LiveState{Hash: hash, Seq: seq, Versions: own}); !rep.OK || rep.Checked.ReadModels != "engine" || rep.Checked.ReadModelsSeq != seq {
		t.Fatalf("the same versions and hash: %+v", rep)
	}
	for _, tc := range []struct {
		name     string
		versions map[string]int
		want     string
	}{
		{"an older orders projection", older, fmt.Sprintf("orders: engine %d, here %d", own["orders"]-1, own["orders"])},
		{"no orders projection", fewer, fmt.Sprintf("orders: engine none, here %d", own["orders"])},
	} {
		rep := verify(audit.LiveState{Hash: hash, Seq: seq, Versions: tc.versions})
		if f := findings(rep, audit.CheckReadModels); rep.OK || len(f) != 1 || !strings.Contains(f[0].Message, "other projection versions") || !strings.Contains(f[0].Message, tc.want) {
			t.Errorf("%s: %+v, want one finding naming %q", tc.name, rep.Findings, tc.want)
		}
		if rep.Checked.ReadModels == "engine" || rep.Checked.ReadModelsSeq != 0 {
			t.Errorf("%s: checked %q at seq %d, but the engine's read models were not compared", tc.name, rep.Checked.ReadModels, rep.Checked.ReadModelsSeq)
		}
	}
	for _, tc := range []struct {
		versions map[string]int
		hint     bool
	}{{own, false}, {nil, true}} {
		rep := verify(audit.LiveState{Hash: "another", Seq: seq, Versions: tc.versions})
		f := findings(rep, audit.CheckReadModels)
		if rep.OK || len(f) != 1 || !strings.Contains(f[0].Message, "content hash another") ||
			strings.Contains(f[0].Message, "does not say its projection versions") != tc.hint {
			t.Errorf("versions %v, another hash: %+v, want the hashes named, a hint on versions: %v", tc.versions, rep.Findings, tc.hint)
		}
	}
}
