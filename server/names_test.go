package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// submitMany submits n orders for buyerName from workers goroutines and
// returns the replies; every submit must succeed.
func submitMany(t *testing.T, c *client.Client, n, workers int, buyerName string) []api.SubmitOrderReply {
	t.Helper()
	out, exhausted := submitAll(t, c, n, workers, buyerName)
	if exhausted > 0 || len(out) != n {
		t.Fatalf("%d of %d submits succeeded, %d found the names exhausted", len(out), n, exhausted)
	}
	return out
}

func distinctNames(t *testing.T, replies []api.SubmitOrderReply) {
	t.Helper()
	seen := map[string]string{}
	for _, r := range replies {
		n := domain.NormalizeName(r.DepositorName)
		if other, dup := seen[n]; dup {
			t.Fatalf("depositor name %q given to orders %s and %s", r.DepositorName, other, r.OrderID)
		}
		seen[n] = r.OrderID
	}
}

// TestDepositorNamesExhaustAndFree: 1000 submits for one buyer name fill
// its names (a submit tries 64 of them, in an order derived from its order
// ID, so the last ones may be refused while a few are free: every refusal
// is 409 depositor_names_exhausted); submits that try a free name first
// fill the rest; then every submit is refused without writing anything,
// and cancelling one order frees exactly its name.
func TestDepositorNamesExhaustAndFree(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.NameGrace = 0 })
	const buyerName = "이 서 연"
	replies, exhausted := submitAll(t, e.c, domain.DepositorSuffixes, 16, buyerName)
	if t.Failed() {
		return
	}
	if len(replies) < 800 {
		t.Fatalf("%d of 1000 submits got a name (%d refused), want most", len(replies), exhausted)
	}
	held := map[string]bool{}
	for _, r := range replies {
		held[r.DepositorName] = true
	}
	for s := range domain.DepositorSuffixes {
		name := domain.DepositorName(buyerName, s, e.cfg.DepositorNameMax)
		if held[name] {
			continue
		}
		var rep api.SubmitOrderReply
		id := orderIDFirstTrying(t, "fill", name, buyerName, e.cfg.DepositorNameMax)
		e.call(t, subjSubmit, map[string]any{"order_id": id, "buyer_id": "filler-" + id, "buyer_name": buyerName, "amount": 5}, &rep, nil)
		if rep.DepositorName != name {
			t.Fatalf("order %s got %q, want the free %q", id, rep.DepositorName, name)
		}
		replies = append(replies, rep)
	}
	distinctNames(t, replies)

	before := e.lastSeq(t)
	ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "late", "buyer_name": "이서연", "amount": 5}, nil)
	if ce.Status != 409 || ce.Code != "depositor_names_exhausted" {
		t.Fatalf("1001st open order: %+v", ce)
	}
	if e.lastSeq(t) != before {
		t.Fatal("the refused submit wrote an event")
	}

	// Cancelling one order frees exactly its name, once the bank scan has
	// covered its grace (none here).
	freed := replies[123]
	e.call(t, subjCancel, map[string]any{"order_id": freed.OrderID, "deposited": false}, nil, nil)
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: time.Now().UTC()}, nil, nil)
	var again api.SubmitOrderReply
	id := orderIDFirstTrying(t, "again", freed.DepositorName, buyerName, e.cfg.DepositorNameMax)
	e.call(t, subjSubmit, map[string]any{"order_id": id, "buyer_id": "late", "buyer_name": "이서연", "amount": 5}, &again, nil)
	if again.DepositorName != freed.DepositorName {
		t.Fatalf("new order got %q, the only free name is %q", again.DepositorName, freed.DepositorName)
	}
}

// submitAll submits n orders for buyerName, each by its own buyer, from
// workers goroutines, and returns the replies of those that got a name and
// how many were refused with depositor_names_exhausted (any other error
// fails the test).
func submitAll(t *testing.T, c *client.Client, n, workers int, buyerName string) ([]api.SubmitOrderReply, int) {
	t.Helper()
	var mu sync.Mutex
	var out []api.SubmitOrderReply
	exhausted := 0
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				var rep api.SubmitOrderReply
				_, err := c.Call(ctxT(t), subjSubmit, map[string]any{"buyer_id": fmt.Sprintf("u%d", i), "buyer_name": buyerName, "amount": 1000 + i}, &rep, nil)
				mu.Lock()
				var ce *client.Error
				switch {
				case err == nil:
					out = append(out, rep)
				case errors.As(err, &ce) && ce.Status == 409 && ce.Code == "depositor_names_exhausted":
					exhausted++
				default:
					t.Errorf("submit %d: %v", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, exhausted
}

func TestLongBuyerNameFitsTheBankField(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.DepositorNameMax = 10 })
	long := "가나다라마바사아자차카타파하" // 14 characters
	var rep api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u", "buyer_name": long, "amount": 5}, &rep, nil)
	if utf8.RuneCountInString(rep.DepositorName) != 10 || rep.DepositorName[:len("가나다라마바사")] != "가나다라마바사" {
		t.Fatalf("depositor name %q: want the first 7 characters and 3 digits", rep.DepositorName)
	}
}

// TestDepositorNamesUniqueAcrossInstances runs two engines against one NATS
// server: the second connects to the first's embedded server as an external
// cluster would be used. Requests are spread over both by the queue group.
func TestDepositorNamesUniqueAcrossInstances(t *testing.T) {
	a := startEngine(t)
	b := startEngine(t, func(c *engine.Config) {
		joinEngine(c, a.Engine)
		c.DataDir = filepath.Join(t.TempDir(), "b")
	})
	// 300 orders for one buyer name, so suffixes collide often.
	replies := submitMany(t, a.c, 300, 32, "최유진")
	if t.Failed() {
		return
	}
	distinctNames(t, replies)

	// Both instances served requests.
	served := map[string]int{}
	sub, err := a.nc.SubscribeSync(a.nc.NewRespInbox())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.nc.PublishRequest("$SRV.STATS.bankbook", sub.Subject, nil); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := sub.NextMsg(time.Second)
		if err != nil {
			break
		}
		var stats struct {
			ID        string `json:"id"`
			Endpoints []struct {
				Subject     string `json:"subject"`
				NumRequests int    `json:"num_requests"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal(msg.Data, &stats); err != nil {
			t.Fatal(err)
		}
		for _, ep := range stats.Endpoints {
			if ep.Subject == subjSubmit {
				served[stats.ID] += ep.NumRequests
			}
		}
	}
	if len(served) != 2 {
		t.Fatalf("submits per instance: %v; want both instances serving", served)
	}
	for id, n := range served {
		if n == 0 {
			t.Fatalf("instance %s served no submit: %v", id, served)
		}
	}
	// Each instance's read models converge on the same stream.
	last := a.lastSeq(t)
	for _, e := range []*testEngine{a, b} {
		testenv.Eventually(t, 10*time.Second, "read models caught up", func() bool { return e.Runner.Checkpoint() == last })
	}
	ha, _, _ := a.Models.Hash()
	hb, _, _ := b.Models.Hash()
	if ha != hb {
		t.Fatalf("two instances' read models differ at seq %d", last)
	}
}
