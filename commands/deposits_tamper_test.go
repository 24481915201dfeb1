package commands_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/reservations"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/watermarks"
)

// realStack is the command handlers on the real stores of an embedded
// JetStream, with the raw JetStream context (to tamper with a bucket or a
// stream as an attacker or an accident would) and the handlers' log.
type realStack struct {
	h     commands.Handlers
	js    jetstream.JetStream
	es    *eventstore.Store
	names *reservations.Store
	tm    *timers.Timers
	marks *watermarks.Store
	log   *testenv.SyncBuffer
}

var realCollect = domain.BankAccount{Bank: "KB", Number: "1", Holder: "bankbook"}

func newRealStack(t *testing.T, cfg commands.Config) *realStack {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	codec := domain.Events()
	es, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		t.Fatal(err)
	}
	names, err := reservations.Open(ctx, js, reservations.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := timers.Open(ctx, js, timers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	marks, err := watermarks.Open(ctx, js, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	s := &realStack{js: js, es: es, names: names, tm: tm, marks: marks, log: &testenv.SyncBuffer{}}
	s.h = s.another(t, cfg)
	return s
}

// another returns the handlers of another instance on s's stream, buckets
// and timers: its own caches and turns.
func (s *realStack) another(t *testing.T, cfg commands.Config) commands.Handlers {
	t.Helper()
	cfg.CollectAccount = realCollect
	h, err := commands.New(commands.Deps{Events: s.es, Codec: domain.Events(), Names: s.names, Timers: s.tm, Watermarks: s.marks}, cfg, zerolog.New(s.log))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (s *realStack) submit(t *testing.T, id, buyerName string, amount int64) api.SubmitOrderReply {
	t.Helper()
	rep, err := s.h.Orders.SubmitOrder(context.Background(), commands.Meta{Command: api.OrderSubmit.Subject},
		api.SubmitOrderRequest{OrderID: id, BuyerID: "buyer-" + id, BuyerName: buyerName, Amount: amount})
	if err != nil {
		t.Fatalf("submit %s: %v", id, err)
	}
	return rep
}

func (s *realStack) deposit(t *testing.T, txn, name string, amount int64) api.RecordDepositReply {
	t.Helper()
	rep, err := s.h.Deposits.RecordDeposit(context.Background(), commands.Meta{Command: api.DepositRecord.Subject},
		api.RecordDepositRequest{BankTxnID: txn, AccountNumber: realCollect.Number, DepositorName: name, Amount: amount, DepositedAt: time.Now()})
	if err != nil {
		t.Fatalf("deposit %s: %v", txn, err)
	}
	return rep
}

func (s *realStack) commits(t *testing.T, typ, id string) int {
	t.Helper()
	c, err := s.es.Load(context.Background(), eventstore.Ref{Type: typ, ID: id}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(c)
}

// pointName rewrites the reservation of name, in the bucket itself, to
// order: what a client with write access to $KV could do.
func (s *realStack) pointName(t *testing.T, name string, order string) {
	t.Helper()
	ctx := context.Background()
	kv, err := s.js.KeyValue(ctx, "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	key := base64.RawURLEncoding.EncodeToString([]byte(domain.NormalizeName(name)))
	if _, err := kv.Get(ctx, key); err != nil {
		t.Fatalf("the reservation of %q is not where the test expects it: %v", name, err)
	}
	val, _ := json.Marshal(reservations.Holder{OrderID: domain.OrderID(order), ReservedAt: time.Now().UTC()})
	if _, err := kv.Put(ctx, key, val); err != nil {
		t.Fatal(err)
	}
}

// TestRewrittenReservationDoesNotRedirectAPayment: given a victim's order
// and an attacker's order of the same amount, when the reservation of the
// victim's depositor name is rewritten to point at the attacker's order
// (awaiting its deposit, cancel-reserved or already paid), then the
// victim's transfer neither pays the attacker's order nor credits the
// attacker's wallet: it is an orphan (no_such_name) for an operator, and a
// warning names the reservation's order. Pointed back at the victim's
// order, the name pays it.
func TestRewrittenReservationDoesNotRedirectAPayment(t *testing.T) {
	s := newRealStack(t, commands.Config{})
	ctx := context.Background()
	yes := true
	for i, c := range []struct {
		name    string
		prepare func(t *testing.T, attacker string, attackerName string)
	}{
		{"attacker's order awaits its deposit", func(*testing.T, string, string) {}},
		{"attacker's order is cancel-reserved", func(t *testing.T, attacker, _ string) {
			if _, err := s.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: attacker, Deposited: &yes}); err != nil {
				t.Fatal(err)
			}
		}},
		{"attacker's order is paid", func(t *testing.T, attacker, attackerName string) {
			if rep := s.deposit(t, "pay-"+attacker, attackerName, 1000); rep.Outcome != domain.OutcomeMatched {
				t.Fatalf("paying the attacker's own order: %+v", rep)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			victim, attacker := fmt.Sprintf("o-victim-%d", i), fmt.Sprintf("o-attacker-%d", i)
			v := s.submit(t, victim, "김민수", 1000)
			a := s.submit(t, attacker, "이영희", 1000)
			c.prepare(t, attacker, a.DepositorName)
			attackerCommits := s.commits(t, domain.AggregateOrder, attacker)

			s.pointName(t, v.DepositorName, attacker)
			txn := fmt.Sprintf("victim-pays-%d", i)
			rep := s.deposit(t, txn, v.DepositorName, 1000)
			if rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonNoSuchName || rep.OrderID != "" || rep.UserID != "" {
				t.Fatalf("victim's transfer under a rewritten reservation: %+v, want an orphan (no_such_name) naming no order", rep)
			}
			if n := s.commits(t, domain.AggregateOrder, attacker); n != attackerCommits {
				t.Fatalf("attacker's order has %d commits, had %d: the victim's money reached it", n, attackerCommits)
			}
			if n := s.commits(t, domain.AggregateWallet, "buyer-"+attacker); n != 0 {
				t.Fatalf("attacker's wallet has %d commits: the victim's money was refunded to it", n)
			}
			if n := s.commits(t, domain.AggregateOrder, victim); n != 1 {
				t.Fatalf("victim's order has %d commits, want its submit only", n)
			}
			if !strings.Contains(s.log.String(), `"reservation_order_id":"`+attacker+`"`) {
				t.Fatalf("no warning names the rewritten reservation's order; log:\n%s", s.log.String())
			}

			// The control: the same name, reserved for the victim's order, pays it.
			s.pointName(t, v.DepositorName, victim)
			if rep := s.deposit(t, txn+"-again", v.DepositorName, 1000); rep.Outcome != domain.OutcomeMatched || rep.OrderID != victim {
				t.Fatalf("victim's transfer with the reservation restored: %+v, want it to pay %s", rep, victim)
			}
		})
	}
}
