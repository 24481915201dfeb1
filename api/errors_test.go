package api_test

import (
	"encoding/json"
	"testing"

	"github.com/bankbook/bankbook/api"
)

// An error reply's body always carries details, {} when the error has none
// (API.md: {"error":{"code","message","details":{...}}}).
func TestErrorBodyAlwaysCarriesDetails(t *testing.T) {
	for _, e := range []*api.Error{
		{Status: 422, Code: "idempotency_key_reused", Message: "reused"},
		{Status: 404, Code: "order_not_found", Message: "no such order", Details: map[string]any{"order_id": "o-1"}},
	} {
		var body struct {
			Error map[string]json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(e.Body(), &body); err != nil {
			t.Fatal(err)
		}
		var details map[string]any
		if err := json.Unmarshal(body.Error["details"], &details); err != nil || details == nil || len(details) != len(e.Details) {
			t.Errorf("%s: details %s (%v), want an object of %d members", e.Code, body.Error["details"], err, len(e.Details))
		}
		if back := api.ParseErrorBody(e.Body()); back == nil || back.Code != e.Code || back.Message != e.Message {
			t.Errorf("%s: parsed back as %+v", e.Code, back)
		}
	}
}
