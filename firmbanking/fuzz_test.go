package firmbanking

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func FuzzTransferValidate(f *testing.F) {
	f.Add("P-1", int64(50000), "KB", "123-456-789", "김민수", "bankbook")
	f.Add("", int64(0), "", "", "", "")
	f.Add(strings.Repeat("x", 65), int64(-1), " ", "--", "\x00", "\xff")
	f.Add("a_B-9", domain.MaxAmount, "신한", "1", strings.Repeat("가", 64), strings.Repeat("나", 40))
	f.Fuzz(func(t *testing.T, id string, amount int64, bank, number, holder, memo string) {
		tr := Transfer{ID: id, Amount: amount, To: domain.BankAccount{Bank: bank, Number: number, Holder: holder}, Memo: memo}
		if err := tr.Validate(); err != nil {
			if tr.Validate().Error() != err.Error() {
				t.Fatal("Validate is not deterministic")
			}
			return
		}
		// A valid transfer survives the wire unchanged and is accepted by
		// the fake's strict decoder.
		data, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeTransfer(data)
		if err != nil {
			t.Fatalf("decodeTransfer(%s): %v", data, err)
		}
		if back != tr {
			t.Fatalf("round trip changed %+v into %+v", tr, back)
		}
		if len(id) == 0 || len(id) > MaxIDLen || amount <= 0 || amount > domain.MaxAmount {
			t.Fatalf("Validate accepted %+v", tr)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"id":"P-1","status":"settled","fee":500,"provider_ref":"FB1"}`), "P-1")
	f.Add([]byte(`{"id":"P-1","status":"pending","fee":0}`), "P-2")
	f.Add([]byte(`{"id":"P-1","status":"lost","fee":-1}`), "P-1")
	f.Add([]byte(`{"id":"P-1","stat`), "P-1")
	f.Add([]byte(`null`), "")
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		res, err := decodeResult(data, id)
		if err != nil {
			return
		}
		if res.ID != id || !res.Status.Valid() || res.Fee < 0 {
			t.Fatalf("decodeResult(%q, %q) accepted %+v", data, id, res)
		}
	})
}

// FuzzFakeSend feeds arbitrary bodies to the fake: it must never fail with a
// 5xx, and must accept exactly the bodies that decode to a valid transfer
// whose id is the Idempotency-Key.
func FuzzFakeSend(f *testing.F) {
	f.Add(`{"id":"P-1","amount":1,"to":{"bank":"KB","number":"1","holder":"a"}}`, "P-1")
	f.Add(`{"id":"P-1","amount":1,"to":{"bank":"KB","number":"1","holder":"a"}}`, "P-2")
	f.Add(`{"id":"P-1","amount":1e3,"to":{}}`, "P-1")
	f.Add(`[]`, "")
	f.Add(`{"id":"P-1","amount":1,"to":{"bank":"KB","number":"1","holder":"a"},"x":1}`, "P-1")
	f.Fuzz(func(t *testing.T, body, key string) {
		fake := NewFakeService(FakeOptions{Fee: 500})
		req := httptest.NewRequest(http.MethodPost, "/transfers", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		fake.Handler().ServeHTTP(rec, req)

		tr, decErr := decodeTransfer([]byte(body))
		valid := decErr == nil && tr.ID == key
		switch {
		case rec.Code == http.StatusAccepted && valid:
			if _, err := decodeResult(rec.Body.Bytes(), key); err != nil {
				t.Fatalf("202 body %s: %v", rec.Body, err)
			}
			if sent := fake.Sent(); len(sent) != 1 || sent[0] != tr {
				t.Fatalf("Sent = %+v, want [%+v]", sent, tr)
			}
		case rec.Code == http.StatusBadRequest && !valid:
			if len(fake.Sent()) != 0 {
				t.Fatalf("a refused body was sent: %+v", fake.Sent())
			}
		default:
			t.Fatalf("body %q key %q: status %d (%s), decode error %v", body, key, rec.Code, rec.Body, decErr)
		}
	})
}

// TestPropertyExactlyOnce settles random transfers, each from several
// goroutines at once, against a fake that fails 30% of requests, and checks
// that every transfer reaches its final result and the money of each left
// exactly once. Set FIRMBANKING_SEED to replay a run.
func TestPropertyExactlyOnce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FIRMBANKING_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (FIRMBANKING_SEED=%d to replay)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	h := newHarness(t, FakeOptions{
		Fee:          500,
		SettleAfter:  time.Duration(rng.IntN(60)) * time.Second,
		FailAccounts: []string{"000-000"},
		FailRate:     0.3,
		Seed:         seed,
	})
	h.client.MaxAttempts = 40 // 0.3⁴⁰: never gives up

	type job struct {
		tr     Transfer
		copies int
	}
	var jobs []job
	wantSent := map[string]bool{}
	for i := range 20 + rng.IntN(20) {
		tr := transfer(fmt.Sprintf("P-%d", i))
		tr.Amount = 1 + rng.Int64N(10_000_000)
		if rng.IntN(5) == 0 {
			tr.To.Number = "000-000"
		} else {
			wantSent[tr.ID] = true
		}
		jobs = append(jobs, job{tr, 1 + rng.IntN(4)})
	}

	var (
		mu      sync.Mutex
		results = map[string][]Result{}
		wg      sync.WaitGroup
	)
	for _, j := range jobs {
		for range j.copies {
			wg.Go(func() {
				res, err := h.settler().settle(context.Background(), h.client, j.tr, Backoff{Initial: time.Second, Max: 10 * time.Second})
				if err != nil {
					t.Errorf("Settle(%s): %v", j.tr.ID, err)
					return
				}
				mu.Lock()
				results[j.tr.ID] = append(results[j.tr.ID], res)
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	for _, j := range jobs {
		want := StatusSettled
		if !wantSent[j.tr.ID] {
			want = StatusFailed
		}
		rs := results[j.tr.ID]
		if len(rs) != j.copies {
			t.Fatalf("%s: %d results, want %d", j.tr.ID, len(rs), j.copies)
		}
		for _, r := range rs {
			if r != rs[0] || r.Status != want {
				t.Fatalf("%s: results %+v, want all %s and equal", j.tr.ID, rs, want)
			}
		}
	}
	sent := h.fake.Sent()
	seen := map[string]bool{}
	for _, tr := range sent {
		if seen[tr.ID] || !wantSent[tr.ID] {
			t.Fatalf("%s sent twice or wrongly: Sent = %+v", tr.ID, sent)
		}
		seen[tr.ID] = true
	}
	if len(seen) != len(wantSent) {
		t.Fatalf("sent %d transfers, want %d", len(seen), len(wantSent))
	}
	if fees := h.fake.FeesCharged(); fees != 500*int64(len(wantSent)) {
		t.Fatalf("FeesCharged = %d, want %d", fees, 500*len(wantSent))
	}
}
