package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// closedURL is a --nats-url where nothing listens: a command that got as
// far as connecting fails there as unavailable (exit 5), so a usage error
// (exit 2) shows that the command line was refused before anything was
// sent.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "--nats-url=nats://" + l.Addr().String()
	_ = l.Close()
	return url
}

// runCLI runs one command line and returns its stdout, its stderr and
// what run returned.
func runCLI(args ...string) (string, string, error) {
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// A client command whose request needs a field the command line leaves
// out is a usage error (exit 2) before anything is sent: the error names
// every missing flag, stderr shows the command's usage, and no request
// reaches the engine (the NATS URL has nobody to connect to). The same
// command line with the required flags gets past the check. An empty
// value is missing too; a flag whose value the engine judges (--amount 0)
// is still the engine's to refuse.
func TestMissingRequiredFlagsAreUsageErrors(t *testing.T) {
	t.Setenv("BANKBOOK_NATS_URL", "")
	t.Setenv("BANKBOOK_NKEY", "")
	nobody := closedURL(t)
	dir := t.TempDir()
	file := fileWriter(t, dir)
	statement := file("statement.csv", "bank_txn_id,account_number,depositor_name,amount,deposited_at\nB-1,123401-04-567890,김민수123,1000,2026-11-30T10:00:00Z\n")
	report := file("report.csv", "payout_id,status,amount,fee,settled_at\npo_x,settled,1000,500,2026-11-30T10:00:00Z\n")
	erp := file("erp.csv", "store_id,amount,memo\ns-1,1000,\n")
	stores := file("stores.csv", "store_id,store_name\ns-1,한울식당\n")

	const notChecked = -1
	for _, tc := range []struct {
		cmd  []string // the command, with its arguments and optional flags
		need []string // each required flag, name=value
		// full is the exit status of the command line with every
		// required flag at a closed port: past the check (unavailable,
		// unless the command maps that failure to another status).
		full int
	}{
		{[]string{"order", "submit", "--currency", "KRW"}, []string{"buyer-id=u-1", "buyer-name=김민수", "amount=1000"}, exitUnavailable},
		{[]string{"order", "cancel", "--reason", "changed my mind"}, []string{"order-id=o-1", "deposited=false"}, exitUnavailable},
		{[]string{"order", "pay-from-wallet"}, []string{"order-id=o-1"}, exitUnavailable},
		{[]string{"order", "get"}, []string{"order-id=o-1"}, exitUnavailable},
		{[]string{"order", "get", "--offline", filepath.Join(dir, "no-replay")}, []string{"order-id=o-1"}, notChecked},
		{[]string{"deposit", "get"}, []string{"deposit-id=dep_1"}, exitUnavailable},
		{[]string{"deposit", "resolve", "--user-id", "u-1"}, []string{"deposit-id=dep_1", "action=refund_to_wallet"}, exitUnavailable},
		{[]string{"wallet", "get"}, []string{"user-id=u-1"}, exitUnavailable},
		{[]string{"wallet", "get", "--offline", filepath.Join(dir, "no-replay")}, []string{"user-id=u-1"}, notChecked},
		{[]string{"wallet", "withdraw"}, []string{"user-id=u-1", "amount=1000", "bank=신한은행", "number=110-123-456789", "holder=이영희"}, exitUnavailable},
		{[]string{"payout", "get"}, []string{"payout-id=po_1"}, exitUnavailable},
		{[]string{"payout", "resolve", "--fee", "0"}, []string{"payout-id=po_1", "outcome=failed", "reason=the provider's statement"}, exitUnavailable},
		{[]string{"ledger", "account"}, []string{"account=liabilities:suspense:unmatched"}, exitUnavailable},
		{[]string{"ledger", "series"}, []string{"account=liabilities:suspense:unmatched"}, exitUnavailable},
		{[]string{"bank-sim", "transfer"}, []string{"depositor=김민수123", "amount=1000"}, exitUnavailable},
		{[]string{"store", "link"}, []string{"distributor-id=d-1", "store-id=s-1", "store-name=한울식당"}, exitUnavailable},
		{[]string{"store", "rename", "--store-name", "한울식당 본점"}, []string{"distributor-id=d-1", "store-id=s-1"}, exitUnavailable},
		{[]string{"store", "get"}, []string{"distributor-id=d-1", "store-id=s-1"}, exitUnavailable},
		{[]string{"store", "list"}, []string{"distributor-id=d-1"}, exitUnavailable},
		{[]string{"bill", "issue", "--memo", "March"}, []string{"distributor-id=d-1", "store-id=s-1", "amount=1000"}, exitUnavailable},
		{[]string{"bill", "cancel"}, []string{"bill-id=b-1"}, exitUnavailable},
		{[]string{"bill", "get"}, []string{"bill-id=b-1"}, exitUnavailable},
		{[]string{"bill", "active"}, []string{"distributor-id=d-1"}, exitUnavailable},
		{[]string{"bill", "list"}, []string{"distributor-id=d-1", "store-id=s-1"}, exitUnavailable},
		{[]string{"bill", "remind"}, []string{"distributor-id=d-1"}, exitUnavailable},
		{[]string{"bill", "import", erp}, []string{"distributor-id=d-1"}, exitUnavailable},
		{[]string{"store", "import", stores}, []string{"distributor-id=d-1"}, exitUnavailable},
		{[]string{"settlement", "expected"}, []string{"distributor-id=d-1"}, exitUnavailable},
		{[]string{"deadletter", "redrive"}, []string{"id=1"}, exitUnavailable},
		{[]string{"deadletter", "discard"}, []string{"id=1", "reason=set aside"}, exitUnavailable},
		{[]string{"event", "set-aside"}, []string{"seq=2", "reason=forged"}, exitUnavailable},
		{[]string{"notify", "redrive", "--reason", "provider back"}, []string{"notification-id=ntf_1"}, exitUnavailable},
		{[]string{"reconcile", "bank"}, []string{"statement=" + statement}, exitReconcileNotRun},
		{[]string{"reconcile", "payouts"}, []string{"report=" + report}, exitReconcileNotRun},
		{[]string{"backup"}, []string{"out=" + filepath.Join(dir, "backup")}, exitUnavailable},
		{[]string{"replay"}, []string{"out=" + filepath.Join(dir, "replay")}, exitUsage}, // replay could not run
	} {
		name := strings.Join(tc.cmd[:min(2, len(tc.cmd))], " ")
		line := func(leave ...string) []string {
			args := append(append([]string{}, tc.cmd...), nobody, "--timeout", "5s")
			for _, nv := range tc.need {
				if n, _, _ := strings.Cut(nv, "="); !slices.Contains(leave, n) {
					args = append(args, "--"+nv)
				}
			}
			return args
		}
		names := make([]string, len(tc.need))
		for i, nv := range tc.need {
			names[i], _, _ = strings.Cut(nv, "=")
		}
		t.Run(name, func(t *testing.T) {
			// Each required flag left out, alone and all together.
			for _, leave := range append([][]string{names}, splitEach(names)...) {
				args := line(leave...)
				out, stderr, err := runCLI(args...)
				if got := exitCode(err); got != exitUsage {
					t.Fatalf("%q: exit %d (%v), want %d", args, got, err, exitUsage)
				}
				msg := err.Error()
				for _, n := range names {
					if want := slices.Contains(leave, n); strings.Contains(msg, "--"+n) != want {
						t.Errorf("%q: error %q; naming --%s: %v, want %v", args, msg, n, !want, want)
					}
				}
				if !strings.Contains(msg, "missing") {
					t.Errorf("%q: error %q does not say what is missing", args, msg)
				}
				if !strings.Contains(stderr, "  -"+leave[0]) || !strings.Contains(stderr, "(required") {
					t.Errorf("%q: stderr %q; want the command's usage, required flags marked", args, stderr)
				}
				if out != "" {
					t.Errorf("%q: stdout %q, want nothing", args, out)
				}
			}
			if tc.full == notChecked {
				return
			}
			args := line()
			if _, _, err := runCLI(args...); exitCode(err) != tc.full || err == nil || strings.Contains(err.Error(), "missing --") {
				t.Fatalf("%q: exit %d (%v), want %d past the check", args, exitCode(err), err, tc.full)
			}
		})
	}

	t.Run("an empty value", func(t *testing.T) {
		for _, args := range [][]string{
			{"order", "get", nobody, "--order-id="},
			{"store", "link", nobody, "--distributor-id", "d-1", "--store-id", "", "--store-name", "한울식당"},
		} {
			if _, _, err := runCLI(args...); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "missing --") {
				t.Errorf("%q: exit %d (%v), want %d naming the flag", args, exitCode(err), err, exitUsage)
			}
		}
		// A value the engine judges is the engine's to refuse.
		if _, _, err := runCLI("order", "submit", nobody, "--timeout", "5s", "--buyer-id", "u-1", "--buyer-name", "김민수", "--amount", "0"); exitCode(err) != exitUnavailable {
			t.Errorf("--amount 0: exit %d (%v), want %d: sent", exitCode(err), err, exitUnavailable)
		}
	})

	t.Run("one of two", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want int
			says string
		}{
			{[]string{"payment", "list"}, exitUsage, "missing --distributor-id or --store-id"},
			{[]string{"payment", "list", "--distributor-id", "d-1", "--store-id", "s-1"}, exitUsage, "give only one of --distributor-id, --store-id"},
			{[]string{"payment", "list", "--distributor-id", "d-1", "--store-id="}, exitUnavailable, ""},
			{[]string{"payment", "list", "--distributor-id", "d-1"}, exitUnavailable, ""},
			{[]string{"payment", "list", "--store-id", "s-1"}, exitUnavailable, ""},
			{[]string{"payment", "export"}, exitUsage, "missing --distributor-id or --store-id"},
			{[]string{"payment", "export", "--distributor-id", "d-1", "--store-id", "s-1"}, exitUsage, "give only one of --distributor-id, --store-id"},
			{[]string{"payment", "export", "--store-id", "s-1"}, exitUnavailable, ""},
		} {
			args := append(c.args, nobody, "--timeout", "5s")
			_, _, err := runCLI(args...)
			if exitCode(err) != c.want || c.says != "" && !strings.Contains(err.Error(), c.says) {
				t.Errorf("%q: exit %d (%v), want %d saying %q", args, exitCode(err), err, c.want, c.says)
			}
		}
	})

	t.Run("help marks them", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"order", "get", "-h"}, []string{"order to show (required)"}},
			{[]string{"order", "cancel", "-h"}, []string{"order to cancel (required)", "false if not (required)"}},
			{[]string{"payment", "list", "-h"}, []string{"a distributor's payments (required: this or --store-id)", "(required: this or --distributor-id)"}},
		} {
			_, stderr, err := runCLI(c.args...)
			if exitCode(err) != exitOK {
				t.Errorf("%q: exit %d (%v)", c.args, exitCode(err), err)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%q: %q does not say %q", c.args, stderr, w)
				}
			}
			if strings.Contains(stderr, "(required) (required)") {
				t.Errorf("%q: marked twice: %q", c.args, stderr)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		out, _, err := runCLI("order", "pay-from-wallet", nobody, "--json")
		var b struct {
			Error struct {
				Code    string         `json:"code"`
				Message string         `json:"message"`
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		if exitCode(err) != exitUsage || json.Unmarshal([]byte(out), &b) != nil || b.Error.Code != "not_run" ||
			!strings.Contains(b.Error.Message, "missing --order-id") || b.Error.Details["exit_status"] != float64(exitUsage) {
			t.Fatalf("exit %d (%v), stdout %q; want exit %d and a not_run error naming --order-id", exitCode(err), err, out, exitUsage)
		}
	})
}

// splitEach is each of names on its own.
func splitEach(names []string) [][]string {
	var each [][]string
	if len(names) < 2 {
		return nil
	}
	for _, n := range names {
		each = append(each, []string{n})
	}
	return each
}
