package soak

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/engineproc"
)

// cliResult is one run of the bankbook CLI: its standard output, its exit
// status (-1: it did not exit, a timeout say) and its standard error.
type cliResult struct {
	stdout []byte
	code   int
	stderr string
	err    error
}

// runCLI runs `bin args...` for at most timeout.
func runCLI(ctx context.Context, bin string, timeout time.Duration, args ...string) cliResult {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = engineproc.Env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	r := cliResult{stdout: out, code: -1, stderr: strings.TrimSpace(stderr.String()), err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	}
	return r
}

// errNotRun is a replay, audit verify or reconciliation that did not run:
// an exit status other than 0 (clean) and 1 (findings).
var errNotRun = errors.New("did not run")

// result decodes what a replay, audit verify or reconciliation run with
// --json printed: its result when it exited 0 or 1. Otherwise stdout holds
// the command's error (errNotRun).
func (r cliResult) result(v any) error {
	if r.code != 0 && r.code != 1 {
		return fmt.Errorf("%w: %v", errNotRun, r)
	}
	if err := json.Unmarshal(r.stdout, v); err != nil {
		return fmt.Errorf("%v: %w", r, err)
	}
	return nil
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d (%v): %s %s", r.code, r.err, strings.TrimSpace(string(r.stdout)), r.stderr)
}

// checkAuditVerify runs 'bankbook audit verify' as the auditor against the
// idle engine (extra: --data-dir of a stopped instance, to compare its
// read-model file): after every kill, the log and the live read models must
// hold up to every check (hash chains, trial balance at every commit, each
// bank transaction accounted for once, wallets equal to their ledger
// accounts, no event skipped, the live read models equal to a rebuild).
func checkAuditVerify(ctx context.Context, rep *Report, name, bin, url, seed string, extra ...string) {
	c := rep.check(name)
	for attempt := 1; attempt <= 3; attempt++ {
		r := runCLI(ctx, bin, 5*time.Minute, append([]string{"audit", "verify", "--json", "--nats-url", url, "--nkey", seed, "--timeout", "60s"}, extra...)...)
		var res audit.Report
		if err := r.result(&res); err != nil {
			c.fail("audit verify: %v", err)
			return
		}
		if res.Checked.ReadModels != "engine" && res.Checked.ReadModels != "file" {
			rep.note("audit verify %d: live read models %s", attempt, res.Checked.ReadModels)
			time.Sleep(time.Second)
			continue
		}
		c.Checked = res.Checked.Commits
		c.expect(res.OK && r.code == 0, "audit verify: exit %d, %d findings", r.code, len(res.Findings))
		for _, f := range res.Findings {
			c.fail("%s at seq %d: %s", f.Check, f.Seq, f.Message)
		}
		c.Note = fmt.Sprintf("%d commits, %d bank transactions, %d checks, read models %s at seq %d",
			res.Checked.Commits, res.Checked.BankTransactions, len(res.Checked.Checks), res.Checked.ReadModels, res.Checked.ReadModelsSeq)
		return
	}
	c.fail("the live read models kept moving: never compared")
}

// reconcileResult is the part of 'bankbook reconcile bank --json' the
// checks read.
type reconcileResult struct {
	RunID    string                 `json:"run_id"`
	Lines    int                    `json:"lines"`
	Counts   domain.ReconcileCounts `json:"counts"`
	Repeated bool                   `json:"repeated"`
}

// storePayments returns the transfers to stores' dedicated accounts the
// acks acknowledge, each once, in ack order: what the bank's statement of
// those accounts holds, since every request got a definitive answer (a
// run where one did not fails "every request answered").
func storePayments(acks []Ack) []api.RecordDepositRequest {
	dedicated := map[string]bool{}
	for _, a := range acks {
		if a.OK() && a.Op == api.StoreLink.Name {
			if _, r, err := decodeAck[api.LinkStoreRequest, api.LinkStoreReply](a); err == nil {
				dedicated[r.DedicatedAccount.Number] = true
			}
		}
	}
	seen := map[string]bool{}
	var out []api.RecordDepositRequest
	for _, a := range acks {
		if !a.OK() || a.Op != api.DepositRecord.Name {
			continue
		}
		req, _, err := decodeAck[api.RecordDepositRequest, api.RecordDepositReply](a)
		if err != nil || !dedicated[req.AccountNumber] || seen[req.BankTxnID] {
			continue
		}
		seen[req.BankTxnID] = true
		out = append(out, req)
	}
	return out
}

// writeStatement writes lines as a bank statement, the CSV dialect of
// 'deposit import'.
func writeStatement(path string, lines []api.RecordDepositRequest) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"bank_txn_id", "account_number", "depositor_name", "amount", "deposited_at"})
	for _, l := range lines {
		_ = w.Write([]string{l.BankTxnID, l.AccountNumber, l.DepositorName, strconv.FormatInt(l.Amount, 10), l.DepositedAt.UTC().Format(time.RFC3339Nano)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// reconciler runs 'bankbook reconcile bank' as the operator.
type reconciler struct {
	bin, url, seed string
}

// retried are the error codes 'reconcile bank --json' prints that another
// attempt may not get: its own for a run it could not make (no engine to
// connect to: it is being killed and restarted), and the engine's for a
// passing state. Any other is the engine refusing the statement.
var retried = map[string]bool{"not_run": true, api.CodeUnavailable: true, api.CodeOverloaded: true, api.CodeInternal: true,
	"in_progress": true, "conflict": true, "not_caught_up": true}

// run reconciles the statement at path, trying again while the CLI could
// not run (exit 2: the engine is being killed and restarted) for at most
// budget, but not after the engine refused it. A kill may land after the engine recorded the run and before it
// answered: the next attempt must then get the same run, Repeated.
func (r reconciler) run(ctx context.Context, path string, budget time.Duration) (reconcileResult, int, error) {
	deadline := time.Now().Add(budget)
	for attempt := 1; ; attempt++ {
		out := runCLI(ctx, r.bin, time.Minute, "reconcile", "bank", "--statement", path, "--json",
			"--nats-url", r.url, "--nkey", r.seed, "--timeout", "20s")
		var res reconcileResult
		if err := out.result(&res); err == nil {
			return res, attempt, nil
		} else if !errors.Is(err, errNotRun) {
			return res, attempt, fmt.Errorf("reconcile bank %s: %w", filepath.Base(path), err)
		}
		var refused struct {
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(out.stdout, &refused) == nil && refused.Error != nil && !retried[refused.Error.Code] {
			return reconcileResult{}, attempt, fmt.Errorf("reconcile bank %s: refused: %v", filepath.Base(path), out)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return reconcileResult{}, attempt, fmt.Errorf("reconcile bank %s: no answer after %d attempts; the last: %v", filepath.Base(path), attempt, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// killReconciles reconciles bank statements while the engine is being
// killed: every few seconds one of the store payments acknowledged so
// far, each tried until it is answered. Every other run asks for a kill
// within the time a run takes, once the engine has been up MinUp. A kill
// that lands after the engine recorded a run and before it answered makes
// the next attempt get that run, Repeated.
type killReconciles struct {
	once sync.Once
	stop chan struct{}
	done chan struct{}
	// runs are the runs made (set before done closes), err the first
	// that could not be made.
	runs []killRun
	err  error
	aims chan<- time.Duration
	// aimed counts the runs a kill was aimed at; took is how long the
	// latest run answered at once took.
	aimed int
	took  time.Duration
}

// killRun is one run made during the kills.
type killRun struct {
	path     string
	res      reconcileResult
	attempts int
}

// start begins the runs; only the first call does anything. They end
// once finish is called.
func (k *killReconciles) start(ctx context.Context, r reconciler, log *ackLog, dir string, aims chan<- time.Duration) {
	k.once.Do(func() {
		k.aims = aims
		k.stop, k.done = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(k.done)
			last := 0
			for {
				if n, err := k.reconcile(ctx, r, log, dir, last); err != nil {
					k.err = err
					return
				} else if n > last {
					last = n
				}
				select {
				case <-k.stop:
					return
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
			}
		}()
	})
}

// reconcile makes one run of the store payments acknowledged so far, if
// there are more than last; it returns how many there were.
func (k *killReconciles) reconcile(ctx context.Context, r reconciler, log *ackLog, dir string, last int) (int, error) {
	acks, err := log.Snapshot()
	if err != nil {
		return 0, err
	}
	lines := storePayments(acks)
	if len(lines) <= last {
		return len(lines), nil
	}
	run := killRun{path: filepath.Join(dir, fmt.Sprintf("statement-kills-%d.csv", len(k.runs)+1))}
	if err := writeStatement(run.path, lines); err != nil {
		return 0, err
	}
	if len(k.runs)%2 == 1 && k.took > 0 {
		// Somewhere within what an uninterrupted run took, once the
		// engine has been up a while.
		select {
		case k.aims <- time.Duration(rand.Int64N(int64(k.took))):
			k.aimed++
		case <-time.After(10 * time.Second):
		case <-k.stop: // the kills are over
		case <-ctx.Done():
		}
	}
	began := time.Now()
	if run.res, run.attempts, err = r.run(ctx, run.path, 2*time.Minute); err != nil {
		return 0, err
	}
	if run.attempts == 1 {
		k.took = time.Since(began)
	}
	k.runs = append(k.runs, run)
	return len(lines), nil
}

// finish stops the runs and waits for the one under way; false if they
// never started.
func (k *killReconciles) finish() bool {
	if k.done == nil {
		return false
	}
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
	return true
}

// plantedLines are the statement lines reconcileAtEnd makes up or alters,
// one per finding category a statement can hold.
const plantedLines = 3

// reconcileAtEnd makes the runs made during the kills (k) again, against
// the idle engine: each must be answered as recorded. Then it reconciles
// a statement of every store payment acknowledged, with one line made up
// (missing in the ledger), one at another amount (amount mismatch) and
// one twice (duplicate), and the same file again: the run must find
// exactly those, match every other line, and be answered again unchanged.
// It returns the runs made.
func reconcileAtEnd(ctx context.Context, rep *Report, r reconciler, acks []Ack, dir string, k *killReconciles) (runs []string) {
	c := rep.check("bank statements reconciled")
	if k.finish() {
		if k.err != nil {
			c.fail("a run during the kills: %v", k.err)
		}
		crossed, recorded := 0, 0
		for _, run := range k.runs {
			again, _, err := r.run(ctx, run.path, time.Minute)
			c.expect(err == nil && again.Repeated && again.RunID == run.res.RunID && again.Counts == run.res.Counts,
				"%s (run %s, %d attempts, %+v), made again: %+v repeated=%v (%v)", filepath.Base(run.path), run.res.RunID, run.attempts, run.res.Counts, again.Counts, again.Repeated, err)
			runs = append(runs, run.res.RunID)
			if run.attempts > 1 {
				crossed++
			}
			if run.res.Repeated {
				recorded++
			}
		}
		rep.note("%d reconciliation runs during the kills, %d with a kill aimed at them: %d tried again after a kill, %d of them answered as recorded by an attempt the kill cut short",
			len(k.runs), k.aimed, crossed, recorded)
	}
	lines := storePayments(acks)
	if len(lines) < plantedLines {
		rep.note("too few store payments (%d) to reconcile", len(lines))
		return runs
	}
	stmt := append([]api.RecordDepositRequest(nil), lines...)
	made := stmt[0]
	made.BankTxnID += "-NOT-RECORDED"
	stmt[1].Amount++                   // amount_mismatch
	stmt = append(stmt, stmt[2], made) // duplicate, missing_in_ledger
	path := filepath.Join(dir, "statement.csv")
	if err := writeStatement(path, stmt); err != nil {
		c.fail("write the statement: %v", err)
		return runs
	}
	want := domain.ReconcileCounts{Matched: len(lines) - 2, MissingInLedger: 1, AmountMismatch: 1, Duplicate: 1}
	var first reconcileResult
	for i, repeated := range []bool{false, true} {
		res, _, err := r.run(ctx, path, time.Minute)
		if err != nil {
			c.fail("%v", err)
			return runs
		}
		c.expect(res.Counts == want, "run %d of %d statement lines (%d transfers): %+v, want %+v", i+1, len(stmt), len(lines), res.Counts, want)
		c.expect(res.Repeated == repeated, "run %d: repeated=%v", i+1, res.Repeated)
		if i == 0 {
			first = res
			runs = append(runs, res.RunID)
			c.Note = fmt.Sprintf("%d lines: %d matched, 1 missing in ledger, 1 amount mismatch, 1 duplicate, as planted; run %s", len(stmt), res.Counts.Matched, res.RunID)
		} else {
			c.expect(res.RunID == first.RunID, "the same file again: run %s, then %s", first.RunID, res.RunID)
		}
	}
	return runs
}

// checkRunsRecorded: each reconciliation run is one reconcile.completed in
// the stream, however many attempts and kills it took.
func checkRunsRecorded(rep *Report, runs []string, f *facts) {
	c := rep.check("reconciliation runs recorded once")
	for _, id := range runs {
		n := f.reconciled[domain.ReconciliationID(id)]
		c.expect(n == 1, "run %s: %d reconcile.completed in the stream", id, n)
	}
	for id, n := range f.reconciled {
		c.expect(slices.Contains(runs, string(id)), "run %s (%d reconcile.completed in the stream): not one the soak made", id, n)
	}
}
