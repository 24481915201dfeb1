package soak

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/engineproc"
)

// TestSmoke is the kill -9 run in small: a real engine process, four
// clients, three SIGKILLs with restarts, then every check. 'make soak' is
// the long one.
func TestSmoke(t *testing.T) {
	smoke(t, func(*Config) {})
}

// TestSmokeInstances is the same with two engine instances sharing the
// first's NATS server, each kill picking one.
func TestSmokeInstances(t *testing.T) {
	smoke(t, func(c *Config) { c.Instances, c.Cycles = 2, 4 })
}

func smoke(t *testing.T, mutate func(*Config)) {
	if testing.Short() {
		t.Skip("builds bankbook and kills it a few times: about a minute")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bankbook")
	if err := Build(t.Context(), bin, raceEnabled); err != nil {
		t.Fatal(err)
	}
	cfg := Smoke(bin, filepath.Join(dir, "run"))
	mutate(&cfg)
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	rep, err := Run(t.Context(), cfg)
	var out strings.Builder
	rep.WriteTo(&out)
	t.Log("\n" + out.String())
	if err != nil {
		if errors.Is(err, ErrChecksFailed) || errors.Is(err, ErrEngine) {
			for _, log := range []string{"engine.log", "engine-2.log"} {
				if path := filepath.Join(cfg.Dir, log); fileExists(path) {
					t.Logf("%s ends:\n%s", log, engineproc.LogTail(path, 6000))
				}
			}
		}
		t.Fatalf("soak smoke run: %v", err)
	}
	if rep.Kills != cfg.Cycles || rep.Acks == 0 {
		t.Fatalf("the run did %d kills and got %d acks; want %d kills and some acks", rep.Kills, rep.Acks, cfg.Cycles)
	}
	acks, err := ReadAcks(filepath.Join(cfg.Dir, "acks.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, a := range acks {
		ops[a.Op]++
	}
	for _, op := range []string{api.OrderSubmit.Name, api.OrderCancel.Name, api.DepositRecord.Name, api.StoreLink.Name, api.BillIssue.Name} {
		if ops[op] == 0 {
			t.Errorf("no %s acknowledged in the run (acks by endpoint: %v)", op, ops)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestChecksFail(t *testing.T) {
	reply := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	submit := api.SubmitOrderReply{OrderID: "o-1", DepositorName: "SK01123", Amount: 1000}
	billAck := Ack{N: 1, Op: api.BillIssue.Name, Key: "k1", Status: 200,
		Request: reply(api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 10_000}),
		Reply:   reply(api.IssueBillReply{BillID: "b-1", Status: "active", StoreID: "s-1", Amount: 10_000})}
	storeDep := domain.NewDepositID("456", "T5")
	bulkAck := func(res api.BulkResult) Ack {
		return Ack{N: 3, Op: api.BillIssueBulk.Name, Key: "k3", Status: 200,
			Request: reply(api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{{StoreID: "s-1", Amount: 10_000}}}),
			Reply:   reply(api.IssueBulkReply{Results: []api.BulkResult{res}})}
	}
	storePaymentAck := Ack{N: 2, Op: api.DepositRecord.Name, Key: "k2", Status: 200,
		Request: reply(api.RecordDepositRequest{BankTxnID: "T5", AccountNumber: "456", DepositorName: "ST01", Amount: 3_000}),
		Reply:   reply(api.RecordDepositReply{DepositID: string(storeDep), Outcome: domain.OutcomeStorePayment, BillID: "b-1"})}
	tests := []struct {
		name  string
		acks  []Ack
		facts func(f *facts)
		check string
	}{
		{
			name: "a repeat answered differently",
			acks: []Ack{
				{N: 1, Op: api.OrderSubmit.Name, Key: "k1", Status: 200, Reply: reply(submit)},
				{N: 2, Op: api.OrderSubmit.Name, Key: "k1", Status: 200, Reply: reply(api.SubmitOrderReply{OrderID: "o-2"}), Replayed: true, Repeat: true},
			},
			check: "same key, same answer",
		},
		{
			name: "a repeat not marked replayed",
			acks: []Ack{
				{N: 1, Op: api.OrderSubmit.Name, Key: "k1", Status: 200, Reply: reply(submit)},
				{N: 2, Op: api.OrderSubmit.Name, Key: "k1", Status: 200, Reply: reply(submit), Repeat: true},
			},
			check: "same key, same answer",
		},
		{
			name:  "a refusal that wrote",
			acks:  []Ack{{N: 1, Op: api.WalletWithdraw.Name, Key: "k1", Status: 422, Code: "insufficient_funds"}},
			facts: func(f *facts) { f.used[api.WalletWithdraw.Subject+"\x00k1"] = 1 },
			check: "refusals expected, wrote nothing",
		},
		{
			name:  "an unexpected refusal",
			acks:  []Ack{{N: 1, Op: api.OrderCancel.Name, Key: "k1", Status: 404, Code: "order_not_found", Request: reply(map[string]any{"order_id": "o-1"})}},
			check: "refusals expected, wrote nothing",
		},
		{
			name:  "two commits under one key",
			facts: func(f *facts) { f.keyed[keyedCommit{api.OrderSubmit.Subject, "k1", "order/o-1"}] = 2 },
			check: "one commit per key and aggregate",
		},
		{
			name: "a bank transaction recorded twice",
			facts: func(f *facts) {
				f.recorded["T1"] = []domain.DepositRecorded{{BankTxnID: "T1"}, {BankTxnID: "T1"}}
			},
			check: "bank transactions recorded once",
		},
		{
			name:  "an order paid twice",
			facts: func(f *facts) { f.paid["o-1"] = 2 },
			check: "orders paid at most once",
		},
		{
			name:  "a wallet credited twice for one reference",
			facts: func(f *facts) { f.credits[creditRef("u1", "dep_1")] = 2 },
			check: "wallet moves once per reference",
		},
		{
			name:  "a payout never finished",
			facts: func(f *facts) { f.requested["p1"] = 1 },
			check: "payouts requested and finished once",
		},
		{
			name: "an acknowledged deposit not in the stream",
			acks: []Ack{{N: 1, Op: api.DepositRecord.Name, Key: "k1", Status: 200,
				Request: reply(api.RecordDepositRequest{BankTxnID: "T9", AccountNumber: "123", DepositorName: "A", Amount: 1}),
				Reply:   reply(api.RecordDepositReply{DepositID: string(domain.NewDepositID("123", "T9")), Outcome: domain.OutcomeOrphaned})}},
			check: "recorded deposits kept",
		},
		{
			name:  "an acknowledged bill not in the stream",
			acks:  []Ack{billAck},
			check: "store payments and bills recorded",
		},
		{
			name: "an acknowledged bill issued for another amount",
			acks: []Ack{billAck},
			facts: func(f *facts) {
				f.bills["b-1"] = domain.BillIssued{BillID: "b-1", StoreID: "s-1", DistributorID: "d-1", Amount: 9_000}
			},
			check: "store payments and bills recorded",
		},
		{
			name: "an acknowledged cancel not in the stream",
			acks: []Ack{{N: 1, Op: api.BillCancel.Name, Key: "k1", Status: 200,
				Request: reply(api.CancelBillRequest{BillID: "b-1"}), Reply: reply(api.CancelBillReply{BillID: "b-1", Status: "cancelled"})}},
			facts: func(f *facts) { f.closed["b-1"], f.closes["b-1"] = closedExpired, 1 },
			check: "store payments and bills recorded",
		},
		{
			name: "a store payment recorded to another bill",
			acks: []Ack{storePaymentAck},
			facts: func(f *facts) {
				f.storePaid[storeDep] = []domain.StorePaymentReceived{{DepositID: storeDep, BillID: "b-2"}}
			},
			check: "store payments and bills recorded",
		},
		{
			name: "a store payment to another bill than the one current when it was paid",
			acks: []Ack{func() Ack { a := storePaymentAck; a.Want = "b-0"; return a }()},
			facts: func(f *facts) {
				f.storePaid[storeDep] = []domain.StorePaymentReceived{{DepositID: storeDep, BillID: "b-1"}}
			},
			check: "store payments and bills recorded",
		},
		{
			name: "a store payment billed while the store had no bill",
			acks: []Ack{func() Ack { a := storePaymentAck; a.Want = noBill; return a }()},
			facts: func(f *facts) {
				f.storePaid[storeDep] = []domain.StorePaymentReceived{{DepositID: storeDep, BillID: "b-1"}}
			},
			check: "store payments and bills recorded",
		},
		{
			name:  "an acknowledged store payment not in the stream",
			acks:  []Ack{storePaymentAck},
			check: "store payments and bills recorded",
		},
		{
			name: "a store payment recorded twice",
			facts: func(f *facts) {
				f.storePaid[storeDep] = []domain.StorePaymentReceived{{DepositID: storeDep}, {DepositID: storeDep}}
			},
			check: "store payments recorded once",
		},
		{
			name:  "a bill ended twice",
			facts: func(f *facts) { f.closed["b-1"], f.closes["b-1"] = closedCancelled, 2 },
			check: "bills end at most once",
		},
		{
			name:  "a bill of a bulk issue not in the stream",
			acks:  []Ack{bulkAck(api.BulkResult{Line: 1, StoreID: "s-1", BillID: "b-1", Status: "active"})},
			check: "store payments and bills recorded",
		},
		{
			name:  "a line of a bulk issue refused",
			acks:  []Ack{bulkAck(api.BulkResult{Line: 1, StoreID: "s-1", Error: &api.LineError{Code: "store_not_linked"}})},
			check: "store payments and bills recorded",
		},
		{
			name:  "two notifications for one event and recipient",
			facts: func(f *facts) { f.notesFor["ev-1\x00store:s-1"] = 2 },
			check: "one notification per event and recipient",
		},
		{
			name: "a notification for an event not in the stream",
			facts: func(f *facts) {
				f.notes["n-1"] = domain.NotificationCreated{NotificationID: "n-1", SourceEventID: "ev-1", Recipient: "store:s-1"}
				f.sent["n-1"] = 1
			},
			check: "one notification per event and recipient",
		},
		{
			name:  "an event whose notification was never created",
			facts: func(f *facts) { f.called["n-1"] = "bill.issued ev-1 (bill_issued) to store:s-1" },
			check: "one notification per event and recipient",
		},
		{
			name: "a notification never sent",
			facts: func(f *facts) {
				f.events["ev-1"] = true
				f.notes["n-1"] = domain.NotificationCreated{NotificationID: "n-1", SourceEventID: "ev-1", Recipient: "store:s-1"}
			},
			check: "notifications sent once",
		},
		{
			name: "a notification sent twice",
			facts: func(f *facts) {
				f.events["ev-1"] = true
				f.notes["n-1"] = domain.NotificationCreated{NotificationID: "n-1", SourceEventID: "ev-1", Recipient: "store:s-1"}
				f.sent["n-1"] = 2
			},
			check: "notifications sent once",
		},
		{
			name: "a simulated transfer lost far from any kill",
			acks: []Ack{{N: 1, Op: api.SimBankTransfer.Name, Status: 200, At: time.Now(),
				Request: reply(api.SimTransferRequest{DepositorName: "A", Amount: 1}), Reply: reply(api.SimTransferReply{BankTxnID: "SIM-1"})}},
			check: "simulated transfers recorded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFacts()
			if tt.facts != nil {
				tt.facts(f)
			}
			rep := &Report{}
			sameAnswers(rep, tt.acks)
			checkAcks(rep, tt.acks, f)
			checkDuplicates(rep, f)
			rep.finish()
			if failed := rep.Failed(); !slices.Contains(failed, tt.check) {
				t.Fatalf("failed checks %v, want %q among them", failed, tt.check)
			}
		})
	}
}

// The same checks pass on a consistent history, so the failures above are
// the doctored parts'.
func TestChecksPass(t *testing.T) {
	reply := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	submit := reply(api.SubmitOrderReply{OrderID: "o-1", DepositorName: "SK01123", Amount: 1000})
	dep := domain.NewDepositID("123", "T1")
	storeDep := domain.NewDepositID("456", "T5")
	acks := []Ack{
		{N: 1, Op: api.OrderSubmit.Name, Key: "k1", Status: 200, Request: reply(api.SubmitOrderRequest{BuyerID: "u1"}), Reply: submit},
		{N: 2, Op: api.DepositRecord.Name, Key: "k2", Status: 200,
			Request: reply(api.RecordDepositRequest{BankTxnID: "T1", AccountNumber: "123", DepositorName: "SK01123", Amount: 1000}),
			Reply:   reply(api.RecordDepositReply{DepositID: string(dep), Outcome: domain.OutcomeMatched, OrderID: "o-1"})},
		{N: 3, Op: api.OrderSubmit.Name, Key: "k1", Status: 200, Request: reply(api.SubmitOrderRequest{BuyerID: "u1"}), Reply: submit, Replayed: true, Repeat: true},
		{N: 4, Op: api.WalletWithdraw.Name, Key: "k3", Status: 422, Code: "insufficient_funds"},
		{N: 5, Op: api.SimBankTransfer.Name, Status: 200, At: time.Now(),
			Request: reply(api.SimTransferRequest{DepositorName: "SK01123", Amount: 1000}), Reply: reply(api.SimTransferReply{BankTxnID: "SIM-1"})},
		{N: 6, Op: api.BillIssue.Name, Key: "k4", Status: 200,
			Request: reply(api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 10_000}),
			Reply:   reply(api.IssueBillReply{BillID: "b-1", Status: "active", StoreID: "s-1", Amount: 10_000})},
		{N: 7, Op: api.DepositRecord.Name, Key: "k5", Status: 200, Want: "b-1",
			Request: reply(api.RecordDepositRequest{BankTxnID: "T5", AccountNumber: "456", DepositorName: "ST01", Amount: 3_000}),
			Reply:   reply(api.RecordDepositReply{DepositID: string(storeDep), Outcome: domain.OutcomeStorePayment, BillID: "b-1"})},
		{N: 8, Op: api.BillCancel.Name, Key: "k6", Status: 200,
			Request: reply(api.CancelBillRequest{BillID: "b-1"}), Reply: reply(api.CancelBillReply{BillID: "b-1", Status: "cancelled"})},
		{N: 9, Op: api.BillIssueBulk.Name, Key: "k7", Status: 200,
			Request: reply(api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{{StoreID: "s-1", Amount: 20_000}}}),
			Reply:   reply(api.IssueBulkReply{Results: []api.BulkResult{{Line: 1, StoreID: "s-1", BillID: "b-2", Status: "active"}}, Issued: 1})},
	}
	f := newFacts()
	f.bills["b-1"] = domain.BillIssued{BillID: "b-1", StoreID: "s-1", DistributorID: "d-1", Amount: 10_000}
	f.recorded["T5"] = []domain.DepositRecorded{{DepositID: storeDep, BankTxnID: "T5", Outcome: domain.OutcomeStorePayment}}
	f.storePaid[storeDep] = []domain.StorePaymentReceived{{DepositID: storeDep, BillID: "b-1", Amount: 3_000}}
	f.closed["b-1"], f.closes["b-1"] = closedCancelled, 1
	f.bills["b-2"] = domain.BillIssued{BillID: "b-2", StoreID: "s-1", DistributorID: "d-1", Amount: 20_000}
	f.events["ev-1"] = true
	f.notes["n-1"] = domain.NotificationCreated{NotificationID: "n-1", SourceEventID: "ev-1", Recipient: "store:s-1"}
	f.notesFor["ev-1\x00store:s-1"], f.sent["n-1"] = 1, 1
	f.called["n-1"] = "bill.issued ev-1 (bill_issued) to store:s-1"
	f.keyed[keyedCommit{api.OrderSubmit.Subject, "k1", "order/o-1"}] = 1
	f.recorded["T1"] = []domain.DepositRecorded{{DepositID: dep, BankTxnID: "T1", Outcome: domain.OutcomeMatched}}
	f.recorded["SIM-1"] = []domain.DepositRecorded{{BankTxnID: "SIM-1", Outcome: domain.OutcomeMatched}}
	f.paid["o-1"] = 1
	f.requested["p1"], f.finished["p1"] = 1, 1
	rep := &Report{}
	sameAnswers(rep, acks)
	seen := checkAcks(rep, acks, f)
	checkDuplicates(rep, f)
	rep.finish()
	if failed := rep.Failed(); len(failed) > 0 {
		var out strings.Builder
		rep.WriteTo(&out)
		t.Fatalf("checks failed on a consistent history: %v\n%s", failed, out.String())
	}
	if o := seen.orders["o-1"]; o == nil || o.buyer != "u1" || len(o.deposits) != 1 {
		t.Fatalf("what the acks say about order o-1: %+v", o)
	}
	if b := seen.bills["b-1"]; b == nil || b.n != 6 || !b.cancelled || len(b.payments) != 1 || b.payments[0] != storeDep {
		t.Fatalf("what the acks say about bill b-1: %+v", b)
	}
	if b := seen.bills["b-2"]; b == nil || b.n != 9 || b.issue.Amount != 20_000 || b.issue.StoreID != "s-1" {
		t.Fatalf("what the acks say about bill b-2: %+v", b)
	}
}

// A transfer is excused only by a kill soon after it (or just before: the
// reply may be read a moment after the engine died).
func TestKilledNear(t *testing.T) {
	t0 := time.Now()
	rep := &Report{kills: []time.Time{t0}}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-recordMargin + time.Second), true},
		{t0.Add(-recordMargin - time.Second), false},
		{t0.Add(500 * time.Millisecond), true},
		{t0.Add(2 * time.Second), false},
	} {
		if got := rep.killedNear(tc.at); got != tc.want {
			t.Errorf("ack %v from the kill: killedNear = %v, want %v", tc.at.Sub(t0), got, tc.want)
		}
	}
}

func TestDefinitive(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   bool
	}{
		{400, "invalid_input", true},
		{404, "order_not_found", true},
		{409, "wrong_state", true},
		{422, "insufficient_funds", true},
		{409, "conflict", false},
		{409, "in_progress", false},
		{429, "throttled", false},
		{503, "not_caught_up", false},
		{500, "internal", false},
	} {
		if got := definitive(&api.Error{Status: tc.status, Code: tc.code}); got != tc.want {
			t.Errorf("definitive(%d %s) = %v, want %v", tc.status, tc.code, got, tc.want)
		}
	}
}

func TestAckLogRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acks.jsonl")
	l, err := openAckLog(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Append(Ack{Client: i, Op: "order_submit", Key: "k", Request: json.RawMessage(`{"a":1}`), Status: 200, Reply: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openAckLog(path); err == nil {
		t.Fatal("a second run reused an existing ack log")
	}
	acks, err := ReadAcks(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks) != 3 || acks[0].N != 1 || acks[2].N != 3 || acks[1].Client != 1 {
		t.Fatalf("read back %+v", acks)
	}
}
