package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
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

// With --json, a command that fails prints one JSON document on stdout,
// the shape of API.md's errors: the engine's own error as it sent it, or
// one named after the exit status for a failure on this side (no engine,
// a bad command line, an audit that could not run). Without --json, or
// with --json=false, stdout stays empty.
func TestJSONErrors(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := "--nats-url=nats://" + l.Addr().String()
	_ = l.Close()

	type body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		code   string
	}{
		{"the engine's 404", []string{"order", "get", url, "--order-id", "o-none", "--json"}, exitNotFound, "order_not_found"},
		{"the engine's 400", []string{"order", "submit", url, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "-5", "--json"}, exitRefused, "invalid_input"},
		{"no engine", []string{"order", "get", nobody, "--order-id", "o-1", "--timeout", "2s", "--json"}, exitUnavailable, "unavailable"},
		{"a bad flag", []string{"order", "get", "--json", "--no-such-flag"}, exitUsage, "not_run"},
		{"the last --json counts", []string{"order", "get", nobody, "--order-id", "o-1", "--timeout", "2s", "--json=false", "--json"}, exitUnavailable, "unavailable"},
		// Errors made on this side, with no body from the engine.
		{"refused by the NATS server", []string{"order", "submit", url, "--nkey", e.SeedFile(auth.Feed), "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "1000", "--json"}, exitRefused, "forbidden"},
		{"too large to send", []string{"order", "submit", url, "--buyer-id", "u1", "--buyer-name", strings.Repeat("김", 30<<10), "--amount", "1000", "--json"}, exitRefused, "invalid_input"},
		{"an audit that could not run", []string{"audit", "verify", nobody, "--timeout", "2s", "--data-dir", t.TempDir(), "-json=true"}, exitUsage, "not_run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := cli(t, tc.args...)
			if got := exitCode(err); got != tc.status {
				t.Fatalf("exit status %d (%v), want %d", got, err, tc.status)
			}
			var b body
			dec := json.NewDecoder(strings.NewReader(out))
			if err := dec.Decode(&b); err != nil || dec.More() {
				t.Fatalf("stdout is not one JSON document (%v): %q", err, out)
			}
			if b.Error.Code != tc.code || b.Error.Message == "" {
				t.Fatalf("error %+v, want code %q", b.Error, tc.code)
			}
			// The engine's body is printed as sent; one made here says
			// the exit status too.
			if fromEngine := tc.status == exitNotFound || tc.status == exitRefused; !fromEngine && b.Error.Details["exit_status"] != float64(tc.status) {
				t.Fatalf("error %+v, want details.exit_status %d", b.Error, tc.status)
			}
		})
	}
	for _, args := range [][]string{
		{"order", "get", nobody, "--order-id", "o-1", "--timeout", "2s"},
		{"order", "get", nobody, "--order-id", "o-1", "--timeout", "2s", "--json=false"},
		{"order", "get", nobody, "--order-id", "o-1", "--timeout", "2s", "--json", "--json=false"},
		{"order", "get", nobody, "--order-id", "o-1", "--timeout", "2s", "--", "--json"},
	} {
		if out, err := cli(t, args...); err == nil || out != "" {
			t.Errorf("%v: stdout %q, err %v; want nothing on stdout and an error", args, out, err)
		}
	}
}
