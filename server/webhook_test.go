package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/testenv"
)

const webhookSecret = "whsec-0123456789abcdef"

// closedAccount is an account the provider accepts transfers to and then
// fails them (account_closed) once they are final.
var closedAccount = domain.BankAccount{Bank: "국민은행", Number: "444-000-444", Holder: "박폐쇄"}

// TestPayoutResultsArriveByWebhook: a provider that settles transfers an
// hour after taking them tells the result by a signed webhook, and the
// result is recorded at once, although the payouts part would not ask
// again for an hour; what is recorded is what the provider's status says,
// so a signed webhook about a transfer still pending records nothing, one
// whose claim the final status contradicts records the status, and
// unsigned, wrongly signed, stale or oversized ones are refused.
func TestPayoutResultsArriveByWebhook(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{SettleAfter: time.Hour, FailAccounts: []string{closedAccount.Number}, WebhookRepeat: 1})
	sim := newChatSim(t, 100)
	e, bk := scenarioEngine(t, func(c *engine.Config) {
		c.ChatSim, c.ChatSimInstance, c.NotifyRate = true, sim, 100
		c.FirmbankURL, c.FirmbankToken = g.url, "test"
		c.FirmbankStatusLag = engine.Duration(50 * time.Millisecond)
		c.FirmbankSettleTimeout = engine.Duration(300 * time.Millisecond)
		c.FirmbankPendingRetry = engine.Duration(time.Hour)
		c.FirmbankWebhookSecret = webhookSecret
	})
	hook := "http://" + e.HTTPAddr().String() + "/webhooks/firmbank"
	g.fake.SetWebhook(hook, webhookSecret)

	fund(t, e, bk, "u-wh", "김웹훅", 10000)
	settles := e.withdraw(t, "u-wh", 3000, payee)
	fails := e.withdraw(t, "u-wh", 2000, closedAccount)
	// The payouts part has sent both and waits an hour to ask again.
	testenv.Eventually(t, 30*time.Second, "both payouts sent and waiting", func() bool {
		_, a := g.fake.Result(settles)
		_, b := g.fake.Result(fails)
		return a && b && e.Loops["payouts"].Stats().Deferred >= 2
	})
	if n := g.fake.DeliverWebhooks(context.Background()); n != 0 {
		t.Fatalf("%d webhooks delivered while both transfers are pending", n)
	}

	// A signed webhook that claims a result the provider does not hold
	// records nothing: the status is asked, and says pending.
	forged, _ := json.Marshal(firmbanking.WebhookEvent{EventID: "evt_forged", Type: firmbanking.EventTransferFailed, CreatedAt: time.Now(),
		Transfer: firmbanking.Result{ID: settles, Status: firmbanking.StatusFailed, Reason: "account_closed"}})
	if code, body := postHook(t, hook, forged, firmbanking.SignWebhook([]byte(webhookSecret), time.Now(), forged)); code != http.StatusServiceUnavailable || !strings.Contains(body, `"pending"`) {
		t.Fatalf("a claim the provider's status does not back: %d %s", code, body)
	}
	for _, tc := range []struct {
		name string
		sig  string
		want int
	}{
		{"unsigned", "", http.StatusUnauthorized},
		{"another secret", firmbanking.SignWebhook([]byte("not-the-secret-at-all"), time.Now(), forged), http.StatusUnauthorized},
		{"signed ten minutes ago", firmbanking.SignWebhook([]byte(webhookSecret), time.Now().Add(-10*time.Minute), forged), http.StatusUnauthorized},
		{"signature of another body", firmbanking.SignWebhook([]byte(webhookSecret), time.Now(), []byte(`{}`)), http.StatusUnauthorized},
	} {
		if code, body := postHook(t, hook, forged, tc.sig); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	unknown, _ := json.Marshal(firmbanking.WebhookEvent{EventID: "evt_x", Type: firmbanking.EventTransferSettled, CreatedAt: time.Now(),
		Transfer: firmbanking.Result{ID: "P-never", Status: firmbanking.StatusSettled, Fee: 500}})
	if code, body := postHook(t, hook, unknown, firmbanking.SignWebhook([]byte(webhookSecret), time.Now(), unknown)); code != http.StatusNotFound {
		t.Errorf("a payout never requested: %d %s", code, body)
	}
	big := bytes.Repeat([]byte(" "), 65<<10)
	if code, body := postHook(t, hook, big, firmbanking.SignWebhook([]byte(webhookSecret), time.Now(), big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body of 65 KiB: %d %s", code, body)
	}
	if code, _ := e.get(t, "/webhooks/firmbank"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	for _, id := range []string{settles, fails} {
		if v, _ := e.payout(t, id); v.Status != "requested" {
			t.Fatalf("payout %s after refused webhooks: %+v", id, v)
		}
	}

	// An hour later at the provider: both are final, and their webhooks
	// (each delivered twice) record them.
	g.fake.Advance(time.Hour)
	// A signed claim that the provider's final status contradicts records
	// the status: the failed payout is recorded failed, not settled.
	contra, _ := json.Marshal(firmbanking.WebhookEvent{EventID: "evt_contra", Type: firmbanking.EventTransferSettled, CreatedAt: time.Now(),
		Transfer: firmbanking.Result{ID: fails, Status: firmbanking.StatusSettled, Fee: 500}})
	lagged := 1 // the forged claim's 503 above
	testenv.Eventually(t, 20*time.Second, "the contradicted claim answered", func() bool {
		code, body := postHook(t, hook, contra, firmbanking.SignWebhook([]byte(webhookSecret), time.Now(), contra))
		switch code {
		case http.StatusServiceUnavailable: // the status lags the provider
			lagged++
			return false
		case http.StatusOK:
			return true
		}
		t.Fatalf("a claim the provider's final status contradicts: %d %s", code, body)
		return false
	})
	e.waitPayouts(t, "failed", fails)
	if n := g.fake.DeliverWebhooks(context.Background()); n != 2 {
		t.Fatalf("%d webhooks delivered, want 2 (%+v)", n, g.fake.WebhookStats())
	}
	if st := g.fake.WebhookStats(); st.Delivered != 2 || st.Posts != 4 || st.Failed != 0 {
		t.Fatalf("deliveries %+v: each event twice, every post answered 2xx", st)
	}
	e.waitPayouts(t, "settled", settles)
	e.waitPayouts(t, "failed", fails)
	// The failed payout's money is back; the settled one cost the fee.
	testenv.Eventually(t, 20*time.Second, "the failed payout's money back", func() bool { return e.wallet(t, "u-wh").Balance == 7000 })
	// The user is told of each, once.
	testenv.CheckFor(t, 30*time.Second, func() error {
		byKind := map[string][]string{}
		for _, m := range sim.Messages("user:u-wh") {
			byKind[m.CustomType] = append(byKind[m.CustomType], m.Message+" "+m.Data)
		}
		if r := byKind["withdrawal_returned"]; len(r) != 1 || !strings.Contains(r[0], "2,000원") || !strings.Contains(r[0], fails) {
			return fmt.Errorf("withdrawal_returned messages to user:u-wh: %q", r)
		}
		if s := byKind["withdrawal_sent"]; len(s) != 1 || !strings.Contains(s[0], "3,000원") || !strings.Contains(s[0], settles) {
			return fmt.Errorf("withdrawal_sent messages to user:u-wh: %q", s)
		}
		return nil
	})
	if bal := e.balanced(t); bal[domain.AccountBankFees] != 500 || bal[domain.AccountWallet("u-wh")] != -7000 {
		t.Fatalf("ledger: %v", bal)
	}
	// Recorded once each, by the webhook, which the history names.
	auditor := connectAs(t, e.ClientURL(), e.SeedFile(auth.Auditor))
	for id, final := range map[string]string{settles: "payout.settled", fails: "payout.failed"} {
		evs, _ := wholeHistory(t, auditor, "payout", id, 0)
		var finals []api.AuditEvent
		for _, ev := range evs {
			if ev.EventType == final {
				finals = append(finals, ev)
			}
		}
		if len(finals) != 1 || finals[0].Actor != "webhook" || !strings.HasPrefix(finals[0].CorrelationID, "evt_") {
			t.Fatalf("payout %s history: %+v", id, evs)
		}
	}
	if st := e.Loops["payouts"].Stats(); st.Retried != 0 || st.DeadLettered != 0 {
		t.Fatalf("payouts part %+v", st)
	}
	// Every answer is counted, refusals by their status.
	_, metrics := e.get(t, "/metrics")
	for _, want := range []string{
		`bankbook_requests_total{code="200",endpoint="webhook_firmbank"} 5`,
		`bankbook_requests_total{code="401",endpoint="webhook_firmbank"} 4`,
		fmt.Sprintf(`bankbook_requests_total{code="503",endpoint="webhook_firmbank"} %d`, lagged),
		`bankbook_requests_total{code="404",endpoint="webhook_firmbank"} 1`,
		`bankbook_requests_total{code="413",endpoint="webhook_firmbank"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// postHook posts body to the webhook URL with signature sig (none if
// empty) and returns the answer.
func postHook(t *testing.T, url string, body []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sig != "" {
		req.Header.Set(firmbanking.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
