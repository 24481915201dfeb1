package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/engine"
)

// TestPaymentExport: `payment export` writes every payment the list holds,
// across its pages, as CSV with the list's values (an unbilled payment with
// an empty bill_id), to stdout or whole to --out, and sums them on stderr;
// a store's export has its payments to every distributor.
func TestPaymentExport(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.StoreFeeBps = 100 })
	url := "--nats-url=" + e.ClientURL()
	link := func(dist, store string) api.LinkStoreReply {
		t.Helper()
		out, err := cli(t, "store", "link", url, "--distributor-id", dist, "--store-id", store, "--store-name", "가게 "+store, "--json")
		var rep api.LinkStoreReply
		if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("link %s: %q %v", store, out, err)
		}
		return rep
	}
	links := []api.LinkStoreReply{link("d-x", "s-1"), link("d-x", "s-2"), link("d-other", "s-1")}
	pay := func(l api.LinkStoreReply, txn string, amount int64) api.Seq {
		t.Helper()
		rep, err := e.Commands.Deposits.RecordDeposit(context.Background(), commands.Meta{}, api.RecordDepositRequest{
			BankTxnID: txn, AccountNumber: l.DedicatedAccount.Number, DepositorName: "입금자", Amount: amount, DepositedAt: time.Now().UTC()})
		if err != nil || rep.Outcome != "store_payment" {
			t.Fatalf("payment %s: %+v %v", txn, rep, err)
		}
		return rep.Seq
	}
	pay(links[0], "t-1", 10_000) // unbilled
	if out, err := cli(t, "bill", "issue", url, "--distributor-id", "d-x", "--store-id", "s-1", "--amount", "50000"); err != nil {
		t.Fatalf("issue: %q %v", out, err)
	}
	pay(links[0], "t-2", 20_000)
	pay(links[1], "t-3", 30_000)
	pay(links[1], "t-4", 1_234)
	seq := pay(links[2], "t-5", 5_000) // another distributor's

	exportPageSize = 2 // three pages for d-x
	t.Cleanup(func() { exportPageSize = 500 })
	var list api.PaymentsReply
	out, err := cli(t, "payment", "list", url, "--distributor-id", "d-x", "--min-seq", fmt.Sprint(seq), "--json")
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Payments) != 4 {
		t.Fatalf("payment list: %q %v", out, err)
	}
	want := [][]string{paymentColumns}
	var gross int64
	for _, p := range list.Payments {
		want = append(want, []string{p.DepositID, p.DistributorID, p.StoreID, p.BillID, strconv.FormatInt(p.Amount, 10),
			strconv.FormatInt(p.Fee, 10), strconv.FormatInt(p.Net, 10), p.PaidAt, p.SettlementDate})
		gross += p.Amount
	}
	if gross != 61_234 || want[1][3] != "" || want[2][3] == "" {
		t.Fatalf("the list the export is checked against: %+v", list.Payments)
	}
	parse := func(text string) [][]string {
		t.Helper()
		rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
		if err != nil {
			t.Fatalf("the export is not CSV: %v\n%s", err, text)
		}
		return rows
	}

	stdout, stderr, err := runCLI("payment", "export", url, "--distributor-id", "d-x")
	if err != nil || !slices.EqualFunc(parse(stdout), want, slices.Equal) {
		t.Fatalf("export to stdout: %v\n got %q\nwant %q", err, parse(stdout), want)
	}
	if stderr != "4 payments: gross 61,234, fee 612, net 60,622\n" {
		t.Errorf("export summary: %q", stderr)
	}

	file := filepath.Join(t.TempDir(), "payments.csv")
	if _, stderr, err := runCLI("payment", "export", url, "--distributor-id", "d-x", "--out", file); err != nil || !strings.Contains(stderr, "to "+file) {
		t.Fatalf("export to a file: %q %v", stderr, err)
	}
	b, err := os.ReadFile(file)
	if err != nil || !slices.EqualFunc(parse(string(b)), want, slices.Equal) {
		t.Fatalf("the exported file: %v\n%s", err, b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 1 {
		t.Errorf("the export left %d files beside it, want only the export", len(entries))
	}

	// A store's payments, to both its distributors.
	stdout, _, err = runCLI("payment", "export", url, "--store-id", "s-1")
	rows := parse(stdout)
	if err != nil || len(rows) != 4 {
		t.Fatalf("export of s-1: %v %q", err, rows)
	}
	dists := map[string]int{}
	for _, r := range rows[1:] {
		dists[r[1]]++
	}
	if dists["d-x"] != 2 || dists["d-other"] != 1 {
		t.Errorf("export of s-1 by distributor: %v", dists)
	}

	// A time window applies to a distributor's payments only; an engine
	// that is not there leaves no file behind.
	if _, _, err := runCLI("payment", "export", url, "--store-id", "s-1", "--from", "2026-01-01T00:00:00Z"); exitCode(err) != exitUsage {
		t.Errorf("export of a store with --from: %v, want a usage error", err)
	}
	if out, _, err := runCLI("payment", "export", url, "--store-id", "s-1", "--json"); exitCode(err) != exitUsage || !strings.Contains(out, `"code":"not_run"`) || strings.Contains(out, "deposit_id") {
		t.Errorf("export with --json: %q %v, want a usage error (its JSON error body), no CSV", out, err)
	}
	gone := filepath.Join(t.TempDir(), "none.csv")
	if _, _, err := runCLI("payment", "export", "--nats-url", "nats://127.0.0.1:1", "--distributor-id", "d-x", "--out", gone); exitCode(err) != exitUnavailable {
		t.Errorf("export with no engine: %v, want unavailable", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(gone)); len(entries) != 0 {
		t.Errorf("a failed export left %d files", len(entries))
	}
}

// TestPaymentExportFileMode: the file --out writes has the mode a file the
// shell's > creates would have (0666 less the umask), and one it replaces
// keeps its mode, so that whoever could read the previous export (the
// ERP's account) can read the next one.
func TestPaymentExportFileMode(t *testing.T) {
	dir := t.TempDir()
	ref, err := os.Create(filepath.Join(dir, "reference"))
	if err != nil {
		t.Fatal(err)
	}
	ref.Close()
	fi, err := os.Stat(ref.Name())
	if err != nil {
		t.Fatal(err)
	}
	export := func(w io.Writer) (exportTotals, error) {
		_, err := io.WriteString(w, "deposit_id\n")
		return exportTotals{}, err
	}
	file := filepath.Join(dir, "payments.csv")
	if _, err := writeExport(file, io.Discard, export); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Stat(file); err != nil || got.Mode().Perm() != fi.Mode().Perm() {
		t.Fatalf("a new export: %v %v, want the mode of a file created there, %v", got.Mode(), err, fi.Mode())
	}
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := writeExport(file, io.Discard, export); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Stat(file); err != nil || got.Mode().Perm() != 0o640 {
		t.Fatalf("an export over one of mode 0640: %v %v, want it kept", got.Mode(), err)
	}
}

// TestExportOutNotARegularFile: --out naming something other than a
// regular file does what the shell's > would do to it, and never puts a
// regular file in its place: a named pipe (or a device: /dev/null,
// /dev/stdout) is written to, a symbolic link's target is replaced and the
// link stays, and a directory is refused before anything is exported.
func TestExportOutNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	exported := 0
	export := func(w io.Writer) (exportTotals, error) {
		exported++
		_, err := io.WriteString(w, "deposit_id\n")
		return exportTotals{}, err
	}

	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader opened without blocking: the export's open for writing
	// finds it, and its read after the export sees what was written (or
	// nothing, at once, if the pipe was never written).
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := writeExport(fifo, io.Discard, export); err != nil {
		t.Fatalf("export to a named pipe: %v", err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("the named pipe is now %v (%v): the export put a file in its place", fi.Mode(), err)
	}
	buf := make([]byte, 100)
	if n, _ := r.Read(buf); string(buf[:n]) != "deposit_id\n" {
		t.Fatalf("the pipe's reader got %q, want the export", buf[:n])
	}

	target := filepath.Join(dir, "target.csv")
	if err := os.WriteFile(target, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink("target.csv", link); err != nil {
		t.Fatal(err)
	}
	if _, err := writeExport(link, io.Discard, export); err != nil {
		t.Fatalf("export to a symbolic link: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the symbolic link is now %v (%v): the export replaced the link, not its target", fi.Mode(), err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "deposit_id\n" {
		t.Fatalf("the link's target holds %q (%v), want the export", b, err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("the link's target: %v (%v), want its mode 0640 kept", fi.Mode(), err)
	}

	exported = 0
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := writeExport(sub, io.Discard, export); err == nil || !strings.Contains(err.Error(), "is a directory") || exported != 0 {
		t.Fatalf("export to a directory: %v after %d exports, want it refused as a directory before exporting", err, exported)
	}
	if left, _ := os.ReadDir(dir); len(left) != 4 {
		t.Fatalf("the directory holds %d entries, want 4 (nothing left behind): %v", len(left), left)
	}
}
