package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
	"github.com/rs/zerolog"
)

// storeImportRows parses the CSV `store import` wrote.
func storeImportRows(t *testing.T, text string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("the output is not CSV: %v\n%s", err, text)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], storeImportColumns) {
		t.Fatalf("the output's header: %q", rows)
	}
	return rows
}

// TestStoreImport: a file of stores (a BOM, a quoted name holding a comma,
// a distributor name on one row, the flag after the file) links each one
// and writes each link as the engine holds it, its dedicated account that
// of `store get`; a store linked before under another name keeps it, and
// its line says so. The same file again writes the same lines and appends
// nothing.
func TestStoreImport(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.BankSim = false })
	url := "--nats-url=" + e.ClientURL()
	if out, err := cli(t, "store", "link", url, "--distributor-id", "d-1", "--store-id", "s-2", "--store-name", "옛 쌀집", "--distributor-name", "한울유통"); err != nil {
		t.Fatalf("link s-2: %q %v", out, err)
	}
	file := writeBills(t, "\uFEFFstore_id,store_name,distributor_name\r\n"+
		"s-1, 한울식당 ,\r\n"+
		"s-2,\"쌀집, 본점\",\r\n"+
		"s-3,행복마트,다른유통\r\n")
	before := engineWrites(t, e).Count
	stdout, stderr, err := runCLI("store", "import", url, file, "--distributor-id", "d-1", "--distributor-name", "한울유통")
	if err != nil || stderr != "3 lines: 3 linked, 0 refused\n" {
		t.Fatalf("import: %v\nstderr %q\nstdout %s", err, stderr, stdout)
	}
	if got := engineWrites(t, e).Count - before; got != 2 {
		t.Fatalf("the import appended %d commits, want 2 (s-2 was linked)", got)
	}
	rows := storeImportRows(t, stdout)
	if len(rows) != 4 {
		t.Fatalf("the output: %q", rows)
	}
	want := map[string][2]string{ // the names each line shows, and its note
		"s-1": {"한울식당", ""},
		"s-2": {"옛 쌀집", "linked before as 옛 쌀집; store rename changes it"},
		"s-3": {"행복마트", ""},
	}
	dists := map[string]string{"s-1": "한울유통", "s-2": "한울유통", "s-3": "다른유통"}
	for i, r := range rows[1:] {
		store := r[0]
		if store != []string{"s-1", "s-2", "s-3"}[i] {
			t.Fatalf("line %d is for %s: the output is not in file order: %q", i+2, store, rows)
		}
		out, err := cli(t, "store", "get", url, "--distributor-id", "d-1", "--store-id", store, "--json")
		var v api.StoreView
		if err != nil || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("store get %s: %q %v", store, out, err)
		}
		got := []string{r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]}
		exp := []string{store, v.StoreName, v.DistributorName, v.LinkID, v.DedicatedAccount.Bank, v.DedicatedAccount.Number, v.DedicatedAccount.Holder, "linked", want[store][1]}
		if !slices.Equal(got, exp) || v.StoreName != want[store][0] || v.DistributorName != dists[store] || v.DedicatedAccount.Number == "" {
			t.Errorf("line for %s:\n got %q\nwant %q (names %q, %q)", store, got, exp, want[store][0], dists[store])
		}
	}

	// Again, into a file: the same lines, nothing appended, no temporary
	// file left beside it.
	seq := engineWrites(t, e).Last
	out := filepath.Join(t.TempDir(), "accounts.csv")
	if _, stderr, err := runCLI("store", "import", url, "--distributor-id", "d-1", "--distributor-name", "한울유통", "--out", out, file); err != nil || stderr != "3 lines: 3 linked, 0 refused to "+out+"\n" {
		t.Fatalf("import again: %v %q", err, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b) != stdout {
		t.Fatalf("the file of the second import: %v\n%s\nwant\n%s", err, b, stdout)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("the import left %d files beside its output, want only the output", len(entries))
	}
	if got := engineWrites(t, e).Last; got != seq {
		t.Errorf("importing the same file again appended %d commits", got-seq)
	}

	// A store renamed since: the same file again (its keys answered from
	// the first import) writes the link's names now, and says so.
	if out, err := cli(t, "store", "rename", url, "--distributor-id", "d-1", "--store-id", "s-1", "--store-name", "한울식당 본점"); err != nil {
		t.Fatalf("rename s-1: %q %v", out, err)
	}
	seq = engineWrites(t, e).Last
	stdout, _, err = runCLI("store", "import", url, "--distributor-id", "d-1", "--distributor-name", "한울유통", file)
	if err != nil {
		t.Fatalf("import after a rename: %v", err)
	}
	rows = storeImportRows(t, stdout)
	if len(rows) != 4 || rows[1][1] != "한울식당 본점" || rows[1][8] != "linked before as 한울식당 본점; store rename changes it" {
		t.Errorf("the line of s-1, renamed since the first import: %q", rows)
	}
	if got := engineWrites(t, e).Last; got != seq {
		t.Errorf("importing the same file after a rename appended %d commits", got-seq)
	}
}

// TestStoreImportBadFile: a file with problems links nothing, and every
// problem is listed with its line and column.
func TestStoreImportBadFile(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.BankSim = false })
	url := "--nats-url=" + e.ClientURL()
	before := engineWrites(t, e).Count
	noneLinked := func() {
		t.Helper()
		if got := engineWrites(t, e).Count; got != before {
			t.Fatalf("a bad file appended %d commits", got-before)
		}
		if out, err := cli(t, "store", "list", url, "--distributor-id", "d-1"); err != nil || out != "no linked stores\n" {
			t.Fatalf("after a bad file, store list: %q %v", out, err)
		}
	}
	out := filepath.Join(t.TempDir(), "accounts.csv")
	for _, c := range []struct {
		name, body string
		says       []string
		not        []string
	}{
		{"a store twice, a bad ID, a bad name", "store_id,store_name\ns-1,가게 1\ns 2,가게 2\ns-3,\"가게\n3\"\ns-1,가게 1 본점\ns-5,가게 5\n",
			[]string{
				"line 2: store_id: s-1 is also on line 6; a store is linked once, so name it on one line only",
				"line 3: store_id: ",
				"line 4: store_name: must not contain control",
				"line 6: store_id: s-1 is also on line 2;",
			},
			[]string{"line 5", "line 7", "line 1:"}},
		{"a column missing", "store_id\ns-1\n", []string{"line 1: store_name: missing from the header"}, nil},
		{"an unknown column", "store_id,store_name,amount\ns-1,가게,1000\n", []string{`line 1: unknown column "amount"`}, nil},
		{"a row too wide", "store_id,store_name\ns-1,쌀집, 본점\n", []string{"line 2: the row has 3 fields, the header 2", "must be quoted"}, nil},
		{"no stores", "store_id,store_name\n", []string{"line 2: the file holds no stores"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, _, err := runCLI("store", "import", url, "--distributor-id", "d-1", "--out", out, writeBills(t, c.body))
			if exitCode(err) != exitFailed || err == nil || !strings.Contains(err.Error(), "nothing imported") {
				t.Fatalf("exit %d: %v", exitCode(err), err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not say %q:\n%v", s, err)
				}
			}
			for _, s := range c.not {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error says %q:\n%v", s, err)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
				t.Errorf("a bad file left %d files", len(entries))
			}
			noneLinked()
		})
	}
	if _, _, err := runCLI("store", "import", url, "--distributor-id", "d-1", "--json", writeBills(t, "store_id,store_name\ns-1,가게\n")); exitCode(err) != exitUsage {
		t.Errorf("--json: %v, want a usage error", err)
	}
	if _, _, err := runCLI("store", "import", url, "--distributor-id", "d 1", writeBills(t, "store_id,store_name\ns-1,가게\n")); exitCode(err) != exitUsage {
		t.Errorf("a bad --distributor-id: %v, want a usage error", err)
	}
	noneLinked()
}

// TestStoreImportRefusedLinesAndAnEngineAway: a line the engine refuses
// (no account number left) is reported on its line and the others are
// linked, exit 1; with no engine, the import stops (exit 5) and a file
// --out names keeps what it held.
func TestStoreImportRefusedLinesAndAnEngineAway(t *testing.T) {
	e, cfg := startEngine(t, func(c *engine.Config) { c.BankSim = false; c.StoreAccountRange = "5001000000-5001000001" })
	url := "--nats-url=" + e.ClientURL()
	file := writeBills(t, "store_id,store_name\ns-1,가게 1\ns-2,가게 2\ns-3,가게 3\ns-4,가게 4\n")
	stdout, stderr, err := runCLI("store", "import", url, "--distributor-id", "d-1", file)
	if exitCode(err) != exitFailed || err == nil || !strings.Contains(err.Error(), "2 of 4 lines refused by the engine (lines ") || stderr != "4 lines: 2 linked, 2 refused\n" {
		t.Fatalf("import: exit %d %v\nstderr %q\n%s", exitCode(err), err, stderr, stdout)
	}
	rows := storeImportRows(t, stdout)
	status := map[string]int{}
	for _, r := range rows[1:] {
		status[r[7]]++
		if r[7] == "refused" && (r[3] != "" || r[5] != "" || !strings.HasPrefix(r[8], "account_range_exhausted: ")) {
			t.Errorf("a refused line: %q", r)
		}
		if r[7] == "linked" && (r[3] == "" || r[5] == "" || r[8] != "") {
			t.Errorf("a linked line: %q", r)
		}
	}
	if len(rows) != 5 || status["linked"] != 2 || status["refused"] != 2 {
		t.Fatalf("the output: %q", rows)
	}

	out := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(out, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An identity that may not link stops the import at its first
	// answer (exit 4): every line would get it.
	if _, _, err := runCLI("store", "import", url, "--nkey", e.SeedFile(auth.Auditor), "--distributor-id", "d-1", "--out", out, file); exitCode(err) != exitRefused || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("import by the auditor: exit %d %v, want %d", exitCode(err), err, exitRefused)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "before\n" {
		t.Errorf("a refused import changed its --out file: %q %v", b, err)
	}
	gone := closedURL(t)
	if _, _, err := runCLI("store", "import", gone, "--timeout", "5s", "--distributor-id", "d-1", "--out", out, file); exitCode(err) != exitUnavailable {
		t.Fatalf("import with no engine: exit %d %v, want %d", exitCode(err), err, exitUnavailable)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "before\n" {
		t.Errorf("a failed import changed its --out file: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("a failed import left %d files", len(entries))
	}

	// Once the range is widened, the same file links the lines refused
	// before, and answers the others with the accounts they have.
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.StoreAccountRange, cfg.Listen, cfg.HTTPListen = "5001000000-5001000009", "127.0.0.1:0", "127.0.0.1:0"
	e2, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e2.Stop(context.Background()) })
	stdout, stderr, err = runCLI("store", "import", "--nats-url="+e2.ClientURL(), "--nkey", e2.SeedFile(auth.Operator), "--distributor-id", "d-1", file)
	if err != nil || stderr != "4 lines: 4 linked, 0 refused\n" {
		t.Fatalf("the import again, the range widened: %v\nstderr %q\n%s", err, stderr, stdout)
	}
	again := storeImportRows(t, stdout)
	for i, r := range rows[1:] {
		if r[7] == "linked" && again[i+1][5] != r[5] {
			t.Errorf("store %s: account %s, then %s", r[0], r[5], again[i+1][5])
		}
	}
}

// TestParseStoreCSV: the example of docs/operations.md, an empty
// distributor_name taking the flag's, and a bad one refused with its line.
func TestParseStoreCSV(t *testing.T) {
	stores, err := parseStoreCSV(strings.NewReader("\uFEFF Store_ID ,store_name,distributor_name\ns-1001,한울식당,\ns-1002,\"쌀집, 본점\",\ns-1003,행복마트,다른유통\n"), "d-1", "한울유통")
	if err != nil {
		t.Fatal(err)
	}
	want := []csvStore{
		{2, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1001", StoreName: "한울식당", DistributorName: "한울유통"}},
		{3, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1002", StoreName: "쌀집, 본점", DistributorName: "한울유통"}},
		{4, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1003", StoreName: "행복마트", DistributorName: "다른유통"}},
	}
	if !slices.Equal(stores, want) {
		t.Fatalf("stores %+v, want %+v", stores, want)
	}
	_, err = parseStoreCSV(strings.NewReader("store_id,store_name,distributor_name\ns-1,가게,"+strings.Repeat("유", 101)+"\ns-2,,\n"), "d-1", "")
	if err == nil || err.Error() != "line 2: distributor_name: must be at most 100 characters, got 101\nline 3: store_name: is required" {
		t.Fatalf("bad names: %v", err)
	}
	if _, err := parseStoreCSV(strings.NewReader(""), "d-1", ""); err == nil || !strings.Contains(err.Error(), "line 1: the file is empty") {
		t.Fatalf("an empty file: %v", err)
	}
}
