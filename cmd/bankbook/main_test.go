package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

func TestServeConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bankbook.json")
	if err := os.WriteFile(file, []byte(`{"data_dir":"/from/file","log_level":"debug","cancel_window":"2m","collect_bank":"Shinhan"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BANKBOOK_DATA_DIR": "/from/env", "BANKBOOK_DURABILITY": "fast", "BANKBOOK_CONFIG": file, "BANKBOOK_PART_CONCURRENCY": "react-money=4"}
	cfg, err := loadServeConfig([]string{"--data-dir", "/from/flag", "--part-concurrency", "react-money=2,timers=8"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Defaults()
	want.DataDir, want.LogLevel, want.CancelWindow, want.CollectBank, want.Durability = "/from/flag", "debug", engine.Duration(2*time.Minute), "Shinhan", "fast"
	want.PartConcurrency = engine.Concurrency{"react-money": 2, "timers": 8}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config\n got %+v\nwant %+v", cfg, want)
	}

	bad := []struct {
		name string
		args []string
		env  map[string]string
		file string
	}{
		{"unknown key in file", nil, nil, `{"data_dri":"x"}`},
		{"bad durability", []string{"--durability", "maybe"}, nil, ""},
		{"replicas with the embedded server", []string{"--replicas", "3"}, nil, ""},
		{"bad duration in env", nil, map[string]string{"BANKBOOK_CANCEL_WINDOW": "soon"}, ""},
		{"short idempotency ttl", []string{"--idempotency-ttl", "1h"}, nil, ""},
		{"stray argument", []string{"now"}, nil, ""},
		{"zero cancel window", []string{"--cancel-window", "0s"}, nil, ""},
		{"negative cancel window", []string{"--cancel-window", "-1s"}, nil, ""},
		{"depositor names too short", []string{"--depositor-name-max", "3"}, nil, ""},
		{"tiny duplicate window", []string{"--duplicate-window", "1ms"}, nil, ""},
		{"tiny idle trim", []string{"--idle-trim", "1ms"}, nil, ""},
		{"negative idle trim", []string{"--idle-trim", "-1s"}, nil, ""},
		{"no collection bank", []string{"--collect-bank", ""}, nil, ""},
		{"concurrency of an unknown part", []string{"--part-concurrency", "scanner=2"}, nil, ""},
		{"zero concurrency", []string{"--part-concurrency", "timers=0"}, nil, ""},
		{"malformed concurrency", []string{"--part-concurrency", "timers"}, nil, ""},
		{"no http listen", []string{"--http-listen", ""}, nil, ""},
		{"--listen with a NATS URL from the environment", []string{"--listen", "127.0.0.1:14222"}, map[string]string{"BANKBOOK_NATS_URL": "nats://127.0.0.1:14222"}, ""},
		{"a NATS URL without credentials", []string{"--nats-url", "nats://127.0.0.1:14222"}, nil, ""},
		{"a password in the NATS URL", []string{"--nats-url", "nats://bank:s3cret@127.0.0.1:14222", "--nats-nkey", "/x.nk"}, nil, ""},
		{"two kinds of credentials", []string{"--nats-url", "nats://127.0.0.1:14222", "--nats-nkey", "/x.nk", "--nats-creds", "/x.creds"}, nil, ""},
		{"credentials for the embedded server", []string{"--nats-nkey", "/x.nk"}, nil, ""},
		{"an auth file for an external cluster", []string{"--nats-url", "nats://127.0.0.1:14222", "--nats-nkey", "/x.nk", "--auth-file", "/u.json"}, nil, ""},
		{"a bank token as a flag", []string{"--bank-token", "s3cret"}, nil, ""},
		{"store accounts holding the collection account", []string{"--collect-number", "123401-04-567890", "--store-account-range", "12340104567890-12340104567899"}, nil, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				f := filepath.Join(t.TempDir(), "c.json")
				if err := os.WriteFile(f, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"--config", f}, args...)
			}
			_, err := loadServeConfig(args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// cli runs one bankbook command line and returns its stdout.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return out.String(), err
}

func TestClientCommandsAgainstARunningEngine(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()

	out, err := cli(t, "order", "submit", url, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json", "--idempotency-key", "cli-1")
	if err != nil {
		t.Fatal(err)
	}
	var sub api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &sub); err != nil || sub.Status != "awaiting_deposit" {
		t.Fatalf("submit --json: %q %v", out, err)
	}
	out, err = cli(t, "order", "submit", url, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--idempotency-key", "cli-1")
	if err != nil || !strings.Contains(out, sub.OrderID) || !strings.Contains(out, "replayed") || !strings.Contains(out, "39,000 KRW") {
		t.Fatalf("repeated submit: %q %v", out, err)
	}
	out, err = cli(t, "order", "get", url, "--order-id", sub.OrderID)
	if err != nil || !strings.Contains(out, "awaiting_deposit") || !strings.Contains(out, sub.DepositorName) {
		t.Fatalf("get: %q %v", out, err)
	}
	if _, err := cli(t, "order", "cancel", url, "--order-id", sub.OrderID); exitCode(err) != exitUsage {
		t.Fatalf("cancel without --deposited: exit %d (%v)", exitCode(err), err)
	}
	out, err = cli(t, "order", "cancel", url, "--order-id", sub.OrderID, "--deposited=false", "--reason", "changed my mind")
	if err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %q %v", out, err)
	}
	if _, err := cli(t, "order", "cancel", url, "--order-id", sub.OrderID, "--deposited=false"); err == nil || !strings.Contains(err.Error(), "409 wrong_state") {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := cli(t, "order", "get", url, "--order-id", "nope"); err == nil || !strings.Contains(err.Error(), "404 order_not_found") {
		t.Fatalf("get unknown: %v", err)
	}
	// The cancel calls for a message to the buyer: the notify reactor
	// records it (seq 3), and nothing is written after it.
	testenv.CheckFor(t, 10*time.Second, func() error {
		if seq, err := e.Events.LastSeq(context.Background()); err != nil || seq != 3 {
			return fmt.Errorf("last seq %d (%v), want 3: submit, cancel, notification", seq, err)
		}
		return nil
	})
	out, err = cli(t, "projections", "status", url, "--hash")
	if err != nil || !strings.Contains(out, "lag 0") || !strings.Contains(out, "content hash") {
		t.Fatalf("projections status: %q %v", out, err)
	}
	dir := filepath.Join(t.TempDir(), "rebuilt")
	out, err = cli(t, "replay", url, "--nkey", e.SeedFile(auth.Auditor), "--out", dir)
	if err != nil || !strings.Contains(out, "replayed sequences 1..3") || !strings.Contains(out, "same content hash") {
		t.Fatalf("replay: %q %v", out, err)
	}
	if _, err := cli(t, "replay", url, "--nkey", e.SeedFile(auth.Auditor), "--out", dir); exitCode(err) != exitUsage {
		t.Fatalf("replay into a directory that already holds read models: exit %d (%v), want 2 (could not run)", exitCode(err), err)
	}
	out, err = cli(t, "replay", url, "--nkey", e.SeedFile(auth.Auditor), "--json", "--out", filepath.Join(t.TempDir(), "again"))
	var res struct {
		LastSeq     uint64 `json:"last_seq"`
		ContentHash string `json:"content_hash"`
		Compared    bool   `json:"compared"`
		Same        bool   `json:"same"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.LastSeq == 0 || res.ContentHash == "" || !res.Compared || !res.Same {
		t.Fatalf("replay --json: %q %v", out, err)
	}
	if _, err := cli(t, "order", "frobnicate"); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
}

func TestServeStopsCleanlyWhenSignalled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--durability", "safe", "--log-format", "json"}, io.Discard, logs)
	}()
	testenv.Eventually(t, 20*time.Second, "engine serving", func() bool { return strings.Contains(logs.String(), "bankbook is serving") })
	cancel() // what SIGINT/SIGTERM do through signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	// JSON logs with the durability profile stated at boot.
	first := strings.SplitN(logs.String(), "\n", 2)[0]
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["durability"] != "safe" {
		t.Fatalf("first log line %q: %v", first, err)
	}
	if !strings.Contains(logs.String(), "bankbook stopped") {
		t.Fatal("no stop log")
	}
	if _, err := os.Stat(filepath.Join(dir, "readmodels.db")); err != nil {
		t.Fatalf("read models not under the data dir: %v", err)
	}
}

func TestDepositImportFromABankStatement(t *testing.T) {
	e, cfg := startEngine(t, func(cfg *engine.Config) {
		cfg.CancelWindow, cfg.ScanInterval = engine.Duration(time.Second), engine.Duration(200*time.Millisecond)
	})
	url := "--nats-url=" + e.ClientURL()
	out, err := cli(t, "order", "submit", url, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sub api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "order", "cancel", url, "--order-id", sub.OrderID, "--deposited"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := "bank_txn_id,account_number,depositor_name,amount,deposited_at\n"
	now := time.Now().UTC().Format(time.RFC3339Nano)
	before := engineWrites(t, e).Last

	// A statement with a bad row imports nothing and names the line.
	bad := write("bad.csv", header+"T1,"+cfg.CollectNumber+","+sub.DepositorName+",39000,"+now+"\nT2,"+cfg.CollectNumber+",누군가,12x,"+now+"\n")
	if _, err := cli(t, "deposit", "import", url, bad); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("bad statement: %v", err)
	}
	if after := engineWrites(t, e).Last; after != before {
		t.Fatal("a bad statement recorded something")
	}
	// A good one: the transfer for the reserved order goes to the wallet, a
	// stranger's is an orphan; the statement covers up to now.
	good := write("good.csv", header+"T1,"+cfg.CollectNumber+","+sub.DepositorName+",39000,"+now+"\nT2,"+cfg.CollectNumber+",누군가,1200,"+now+"\n")
	out, err = cli(t, "deposit", "import", url, "--complete-up-to", time.Now().UTC().Add(time.Second).Format(time.RFC3339Nano), good)
	if err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("a watermark in the future was accepted: %q %v", out, err)
	}
	if after := engineWrites(t, e).Last; after != before {
		t.Fatal("an import refused for its watermark recorded something")
	}
	// The statement must cover cancel_at (submitted_at + the 1s window).
	submitted, err := time.Parse(time.RFC3339Nano, sub.SubmittedAt)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(submitted.Add(time.Second + time.Millisecond)))
	out, err = cli(t, "deposit", "import", url, "--complete-up-to", time.Now().UTC().Format(time.RFC3339Nano), good)
	if err != nil || !strings.Contains(out, "refunded_to_wallet") || !strings.Contains(out, "orphaned  reason no_such_name") || !strings.Contains(out, "dep_") {
		t.Fatalf("import: %q %v", out, err)
	}
	// Again, as JSON: every row is a duplicate now, with its deposit.
	out, err = cli(t, "deposit", "import", url, "--json", good)
	var imported struct {
		Transactions []struct {
			BankTxnID string `json:"bank_txn_id"`
			DepositID string `json:"deposit_id"`
			Outcome   string `json:"outcome"`
		} `json:"transactions"`
		Counts map[string]int `json:"counts"`
	}
	if err != nil || json.Unmarshal([]byte(out), &imported) != nil || len(imported.Transactions) != 2 ||
		imported.Transactions[0].BankTxnID != "T1" || imported.Transactions[0].DepositID == "" || imported.Counts["duplicate"] != 2 {
		t.Fatalf("import --json: %q %v", out, err)
	}
	testenv.Eventually(t, 10*time.Second, "reserved cancellation final", func() bool {
		out, _ := cli(t, "order", "get", url, "--order-id", sub.OrderID)
		return strings.Contains(out, "cancelled")
	})
	out, err = cli(t, "wallet", "get", url, "--user-id", "u1")
	if err != nil || !strings.Contains(out, "balance 39,000") {
		t.Fatalf("wallet: %q %v", out, err)
	}
	out, err = cli(t, "ledger", "trial-balance", url)
	if err != nil || !strings.Contains(out, "total") || !strings.HasSuffix(strings.TrimSpace(out), " 0") {
		t.Fatalf("trial balance: %q %v", out, err)
	}
}

func TestExitStatusesAndVersion(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()

	out, err := cli(t, "version")
	if err != nil || !strings.Contains(out, "bankbook "+api.Version) {
		t.Fatalf("version: %q %v", out, err)
	}
	out, err = cli(t, "order", "submit", url, "--buyer-id", "u9", "--buyer-name", "최유나", "--amount", "7000")
	if err != nil || !strings.Contains(out, "seq ") {
		t.Fatalf("submit: %q %v", out, err)
	}
	// An orphan shows its candidates in human output, as --json does.
	if _, err := cli(t, "deposit", "import", url, writeStatement(t, "B-1,123401-04-567890,최유나X,7000,2026-11-30T10:00:00Z\n")); err != nil {
		t.Fatal(err)
	}
	// Each candidate says its order's status, and once closed, when.
	orderID := strings.Fields(out)[1]
	out, err = cli(t, "deposit", "orphans", url)
	if err != nil || !strings.Contains(out, "candidates: "+orderID+" (awaiting_deposit)") {
		t.Fatalf("orphans: %q %v", out, err)
	}
	out, err = cli(t, "order", "cancel", url, "--order-id", orderID, "--deposited=false", "--json")
	var cancelled struct {
		Seq uint64 `json:"seq"`
	}
	if err != nil || json.Unmarshal([]byte(out), &cancelled) != nil || cancelled.Seq == 0 {
		t.Fatalf("cancel: %q %v", out, err)
	}
	id := domain.NewDepositID("123401-04-567890", "B-1")
	out, err = cli(t, "deposit", "get", url, "--deposit-id", string(id), "--min-seq", strconv.FormatUint(cancelled.Seq, 10))
	if err != nil || !strings.Contains(out, string(id)) || !strings.Contains(out, "orphaned") || !strings.Contains(out, "candidates: "+orderID+" (cancelled 20") ||
		!strings.Contains(out, "bank transaction B-1") {
		t.Fatalf("deposit get: %q %v", out, err)
	}
	// Once resolved, it says where the money went, as --json does.
	out, err = cli(t, "deposit", "resolve", url, "--deposit-id", string(id), "--action", "refund_to_wallet", "--user-id", "u-orphan", "--json")
	var resolved api.ResolveDepositReply
	if err != nil || json.Unmarshal([]byte(out), &resolved) != nil || resolved.Seq == 0 {
		t.Fatalf("deposit resolve: %q %v", out, err)
	}
	out, err = cli(t, "deposit", "get", url, "--deposit-id", string(id), "--min-seq", strconv.FormatUint(uint64(resolved.Seq), 10))
	if err != nil || !strings.Contains(out, "resolved: refund_to_wallet  wallet of u-orphan") {
		t.Fatalf("deposit get of a resolved orphan: %q %v", out, err)
	}
	if _, err := cli(t, "deposit", "get", url, "--deposit-id", "dep_missing"); exitCode(err) != exitNotFound {
		t.Fatalf("deposit get of an unknown deposit: exit %d (%v)", exitCode(err), err)
	}
	if _, err := cli(t, "payout", "get", url, "--payout-id", "po_missing"); exitCode(err) != exitNotFound {
		t.Fatalf("payout get of an unknown payout: exit %d (%v)", exitCode(err), err)
	}
	if _, err := cli(t, "payout", "resolve", url, "--payout-id", "po_missing", "--outcome", "failed", "--reason", "provider statement"); exitCode(err) != exitNotFound {
		t.Fatalf("payout resolve of an unknown payout: exit %d (%v)", exitCode(err), err)
	}
	if _, err := cli(t, "payout", "resolve", url, "--payout-id", "po_missing", "--outcome", "failed"); exitCode(err) != exitUsage {
		t.Fatalf("payout resolve without a reason: exit %d (%v)", exitCode(err), err)
	}
	if _, err := cli(t, "payout", "resolve", url, "--payout-id", "po_missing", "--outcome", "failed", "--reason", " "); exitCode(err) != exitRefused {
		t.Fatalf("payout resolve with a blank reason: exit %d (%v)", exitCode(err), err)
	}

	cases := []struct {
		name string
		args []string
		want int
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage},
		{"help of a group", []string{"wallet", "-h"}, exitOK},
		{"group without a subcommand", []string{"ledger"}, exitUsage},
		{"unknown subcommand", []string{"payout", "frobnicate"}, exitUsage},
		{"stray argument", []string{"order", "get", url, "--order-id", "x", "extra"}, exitUsage},
		{"bad min-seq", []string{"order", "get", url, "--order-id", "x", "--min-seq", "-5"}, exitUsage},
		{"bad flag", []string{"order", "get", "--no-such-flag"}, exitUsage},
		{"timeout of 0", []string{"order", "get", url, "--order-id", "x", "--timeout", "0s"}, exitUsage},
		{"negative timeout", []string{"audit", "verify", url, "--timeout", "-1s"}, exitUsage},
		{"account without complete-up-to", []string{"deposit", "import", url, "--account", "123401-04-567890", writeStatement(t, "")}, exitUsage},
		{"not found", []string{"order", "get", url, "--order-id", "nope"}, exitNotFound},
		{"refused", []string{"order", "submit", url, "--buyer-id", "u9", "--buyer-name", "최유나", "--amount", "0"}, exitRefused},
		{"unavailable", []string{"order", "get", "--nats-url", "nats://127.0.0.1:1", "--order-id", "x"}, exitUnavailable},
		{"not caught up", []string{"order", "get", url, "--order-id", "nope", "--min-seq", "999999"}, exitUnavailable},
		{"group commit under fast", []string{"serve", "--data-dir", t.TempDir(), "--durability", "fast", "--group-commit"}, exitUsage},
		{"group commit on an external NATS", []string{"serve", "--data-dir", t.TempDir(), "--nats-url", "nats://127.0.0.1:1", "--group-commit"}, exitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d, want %d (%v)", got, tc.want, err)
			}
		})
	}
}

// writeStatement writes a CSV bank statement with the given rows.
func writeStatement(t *testing.T, rows string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "statement.csv")
	if err := os.WriteFile(path, []byte("bank_txn_id,account_number,depositor_name,amount,deposited_at\n"+rows), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startEngine starts a real engine (embedded NATS, bbolt in a temp dir, on
// free ports), stopped when the test ends.
func startEngine(t *testing.T, mutate ...func(*engine.Config)) (*engine.Engine, engine.Config) {
	t.Helper()
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "fast"
	for _, m := range mutate {
		m(&cfg)
	}
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	if cfg.NATSURL == "" {
		// Client commands authenticate as the operator (replay passes the
		// auditor's seed itself).
		t.Setenv("BANKBOOK_NKEY", e.SeedFile(auth.Operator))
	}
	return e, cfg
}

// engineWrites is what the business aggregates hold in e's event stream
// (testenv.StreamWrites, read with the engine identity): what requests
// wrote, the notifications the notify reactor adds a moment later left out.
func engineWrites(t *testing.T, e *engine.Engine) testenv.Writes {
	t.Helper()
	c, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Engine)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.Events.Config()
	return testenv.StreamWrites(t, js, cfg.Stream, cfg.SubjectPrefix, testenv.BusinessAggregates...)
}

// The import's summary counts every outcome a transaction can have.
func TestImportSummaryCountsEveryOutcome(t *testing.T) {
	counts := map[string]int{}
	for i, o := range []domain.DepositOutcome{domain.OutcomeMatched, domain.OutcomeRefundedToWallet, domain.OutcomeStorePayment, domain.OutcomeOrphaned, domain.OutcomeDuplicate} {
		counts[string(o)] = i + 1
	}
	if got, want := summary(counts), " matched 1, refunded_to_wallet 2, store_payment 3, orphaned 4, duplicate 5"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}

// TestCountsSayOneFindingAndTwoFindings: what audit verify and reconcile
// print of their findings and lines.
func TestCountsSayOneFindingAndTwoFindings(t *testing.T) {
	for n, want := range map[int]string{0: "0 findings", 1: "1 finding", 2: "2 findings"} {
		if got := counted(n, "finding"); got != want {
			t.Errorf("counted(%d) = %q, want %q", n, got, want)
		}
	}
	if got := formatRun(api.ReconcileReply{Findings: 1}); !strings.HasSuffix(got, "\n1 finding\n") {
		t.Errorf("a run with one finding ends %q", got)
	}
}

// TestKeyTheServerDoesNotKnowIsRefused: a seed the NATS server does not
// know is refused for good (exit 4, not 5: trying again cannot help), and
// when it is the default ./data/auth seed the message says so.
func TestKeyTheServerDoesNotKnowIsRefused(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	foreign := filepath.Join(dir, "data", "auth", "operator.nk")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = cli(t, "order", "get", url, "--nkey", foreign, "--order-id", "x")
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "does not know the key in "+foreign) {
		t.Fatalf("a foreign --nkey: exit %d (%v), want %d naming the file", exitCode(err), err, exitRefused)
	}
	// No credentials given: the CLI takes ./data/auth/operator.nk.
	t.Setenv("BANKBOOK_NKEY", "")
	t.Chdir(dir)
	_, err = cli(t, "order", "get", url, "--order-id", "x")
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "does not know the key in data/auth/operator.nk") {
		t.Fatalf("a foreign ./data/auth seed: exit %d (%v), want %d naming the file", exitCode(err), err, exitRefused)
	}
	// No credentials at all.
	t.Chdir(t.TempDir())
	_, err = cli(t, "order", "get", url, "--order-id", "x")
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "give credentials") {
		t.Fatalf("no credentials: exit %d (%v), want %d", exitCode(err), err, exitRefused)
	}
}

// "bankbook help CMD ..." is "bankbook CMD ... -h": that command's help,
// exit 0; an unknown command is a usage error.
func TestHelpOfACommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "order"}, "usage: bankbook order submit|cancel|pay-from-wallet|get|search"},
		{[]string{"help", "version"}, "usage: bankbook version"},
		{[]string{"version", "-h"}, "usage: bankbook version"},
		{[]string{"help"}, "usage:\n  bankbook serve"},
		{[]string{"help", "help"}, "usage:\n  bankbook serve"},
	} {
		if out, err := cli(t, c.args...); err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %q %v; want %q", c.args, out, err, c.want)
		}
	}
	var stderr strings.Builder
	if err := run(context.Background(), []string{"help", "order", "submit"}, io.Discard, &stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Errorf("help order submit: %v", err)
	} else if !strings.Contains(stderr.String(), "-buyer-id") {
		t.Errorf("help order submit printed %q; want the flags of order submit", stderr.String())
	}
	if _, err := cli(t, "help", "no-such-command"); exitCode(err) != exitUsage {
		t.Errorf("help no-such-command: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
	// Every command's -h exits 0, bench's and its bare server's too.
	for _, args := range [][]string{{"help", "bench"}, {"bench", "-h"}, {"bench", "bare-server", "-h"}, {"help", "serve"}, {"help", "replay"}} {
		var stderr strings.Builder
		err := run(context.Background(), args, io.Discard, &stderr)
		if exitCode(err) != exitOK || !strings.Contains(stderr.String(), "-") {
			t.Errorf("%v: exit %d (%v), printed %q; want its flags and exit 0", args, exitCode(err), err, stderr.String())
		}
	}
}

// TestVersionTakesNoArguments: `version` prints the version, and a stray
// argument or an unknown flag is a usage error (exit status 2), as for
// every other command; with --json, one JSON document says so.
func TestVersionTakesNoArguments(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if out, err := cli(t, args...); err != nil || !strings.HasPrefix(out, "bankbook "+api.Version+"\n") {
			t.Errorf("%v: %q %v", args, out, err)
		}
	}
	for _, args := range [][]string{{"version", "now"}, {"version", "--no-such-flag"}, {"--version", "now"}} {
		if out, err := cli(t, args...); exitCode(err) != exitUsage || out != "" {
			t.Errorf("%v: exit %d (%v), stdout %q; want exit %d and nothing on stdout", args, exitCode(err), err, out, exitUsage)
		}
	}
	out, err := cli(t, "version", "--json")
	if exitCode(err) != exitUsage || !strings.Contains(out, `"not_run"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("version --json: exit %d (%v), stdout %q; want exit %d and one JSON error", exitCode(err), err, out, exitUsage)
	}
}

// A client command given a NATS URL with a password in it is refused, and
// the error names the client's own credential flags, each of which it takes.
func TestAPasswordInTheNATSURLNamesTheClientFlags(t *testing.T) {
	_, err := cli(t, "order", "get", "--nats-url", "nats://bank:s3cret@127.0.0.1:1", "--order-id", "x")
	if got := exitCode(err); got != exitUsage {
		t.Fatalf("exit %d, want %d (%v)", got, exitUsage, err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the secret: %v", err)
	}
	fs, _ := newClientFlagSet("order get", io.Discard)
	named := regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(err.Error(), -1)
	if len(named) == 0 {
		t.Fatalf("the error names no flag to give the credentials with: %v", err)
	}
	for _, m := range named {
		if fs.Lookup(m[1]) == nil {
			t.Errorf("the error names --%s, which client commands do not take: %v", m[1], err)
		}
	}
}

// A simulator's command against an engine that does not run that
// simulator says which serve flag runs it: refused by the NATS server (4)
// where the engine runs no simulator, unanswered (5) where it runs only
// the other one.
func TestSimulatorCommandsSayWhichServeFlagRunsTheSimulator(t *testing.T) {
	none, _ := startEngine(t)
	noSims := "--nats-url=" + none.ClientURL()
	bank, _ := startEngine(t, func(c *engine.Config) { c.BankSim = true })
	bankOnly := "--nats-url=" + bank.ClientURL()
	chat, _ := startEngine(t, func(c *engine.Config) { c.ChatSim = true })
	chatOnly := "--nats-url=" + chat.ClientURL()
	cases := []struct {
		name string
		args []string
		seed string
		want int
		flag string
	}{
		{"bank-sim transfer, no simulator", []string{"bank-sim", "transfer", noSims, "--depositor", "김민수123", "--amount", "1000"}, none.SeedFile(auth.Operator), exitRefused, "--bank-sim"},
		{"chat-sim messages, no simulator", []string{"chat-sim", "messages", noSims, "--limit", "5"}, none.SeedFile(auth.Operator), exitRefused, "--chat-sim"},
		{"bank-sim transfer, the chat simulator only", []string{"bank-sim", "transfer", chatOnly, "--depositor", "김민수123", "--amount", "1000"}, chat.SeedFile(auth.Operator), exitUnavailable, "--bank-sim"},
		{"chat-sim messages, the bank simulator only", []string{"chat-sim", "messages", bankOnly, "--limit", "5"}, bank.SeedFile(auth.Operator), exitUnavailable, "--chat-sim"},
		{"every chat-sim message, the bank simulator only", []string{"chat-sim", "messages", bankOnly}, bank.SeedFile(auth.Operator), exitUnavailable, "--chat-sim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--nkey", tc.seed)
			_, err := cli(t, args...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d, want %d (%v)", got, tc.want, err)
			}
			if !strings.Contains(err.Error(), "bankbook serve "+tc.flag) {
				t.Errorf("the error does not say to run 'bankbook serve %s': %v", tc.flag, err)
			}
			out, err := cli(t, append(args, "--json")...)
			if exitCode(err) != tc.want || !json.Valid([]byte(out)) {
				t.Errorf("--json: exit %d, %q", exitCode(err), out)
			}
		})
	}
}

// The holiday calendar is named by --settlement-holidays or
// BANKBOOK_SETTLEMENT_HOLIDAYS (the flag wins), and a bad line in it stops
// serve with the file's name and the line's number.
func TestServeSettlementHolidaysFlagAndEnv(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "holidays.txt"), filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(good, []byte("2026-09-24 # 추석\n2026-09-25\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("2026-09-24\n2026-09-31\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadServeConfig(nil, func(k string) string { return map[string]string{"BANKBOOK_SETTLEMENT_HOLIDAYS": good}[k] }, io.Discard)
	if err != nil || cfg.SettlementHolidays != good {
		t.Fatalf("from the environment: %q, %v; want %s", cfg.SettlementHolidays, err, good)
	}
	cfg, err = loadServeConfig([]string{"--settlement-holidays", good}, func(k string) string { return map[string]string{"BANKBOOK_SETTLEMENT_HOLIDAYS": bad}[k] }, io.Discard)
	if err != nil || cfg.SettlementHolidays != good {
		t.Fatalf("the flag over the environment: %q, %v; want %s", cfg.SettlementHolidays, err, good)
	}
	for _, args := range [][]string{{"--settlement-holidays", bad}, nil} {
		_, err = loadServeConfig(args, func(k string) string { return map[string]string{"BANKBOOK_SETTLEMENT_HOLIDAYS": bad}[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), bad+": line 2") {
			t.Errorf("%q: %v; want an error naming %s and line 2", args, err, bad)
		}
	}
	if cfg, err := loadServeConfig(nil, func(string) string { return "" }, io.Discard); err != nil || cfg.SettlementHolidays != "" {
		t.Errorf("without it: %q, %v; want no calendar", cfg.SettlementHolidays, err)
	}
}

// The webhook's secret is never a flag: a file, or the environment; the
// poll settings are flags or environment like the others.
func TestServeWebhookSecretAndPolls(t *testing.T) {
	env := map[string]string{"BANKBOOK_FIRMBANK_WEBHOOK_SECRET": "whsec-from-the-environment", "BANKBOOK_FIRMBANK_PENDING_RETRY": "10m"}
	cfg, err := loadServeConfig([]string{"--bank-sim", "--firmbank-settle-timeout", "5s"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FirmbankWebhookSecret != "whsec-from-the-environment" || cfg.FirmbankPendingRetry != engine.Duration(10*time.Minute) || cfg.FirmbankSettleTimeout != engine.Duration(5*time.Second) {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := loadServeConfig([]string{"--firmbank-webhook-secret", "whsec-on-the-command-line"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a secret given as a flag was taken")
	}
	if _, err := loadServeConfig([]string{"--bank-sim"}, func(k string) string { return map[string]string{"BANKBOOK_FIRMBANK_WEBHOOK_SECRET": "short"}[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("a short secret: %v", err)
	}
}

// fileWriter returns a function that writes content to the file name in
// dir and returns its path.
func fileWriter(t *testing.T, dir string) func(name, content string) string {
	return func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}
