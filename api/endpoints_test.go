package api_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
)

func TestEveryEndpointIsDeclaredOnceWithItsConventions(t *testing.T) {
	names, subjects := map[string]bool{}, map[string]bool{}
	for _, ep := range api.Endpoints() {
		if names[ep.Name] || subjects[ep.Subject] {
			t.Errorf("%s (%s) declared twice", ep.Subject, ep.Name)
		}
		names[ep.Name], subjects[ep.Subject] = true, true
		prefix := map[api.Kind]string{api.KindCommand: "bankbook.cmd.", api.KindQuery: "bankbook.q.", api.KindSimulator: "bankbook.sim."}[ep.Kind]
		if prefix == "" || !strings.HasPrefix(ep.Subject, prefix) {
			t.Errorf("%s: kind %q does not match the subject", ep.Subject, ep.Kind)
		}
		if ep.Idempotent && ep.Kind != api.KindCommand {
			t.Errorf("%s: only commands take an Idempotency-Key", ep.Subject)
		}
	}
	if len(api.Endpoints()) < 17 {
		t.Fatalf("only %d endpoints declared", len(api.Endpoints()))
	}
	if api.OrderSubmit.Name != "order_submit" || api.LedgerTrialBalance.Name != "ledger_trial_balance" {
		t.Errorf("names: %s, %s", api.OrderSubmit.Name, api.LedgerTrialBalance.Name)
	}
}

// The API reference documents every endpoint the vocabulary declares, each
// under a heading of its own.
func TestDocsDescribeEveryEndpoint(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range api.Endpoints() {
		if !strings.Contains(string(doc), "### `"+ep.Subject+"`") {
			t.Errorf("docs/api.md has no section \"### `%s`\"", ep.Subject)
		}
	}
}

// A name field that breaks the buyer-name rules is reported under its own
// name, once.
func TestNameFieldErrorsNameTheirField(t *testing.T) {
	r := api.RecordDepositRequest{BankTxnID: "t-1", AccountNumber: "110-234-567890", DepositorName: "김\u0001", Amount: 5, DepositedAt: time.Now()}
	err := r.Validate()
	if err == nil || err.Error() != "invalid_input: depositor_name: must be printable UTF-8" {
		t.Fatalf("error %v", err)
	}
}
