package main

import (
	"encoding/json"
	"testing"

	"github.com/bankbook/bankbook/api"
)

// An error's details print as the API sent them: a large amount in digits,
// not in the exponent form a decoded JSON number takes by default.
func TestDescribePrintsDetailsAsSent(t *testing.T) {
	e := api.ParseErrorBody([]byte(`{"error":{"code":"insufficient_funds","message":"the wallet holds less","details":{"amount":5000000,"balance":2500,"rate":0.5,"user_id":"u3"}}}`))
	if e == nil {
		t.Fatal("error body not parsed")
	}
	e.Status = 422
	want := "422 insufficient_funds: the wallet holds less (amount=5000000 balance=2500 rate=0.5 user_id=u3)"
	if got := describe(e); got != want {
		t.Fatalf("describe: %q, want %q", got, want)
	}
	var n any
	_ = json.Unmarshal([]byte(`999999999`), &n)
	if got := describe(&api.Error{Status: 503, Code: "not_caught_up", Message: "behind", Details: map[string]any{"min_seq": n}}); got != "503 not_caught_up: behind (min_seq=999999999)" {
		t.Fatalf("describe: %q", got)
	}
}
