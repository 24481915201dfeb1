package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	verification "github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// runAuditVerify runs `bankbook audit verify` with args and decodes its
// --json output (when it printed one).
func runAuditVerify(t *testing.T, args ...string) (verification.Report, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := auditVerify(ctx, args, &out, &errOut)
	var rep verification.Report
	if strings.HasPrefix(out.String(), "{") {
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("audit verify --json: %q: %v", out.String(), jerr)
		}
	}
	return rep, out.String(), err
}

// findingAt returns the finding of check at seq, if there is one.
func findingAt(rep verification.Report, check string, seq eventstore.Seq) (verification.Finding, bool) {
	for _, f := range rep.Findings {
		if f.Check == check && f.Seq == seq {
			return f, true
		}
	}
	return verification.Finding{}, false
}

// forger publishes raw messages on the event stream with the engine's
// identity (only it may), as a tamperer with the engine's keys would.
type forger struct {
	t  *testing.T
	js jetstream.JetStream
}

func newForger(t *testing.T, e *engine.Engine) *forger {
	t.Helper()
	c, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Engine)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return &forger{t: t, js: js}
}

// publish stores data on subject and returns its sequence.
func (f *forger) publish(subject string, data []byte) eventstore.Seq {
	f.t.Helper()
	ack, err := f.js.Publish(context.Background(), subject, data)
	if err != nil {
		f.t.Fatal(err)
	}
	return eventstore.Seq(ack.Sequence)
}

// last returns the last commit of an aggregate, read with direct gets.
func (f *forger) last(typ, id string) eventstore.Commit {
	f.t.Helper()
	var last eventstore.Commit
	_, err := eventstore.NewReader(f.js, eventstore.Config{}).Read(context.Background(), func(_ context.Context, batch []eventstore.Commit) error {
		for _, c := range batch {
			if c.AggregateType == typ && c.AggregateID == id {
				last = c
			}
		}
		return nil
	})
	if err != nil || last.Seq == 0 {
		f.t.Fatalf("last commit of %s/%s: %v", typ, id, err)
	}
	return last
}

// commit publishes a well-formed commit of one event on the aggregate,
// after its commit at prev, whose stored bytes hash to prevHash (version
// prevVersion), and returns its seq: a forger with the engine's keys
// can keep the hash chain intact.
func (f *forger) commit(typ, id string, prev eventstore.Seq, prevHash eventstore.Hash, prevVersion int, ev domain.Event) eventstore.Seq {
	f.t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	now := time.Now().UTC()
	c, err := eventstore.NewCommit(eventstore.Ref{Type: typ, ID: id}, prev, prevHash, prevVersion, fmt.Sprintf("forged-%d", now.UnixNano()),
		[]eventstore.Envelope{{EventID: fmt.Sprintf("ev-forged-%d", now.UnixNano()), EventType: ev.EventType(), SchemaVersion: 1, OccurredAt: now, Actor: "forger", Data: data}}, now)
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.publish("bankbook.evt."+typ+"."+id, b)
}

// waitIdle waits until the live read models have applied the whole stream
// and nothing moved between two looks.
func waitIdle(t *testing.T, url string) api.ProjectionStatusReply {
	t.Helper()
	var prev, st api.ProjectionStatusReply
	testenv.CheckFor(t, 30*time.Second, func() error {
		out, err := cli(t, "projections", "status", "--hash", "--json", url)
		if err != nil {
			return err
		}
		st = api.ProjectionStatusReply{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		if st.Lag != 0 || st.HashAtSeq != st.StreamLastSeq || !reflect.DeepEqual(st, prev) {
			prev = st
			return fmt.Errorf("not idle: %+v", st)
		}
		return nil
	})
	return st
}

// TestAuditVerify: orders, deposits (a payment, orphans), an orphan and a
// cancelled paid order refunded to wallets, a withdrawal paid out, an
// orphan left open. The engine verifies clean (exit 0), with the open
// orphan listed; then each tampering of the stream, made with the engine's
// identity, is named by its check and sequence (exit 1); then copies of the
// live read models, corrupted or with their checkpoints moved back, are
// named by the read_models check.
func TestAuditVerify(t *testing.T) {
	e, cfg := startEngine(t, func(c *engine.Config) {
		c.BankSim, c.ScanInterval = true, engine.Duration(200*time.Millisecond)
	})
	url := "--nats-url=" + e.ClientURL()
	auditor := "--nkey=" + e.SeedFile(auth.Auditor)
	dataDir := "--data-dir=" + cfg.DataDir
	do := func(args ...string) string {
		t.Helper()
		out, err := cli(t, append(args, url)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	decode := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
	}

	var orderA, orderB api.SubmitOrderReply
	decode(do("order", "submit", "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json"), &orderA)
	decode(do("order", "submit", "--buyer-id", "u2", "--buyer-name", "이영희", "--amount", "12000", "--json"), &orderB)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	statement := writeStatement(t,
		"T1,"+cfg.CollectNumber+","+orderA.DepositorName+",39000,"+now+"\n"+
			"T2,"+cfg.CollectNumber+",누군가,1200,"+now+"\n"+
			"T3,"+cfg.CollectNumber+",아무개,5000,"+now+"\n")
	if _, err := cli(t, "deposit", "import", statement, url); err != nil { // flags may follow the file
		t.Fatal(err)
	}
	var orphans api.OrphansReply
	decode(do("deposit", "orphans", "--json"), &orphans)
	if len(orphans.Deposits) != 2 {
		t.Fatalf("orphans: %+v", orphans)
	}
	var refunded, open api.OrphanView
	for _, o := range orphans.Deposits {
		if o.Amount == 1200 {
			refunded = o
		} else {
			open = o
		}
	}
	do("deposit", "resolve", "--deposit-id", refunded.DepositID, "--action", "refund_to_wallet", "--user-id", "u2")
	do("order", "cancel", "--order-id", orderB.OrderID, "--deposited=false")
	do("order", "cancel", "--order-id", orderA.OrderID, "--deposited=false") // paid: refunded to u1's wallet
	testenv.CheckFor(t, 20*time.Second, func() error {
		var w api.WalletView
		decode(do("wallet", "get", "--user-id", "u1", "--json"), &w)
		if w.Balance != 39000 {
			return fmt.Errorf("u1's wallet: %d", w.Balance)
		}
		return nil
	})
	var wd api.WithdrawReply
	decode(do("wallet", "withdraw", "--user-id", "u1", "--amount", "10000", "--bank", "신한은행", "--number", "110-123-456789", "--holder", "김민수", "--json"), &wd)
	testenv.CheckFor(t, 20*time.Second, func() error {
		var p api.PayoutView
		out, err := cli(t, "payout", "get", "--payout-id", wd.PayoutID, "--json", url)
		if err != nil {
			return err
		}
		decode(out, &p)
		if p.Status != "settled" {
			return fmt.Errorf("payout %s: %s", wd.PayoutID, p.Status)
		}
		return nil
	})
	live := waitIdle(t, url)

	// The engine holds its read-model file: a read-only open is refused
	// (bbolt's shared lock against the engine's exclusive one), so verify
	// compares with the engine's own hash.
	if st, err := projections.OpenReadOnly(filepath.Join(cfg.DataDir, readModelsFile), nil); !errors.Is(err, projections.ErrLocked) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("read-only open of the engine's file: %v, want ErrLocked", err)
	}

	t.Run("clean", func(t *testing.T) {
		rep, out, err := runAuditVerify(t, url, auditor, dataDir, "--json")
		if err != nil || exitCode(err) != exitOK || !rep.OK || len(rep.Findings) != 0 {
			t.Fatalf("clean engine: exit %d (%v): %s", exitCode(err), err, out)
		}
		k := rep.Checked
		if k.LastSeq != eventstore.Seq(live.StreamLastSeq) || k.ReadModels != "engine" || k.ReadModelsSeq != eventstore.Seq(live.HashAtSeq) || k.Wallets != 2 || k.BankTransactions != 3 || k.Damaged != 0 {
			t.Fatalf("checked: %+v (live %+v)", k, live)
		}
		if len(rep.OpenItems) != 1 || rep.OpenItems[0].ID != open.DepositID || rep.OpenItems[0].Account != domain.AccountSuspense || rep.OpenItems[0].Amount != 5000 || rep.OpenItems[0].Since.IsZero() {
			t.Fatalf("open items: %+v", rep.OpenItems)
		}
		// A data directory without read models is not silently swapped for
		// the engine's.
		if _, _, err := runAuditVerify(t, url, auditor, "--data-dir="+t.TempDir()); exitCode(err) != exitUsage {
			t.Fatalf("a --data-dir without read models: exit %d (%v), want 2 (could not run)", exitCode(err), err)
		}
		_, text, err := runAuditVerify(t, url, auditor, dataDir)
		if err != nil || !strings.Contains(text, "OK: no findings") || !strings.Contains(text, open.DepositID) || !strings.Contains(text, "compared with a fresh replay at seq") {
			t.Fatalf("human output (%v):\n%s", err, text)
		}

		// A digest taken now, trusted later: equal now; a different one
		// is a finding; a malformed one is a usage error.
		out, err = cli(t, "audit", "digest", url, auditor, "--json")
		var d digestResult
		if err != nil || json.Unmarshal([]byte(out), &d) != nil {
			t.Fatalf("audit digest: %q %v", out, err)
		}
		if rep, out, err := runAuditVerify(t, url, auditor, dataDir, "--json", fmt.Sprintf("--digest=%d:%s", d.Seq, d.Digest)); err != nil || !rep.OK {
			t.Fatalf("--digest of the stream as it is: exit %d: %s", exitCode(err), out)
		}
		wrong := fmt.Sprintf("--digest=%d:%s", d.Seq, strings.Repeat("0", 64))
		if rep, out, err := runAuditVerify(t, url, auditor, dataDir, "--json", wrong); exitCode(err) != exitFailed || len(rep.Findings) != 1 || rep.Findings[0].Check != verification.CheckDigest {
			t.Fatalf("--digest of another stream: exit %d: %s", exitCode(err), out)
		}
		if _, _, err := runAuditVerify(t, url, auditor, "--digest=12"); exitCode(err) != exitUsage {
			t.Fatalf("--digest without a digest: exit %d (%v)", exitCode(err), err)
		}
	})

	t.Run("an identity that may not read the stream", func(t *testing.T) {
		// NATS drops its direct gets without an answer: audit verify must
		// give up within --timeout (runAuditVerify allows 60 s) and say why.
		start := time.Now()
		_, _, err := runAuditVerify(t, url, "--nkey="+e.SeedFile(auth.Operator), dataDir, "--timeout=2s")
		if exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), "permissions violation") {
			t.Fatalf("audit verify as the operator: exit %d (%v), want 2 naming the permissions violation", exitCode(err), err)
		}
		if d := time.Since(start); d > 30*time.Second { // a functional bound, 15 times the timeout: it waited for its caller's context
			t.Fatalf("audit verify as the operator gave up after %v, with --timeout=2s", d)
		}
		out := t.TempDir() + "/r"
		for _, args := range [][]string{{"audit", "digest"}, {"replay", "--out", out}} {
			_, err := cli(t, append(args, url, "--nkey="+e.SeedFile(auth.Operator), "--timeout=2s")...)
			if err == nil || !strings.Contains(err.Error(), "permissions violation") {
				t.Fatalf("%v as the operator: %v, want the permissions violation", args, err)
			}
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the failed replay left its --out directory behind: %v", err)
		}
	})

	fg := newForger(t, e)

	t.Run("a wallet credited twice", func(t *testing.T) {
		last := fg.last(domain.AggregateWallet, "u2")
		seq := fg.commit(domain.AggregateWallet, "u2", last.Seq, last.Hash, last.Events[len(last.Events)-1].Version, domain.WalletCredited{
			UserID: "u2", Amount: 1200, Kind: domain.CreditOrphanRefund, Ref: refunded.DepositID, FromAccount: domain.AccountSuspense, CreditedAt: time.Now().UTC()})
		waitIdle(t, url)
		rep, out, err := runAuditVerify(t, url, auditor, dataDir, "--json")
		if exitCode(err) != exitFailed || rep.OK {
			t.Fatalf("exit %d (%v): %s", exitCode(err), err, out)
		}
		if _, ok := findingAt(rep, verification.CheckWallets, seq); !ok {
			t.Fatalf("no wallets finding at seq %d: %+v", seq, rep.Findings)
		}
		// The suspense account was debited for an item already closed.
		var clearing bool
		for _, f := range rep.Findings {
			clearing = clearing || (f.Check == verification.CheckClearing && f.Account == domain.AccountSuspense)
		}
		if !clearing {
			t.Fatalf("no clearing finding on the suspense account: %+v", rep.Findings)
		}
	})

	t.Run("a wallet credited outside its wallet", func(t *testing.T) {
		// A credit of u1's wallet account recorded on a deposit: the
		// ledger moves, the wallet's own events do not.
		seq := fg.commit(domain.AggregateDeposit, "dep-credit", 0, eventstore.Hash{}, 0, domain.WalletCredited{
			UserID: "u1", Amount: 700, Kind: domain.CreditOrphanRefund, Ref: "dep-credit", FromAccount: domain.AccountBank(cfg.CollectNumber), CreditedAt: time.Now().UTC()})
		waitIdle(t, url)
		rep, out, err := runAuditVerify(t, url, auditor, dataDir, "--json")
		if exitCode(err) != exitFailed {
			t.Fatalf("exit %d (%v): %s", exitCode(err), err, out)
		}
		f, ok := findingAt(rep, verification.CheckWallets, seq)
		if !ok || f.Account != domain.AccountWallet("u1") {
			t.Fatalf("no wallets finding for u1 at seq %d: %+v", seq, rep.Findings)
		}
	})

	t.Run("read models", func(t *testing.T) {
		live := waitIdle(t, url)
		// A copy of the idle engine's file equals a fresh replay.
		copyModels := func(t *testing.T) string {
			t.Helper()
			b, err := os.ReadFile(filepath.Join(cfg.DataDir, readModelsFile))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, readModelsFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}
		readModelsFinding := func(t *testing.T, dir string) verification.Report {
			t.Helper()
			rep, out, err := runAuditVerify(t, url, auditor, "--data-dir="+dir, "--json")
			if exitCode(err) == exitUsage {
				t.Fatalf("could not run (%v): %s", err, out)
			}
			return rep
		}
		edit := func(t *testing.T, dir string, fn func(tx *bbolt.Tx) error) {
			t.Helper()
			db, err := bbolt.Open(filepath.Join(dir, readModelsFile), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(fn); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}

		t.Run("a clean copy", func(t *testing.T) {
			rep := readModelsFinding(t, copyModels(t))
			if rep.Checked.ReadModels != "file" || rep.Checked.ReadModelsSeq != eventstore.Seq(live.HashAtSeq) {
				t.Fatalf("checked: %+v (live %+v)", rep.Checked, live)
			}
			for _, f := range rep.Findings {
				if f.Check == verification.CheckReadModels {
					t.Fatalf("read_models finding on a clean copy: %+v", f)
				}
			}
		})

		t.Run("a ./data that is not the running engine's", func(t *testing.T) {
			// Without --data-dir, a readmodels.db under ./data (another
			// engine's, or an old copy) is not compared while the engine
			// at --nats-url answers: its own read models are.
			dir := copyModels(t)
			edit(t, dir, func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("projection:orders"), []byte("not this engine's"))
			})
			cwd := t.TempDir()
			if err := os.Rename(dir, filepath.Join(cwd, "data")); err != nil {
				t.Fatal(err)
			}
			t.Chdir(cwd)
			rep, out, err := runAuditVerify(t, url, auditor, "--json")
			if exitCode(err) == exitUsage || rep.Checked.ReadModels != "engine" || rep.Checked.ReadModelsFile != "" {
				t.Fatalf("exit %d (%v), checked %+v: %s", exitCode(err), err, rep.Checked, out)
			}
			for _, f := range rep.Findings {
				if f.Check == verification.CheckReadModels {
					t.Fatalf("read_models finding from a file that is not the engine's: %+v", f)
				}
			}
			// Named with --data-dir, the file is the one checked, and
			// named: its mangled record is a finding, and nothing is
			// said to be compared.
			rep, _, _ = runAuditVerify(t, url, auditor, "--data-dir=data", "--json")
			if !strings.HasPrefix(rep.Checked.ReadModels, "not checked") || rep.Checked.ReadModelsFile != filepath.Join("data", readModelsFile) ||
				!slices.ContainsFunc(rep.Findings, func(f verification.Finding) bool { return f.Check == verification.CheckReadModels }) {
				t.Fatalf("with --data-dir: checked %+v, findings %+v", rep.Checked, rep.Findings)
			}
		})

		t.Run("checkpoints moved back", func(t *testing.T) {
			dir := copyModels(t)
			edit(t, dir, func(tx *bbolt.Tx) error {
				meta := tx.Bucket([]byte("meta"))
				var keys [][]byte
				_ = meta.ForEach(func(k, v []byte) error {
					if bytes.HasPrefix(k, []byte("projection:")) && len(v) == 16 {
						keys = append(keys, bytes.Clone(k))
					}
					return nil
				})
				if len(keys) == 0 {
					return errors.New("no projection records")
				}
				for _, k := range keys {
					v := bytes.Clone(meta.Get(k))
					binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])-3)
					if err := meta.Put(k, v); err != nil {
						return err
					}
				}
				return nil
			})
			rep := readModelsFinding(t, dir)
			want := eventstore.Seq(live.HashAtSeq) - 3
			if _, ok := findingAt(rep, verification.CheckReadModels, want); !ok {
				t.Fatalf("no read_models finding at seq %d: %+v", want, rep.Findings)
			}
		})

		t.Run("a corrupted value", func(t *testing.T) {
			// Each edited bucket is named, with the key and both values.
			dir := copyModels(t)
			var orderKey string
			edit(t, dir, func(tx *bbolt.Tx) error {
				b := tx.Bucket([]byte("orders"))
				k, v := b.Cursor().First()
				if k == nil {
					return errors.New("no orders")
				}
				orderKey = string(k)
				if err := b.Put(bytes.Clone(k), append(bytes.Clone(v), ' ')); err != nil {
					return err
				}
				return tx.Bucket([]byte("wallets")).Put([]byte("u-forged"), []byte(`{"balance":9100}`))
			})
			rep := readModelsFinding(t, dir)
			if _, ok := findingAt(rep, verification.CheckReadModels, eventstore.Seq(live.HashAtSeq)); !ok {
				t.Fatalf("no read_models finding at seq %d: %+v", live.HashAtSeq, rep.Findings)
			}
			for _, want := range []string{
				fmt.Sprintf("projection orders, bucket orders, key %q", orderKey),
				`projection wallets, bucket wallets, key "u-forged": "{\"balance\":9100}" against (absent)`,
			} {
				var found bool
				for _, f := range rep.Findings {
					found = found || (f.Check == verification.CheckReadModels && strings.Contains(f.Message, want))
				}
				if !found {
					t.Fatalf("no read_models finding naming %s: %+v", want, rep.Findings)
				}
			}
		})

		t.Run("a corrupted file", func(t *testing.T) {
			dir := copyModels(t)
			path := filepath.Join(dir, readModelsFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2*4096; i++ { // both meta pages
				b[i] = 0xff
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			rep := readModelsFinding(t, dir)
			var found bool
			for _, f := range rep.Findings {
				found = found || (f.Check == verification.CheckReadModels && strings.Contains(f.Message, "cannot be read"))
			}
			if !found {
				t.Fatalf("no read_models finding for a damaged file: %+v", rep.Findings)
			}
			// Not compared, and not said to be.
			if !strings.HasPrefix(rep.Checked.ReadModels, "not checked") || rep.Checked.ReadModelsFile == "" || rep.Checked.ReadModelsSeq != 0 {
				t.Fatalf("checked %+v for a file that could not be read", rep.Checked)
			}
			if _, text, _ := runAuditVerify(t, url, auditor, "--data-dir="+dir); !strings.Contains(text, "live read models: not checked") || strings.Contains(text, "fresh replay") {
				t.Fatalf("the human output of a file that could not be read:\n%s", text)
			}
		})
	})

	// From here on the live read models stop at the negative posting (the
	// ledger projection refuses it), so the cases below check the stream.
	t.Run("a posting of a negative amount", func(t *testing.T) {
		last := fg.last(domain.AggregateWallet, "u2")
		seq := fg.commit(domain.AggregateWallet, "u2", last.Seq, last.Hash, last.Events[len(last.Events)-1].Version, domain.WalletCredited{
			UserID: "u2", Amount: -500, Kind: domain.CreditOrphanRefund, Ref: "negative", FromAccount: domain.AccountBank(cfg.CollectNumber), CreditedAt: time.Now().UTC()})
		rep, out, err := runAuditVerify(t, url, auditor, "--json") // no read models: the stream's checks only
		if exitCode(err) != exitFailed {
			t.Fatalf("exit %d (%v): %s", exitCode(err), err, out)
		}
		f, ok := findingAt(rep, verification.CheckTrialBalance, seq)
		if !ok || !strings.Contains(f.Message, "-500") {
			t.Fatalf("no trial_balance finding at seq %d: %+v", seq, rep.Findings)
		}
		// The engine's read models stop there, and say so.
		testenv.CheckFor(t, 20*time.Second, func() error {
			rep, out, _ := runAuditVerify(t, url, auditor, dataDir, "--json")
			if f, ok := findingAt(rep, verification.CheckReadModels, seq); !ok || !strings.Contains(f.Message, "cannot apply") {
				return fmt.Errorf("no read_models finding at seq %d: %s", seq, out)
			}
			return nil
		})
	})

	t.Run("a bank transaction recorded twice", func(t *testing.T) {
		seq := fg.commit(domain.AggregateDeposit, "dep-again", 0, eventstore.Hash{}, 0, domain.DepositRecorded{
			DepositID: "dep-again", BankTxnID: "T3", AccountNumber: cfg.CollectNumber, DepositorName: "아무개", Amount: 5000,
			DepositedAt: time.Now().UTC(), Outcome: domain.OutcomeOrphaned, Reason: "no_match", RecordedAt: time.Now().UTC()})
		rep, out, err := runAuditVerify(t, url, auditor, "--json")
		if exitCode(err) != exitFailed {
			t.Fatalf("exit %d (%v): %s", exitCode(err), err, out)
		}
		f, ok := findingAt(rep, verification.CheckBankTransactions, seq)
		if !ok || !strings.Contains(f.Message, "T3") {
			t.Fatalf("no bank_transactions finding at seq %d: %+v", seq, rep.Findings)
		}
	})

	t.Run("a damaged message and an unknown event type", func(t *testing.T) {
		damaged := fg.publish("bankbook.evt.order.o-damaged", []byte("not a commit"))
		unknown := fg.commit(domain.AggregateOrder, "o-unknown", 0, eventstore.Hash{}, 0, teleported{OrderID: "o-unknown"})
		rep, out, err := runAuditVerify(t, url, auditor, "--json")
		if exitCode(err) != exitFailed {
			t.Fatalf("exit %d (%v): %s", exitCode(err), err, out)
		}
		for _, seq := range []eventstore.Seq{damaged, unknown} {
			if _, ok := findingAt(rep, verification.CheckNoEventSkipped, seq); !ok {
				t.Fatalf("no no_event_skipped finding at seq %d: %+v", seq, rep.Findings)
			}
		}
		if rep.Checked.Damaged != 2 {
			t.Fatalf("checked: %+v", rep.Checked)
		}
		// The human output names them too.
		_, text, _ := runAuditVerify(t, url, auditor)
		if !strings.Contains(text, fmt.Sprintf("[no_event_skipped] seq %d:", damaged)) {
			t.Fatalf("human output:\n%s", text)
		}

		// Set aside by an operator, they are no longer findings, also while
		// the engine holds the read-model file (whose set-aside records the
		// auditor then reads through the API).
		for _, seq := range []eventstore.Seq{damaged, unknown} {
			do("event", "set-aside", "--seq", fmt.Sprint(seq), "--reason", "forged in a test")
		}
		rep, out, _ = runAuditVerify(t, url, auditor, dataDir, "--json")
		for _, seq := range []eventstore.Seq{damaged, unknown} {
			if f, ok := findingAt(rep, verification.CheckNoEventSkipped, seq); ok {
				t.Fatalf("set aside, still a finding: %+v\n%s", f, out)
			}
		}
		if rep.Checked.ReadModels != "engine" || rep.Checked.SetAside != 2 {
			t.Fatalf("checked: %+v", rep.Checked)
		}
	})

	t.Run("a broken hash chain", func(t *testing.T) {
		// A commit that links to the order's last commit by sequence but
		// not by hash (that commit changed, or this one was made up).
		last := fg.last(domain.AggregateWallet, "u1")
		seq := fg.commit(domain.AggregateWallet, "u1", last.Seq, eventstore.HashOf([]byte("something else")), last.Events[len(last.Events)-1].Version, domain.WalletCredited{
			UserID: "u1", Amount: 300, Kind: domain.CreditOrphanRefund, Ref: "chain", FromAccount: domain.AccountBank(cfg.CollectNumber), CreditedAt: time.Now().UTC()})
		rep, out, err := runAuditVerify(t, url, auditor, "--json")
		if exitCode(err) != exitFailed {
			t.Fatalf("exit %d (%v): %s", exitCode(err), err, out)
		}
		f, ok := findingAt(rep, verification.CheckChains, seq)
		if !ok || !strings.Contains(f.Message, "hash") {
			t.Fatalf("no chains finding at seq %d: %+v", seq, rep.Findings)
		}
	})

	t.Run("a commit cannot be deleted", func(t *testing.T) {
		// The stream denies deletes and purges, even to the engine's
		// identity: a commit can only be removed by editing the server's
		// files, which the chains check names (eventstore's chain tests).
		last := fg.last(domain.AggregateOrder, orderB.OrderID)
		stream, err := fg.js.Stream(context.Background(), "BANKBOOK_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.DeleteMsg(context.Background(), uint64(last.PrevSeq)); err == nil || !strings.Contains(err.Error(), "not permitted") {
			t.Fatalf("delete of seq %d: %v, want refused", last.PrevSeq, err)
		}
		if err := stream.Purge(context.Background()); err == nil || !strings.Contains(err.Error(), "not permitted") {
			t.Fatalf("purge: %v, want refused", err)
		}
	})

	t.Run("could not run", func(t *testing.T) {
		_, _, err := runAuditVerify(t, "--nats-url=nats://127.0.0.1:1", auditor, "--json", "--timeout=2s")
		if exitCode(err) != exitUsage {
			t.Fatalf("no engine: exit %d (%v), want 2", exitCode(err), err)
		}
		_, _, err = runAuditVerify(t, "stray")
		if exitCode(err) != exitUsage {
			t.Fatalf("a stray argument: exit %d (%v), want 2", exitCode(err), err)
		}
	})
}

// submitOrders submits n orders as the app, buyers prefix-0, prefix-1, ...
func submitOrders(t *testing.T, e *engine.Engine, prefix string, n int) []api.SubmitOrderReply {
	t.Helper()
	c, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.App)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	orders := make([]api.SubmitOrderReply, n)
	for i := range orders {
		if orders[i], _, err = client.Do(context.Background(), c, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: fmt.Sprintf("%s-%d", prefix, i), BuyerName: "김주문", Amount: 10_000}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return orders
}

// damageOrder flips one byte of the order's ID inside its stored message,
// in the stopped engine's block files of dataDir.
func damageOrder(t *testing.T, dataDir, order string) {
	t.Helper()
	blocks, err := filepath.Glob(filepath.Join(dataDir, "jetstream", "jetstream", "*", "streams", "BANKBOOK_EVENTS", "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("the event stream's block files: %v %v", blocks, err)
	}
	damaged := false
	for _, blk := range blocks {
		b, err := os.ReadFile(blk)
		if err != nil {
			t.Fatal(err)
		}
		id := []byte(`"order_id":"` + order)
		if i := bytes.Index(b, id); i >= 0 {
			b[i+len(id)-1] ^= 0x01
			if err := os.WriteFile(blk, b, 0o600); err != nil {
				t.Fatal(err)
			}
			damaged = true
		}
	}
	if !damaged {
		t.Fatalf("order %s's commit is in no block file", order)
	}
}

// `audit verify --stopped` verifies a stopped engine's data directory
// whole, through its own nats-server started in the process: clean, it
// exits 0; while an engine holds the directory it is refused; with a
// commit damaged in the server's files, it names the missing sequence.
func TestAuditVerifyOfAStoppedEngine(t *testing.T) {
	e, cfg := startEngine(t)
	orders := submitOrders(t, e, "stopped", 3)
	// A damaged message an operator set aside.
	url := "--nats-url=" + e.ClientURL()
	aside := newForger(t, e).publish("bankbook.evt.order.o-damaged", []byte("not a commit"))
	if out, err := cli(t, "event", "set-aside", url, "--seq", fmt.Sprint(aside), "--reason", "forged in a test", "--nkey", e.SeedFile(auth.Operator)); err != nil {
		t.Fatalf("set aside: %v\n%s", err, out)
	}
	waitIdle(t, url)
	dir := "--data-dir=" + cfg.DataDir
	if _, out, err := runAuditVerify(t, dir, "--stopped"); exitCode(err) != 2 || !strings.Contains(err.Error(), "stop the engine first") {
		t.Fatalf("--stopped while the engine runs: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, out, err := runAuditVerify(t, dir, "--stopped", "--json")
	if err != nil || !rep.OK || rep.Checked.LastSeq < aside || rep.Checked.ReadModels != "file" || rep.Checked.SetAside != 1 {
		t.Fatalf("a clean stopped engine: %v\n%s", err, out)
	}
	// A lock that cannot be taken for another reason than an engine holding
	// it (here its file is a directory; a read-only file system does the
	// same) says so, not that an engine runs.
	lock := filepath.Join(cfg.DataDir, datadir.LockFile)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(lock, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, out, err := runAuditVerify(t, dir, "--stopped"); exitCode(err) != 2 || strings.Contains(err.Error(), "stop the engine first") || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("--stopped with a lock it cannot take: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	// The read-model file unreadable, the set-aside records come from the
	// server's bucket: the message set aside is still no finding.
	models := filepath.Join(cfg.DataDir, "readmodels.db")
	good, err := os.ReadFile(models)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(models, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, out, err = runAuditVerify(t, dir, "--stopped", "--json")
	if _, ok := findingAt(rep, verification.CheckNoEventSkipped, aside); exitCode(err) != exitFailed || ok || rep.Checked.SetAside != 1 {
		t.Fatalf("an unreadable read-model file: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	if err := os.WriteFile(models, good, 0o600); err != nil {
		t.Fatal(err)
	}
	damageOrder(t, cfg.DataDir, orders[1].OrderID)
	rep, out, err = runAuditVerify(t, dir, "--stopped", "--json")
	if exitCode(err) != exitFailed || rep.OK {
		t.Fatalf("a damaged stopped engine: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	if _, ok := findingAt(rep, verification.CheckChains, eventstore.Seq(orders[1].Seq)); !ok {
		t.Fatalf("no chains finding at seq %d: %+v", orders[1].Seq, rep.Findings)
	}
}

// `audit verify --stopped` takes a damaged commit as set aside only from
// the set-aside records, not from a flag written into the read-model file.
func TestAuditVerifyOfAStoppedEngineTrustsNoSetAsideFlagInTheFile(t *testing.T) {
	e, cfg := startEngine(t)
	submitOrders(t, e, "flag", 1)
	damaged := newForger(t, e).publish("bankbook.evt.order.o-flagged", []byte("not a commit"))
	waitIdle(t, "--nats-url="+e.ClientURL())
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := projections.Open(filepath.Join(cfg.DataDir, "readmodels.db"), &projections.Options{Codec: domain.Events()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkSetAside(damaged, "a flag, no record"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rep, out, err := runAuditVerify(t, "--data-dir="+cfg.DataDir, "--stopped", "--json")
	if _, ok := findingAt(rep, verification.CheckNoEventSkipped, damaged); exitCode(err) != exitFailed || !ok || rep.Checked.SetAside != 0 {
		t.Fatalf("a damaged commit flagged set aside in the file alone: exit %d (%v)\n%s", exitCode(err), err, out)
	}
}

// teleported is an event type no engine knows.
type teleported struct {
	OrderID string `json:"order_id"`
}

func (teleported) EventType() string { return "order.teleported" }

// A commit damaged in the server's files, in the middle of the log, and
// the only commit of its aggregate: the server drops it when it starts
// (its checksum fails) and answers 404 for its sequence. The engine's read
// models, rebuilt, stop before it; no chain points at it. `audit verify`
// still names it (chains, at that sequence) and exits 1, and `audit
// digest` refuses to digest past it.
func TestAuditVerifyNamesACommitMissingFromInsideTheLog(t *testing.T) {
	e, cfg := startEngine(t)
	orders := submitOrders(t, e, "gap", 3)
	waitIdle(t, "--nats-url="+e.ClientURL())
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	damageOrder(t, cfg.DataDir, orders[1].OrderID)
	if err := os.Remove(filepath.Join(cfg.DataDir, "readmodels.db")); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	gap := eventstore.Seq(orders[1].Seq)
	testenv.CheckFor(t, 10*time.Second, func() error {
		ready, why := e.Runner.Ready()
		if cp := e.Runner.Checkpoint(); ready || cp >= gap || !strings.Contains(why, fmt.Sprintf("expected seq %d", gap)) {
			return fmt.Errorf("read models at %d, ready %v (%s); want them stopped before the damaged commit at %d", cp, ready, why, gap)
		}
		return nil
	})
	url, auditor := "--nats-url="+e.ClientURL(), "--nkey="+e.SeedFile(auth.Auditor)

	rep, out, err := runAuditVerify(t, url, auditor, "--json")
	if exitCode(err) != exitFailed || rep.OK {
		t.Fatalf("verify: exit %d (%v): %s", exitCode(err), err, out)
	}
	if f, ok := findingAt(rep, verification.CheckChains, gap); !ok || !strings.Contains(f.Message, "no message at seq") {
		t.Fatalf("no chains finding at seq %d: %+v", gap, rep.Findings)
	}

	out, err = cli(t, "audit", "digest", url, auditor, "--json")
	var d digestResult
	if exitCode(err) != exitFailed || json.Unmarshal([]byte(out), &d) != nil || d.Missing == nil || d.Missing.From != uint64(gap) || d.Digest != "" {
		t.Fatalf("digest over the gap: exit %d (%v): %s", exitCode(err), err, out)
	}
	if out, err = cli(t, "audit", "digest", url, auditor); exitCode(err) != exitFailed || !strings.Contains(out, "NO DIGEST") {
		t.Fatalf("digest over the gap, human output: exit %d (%v): %s", exitCode(err), err, out)
	}
	if out, err = cli(t, "audit", "digest", url, auditor, "--at", fmt.Sprint(gap-1)); err != nil {
		t.Fatalf("digest before the gap: %v: %s", err, out)
	}
	// A digest kept at the missing sequence itself: the stream has none
	// there, a finding, not a run that could not be made.
	out, err = cli(t, "audit", "digest", url, auditor, "--json", "--check", fmt.Sprintf("%d:%s", gap, strings.Repeat("ab", 32)))
	d = digestResult{}
	if exitCode(err) != exitFailed || json.Unmarshal([]byte(out), &d) != nil || d.Missing == nil || d.Missing.From != uint64(gap) || d.Match != nil && *d.Match {
		t.Fatalf("check at the missing sequence: exit %d (%v): %s", exitCode(err), err, out)
	}
}

// TestAuditVerifyOfAnotherEnginesDataDir: --data-dir names a directory
// whose engine holds its read models, while --nats-url reaches another
// engine. The engine answering is not DIR's, so its read models are not
// compared as if they were DIR's: the verification does not run (exit 2).
// Pointed at DIR's own engine, it runs and says it compared that engine's.
func TestAuditVerifyOfAnotherEnginesDataDir(t *testing.T) {
	a, cfgA := startEngine(t)
	b, _ := startEngine(t)
	for _, e := range []*engine.Engine{a, b} {
		if _, err := cli(t, "order", "submit", "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "1000", "--nats-url="+e.ClientURL(), "--nkey="+e.SeedFile(auth.App)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := runAuditVerify(t, "--nats-url="+b.ClientURL(), "--nkey="+b.SeedFile(auth.Auditor), "--data-dir="+cfgA.DataDir)
	if exitCode(err) != exitUsage || !strings.Contains(fmt.Sprint(err), "not the one answering at --nats-url") {
		t.Fatalf("verify of A's data directory through engine B: exit %d (%v), want 2: B does not hold it", exitCode(err), err)
	}
	rep, out, err := runAuditVerify(t, "--nats-url="+a.ClientURL(), "--nkey="+a.SeedFile(auth.Auditor), "--data-dir="+cfgA.DataDir, "--json")
	if err != nil || rep.Checked.ReadModels != "engine" {
		t.Fatalf("verify of A's data directory through A: %v, checked %+v: %s", err, rep.Checked, out)
	}
}

// TestAuditVerifyStoppedNamesAnUnfinishedRestore: a restore killed before
// it wrote the log leaves its marker and no store; verify --stopped says
// to run the restore again, not to look for an external NATS.
func TestAuditVerifyStoppedNamesAnUnfinishedRestore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, engine.RestoreMarker), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, readModelsFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runAuditVerify(t, "--data-dir="+dir, "--stopped")
	if exitCode(err) != exitUsage || !strings.Contains(fmt.Sprint(err), "restore that did not finish") {
		t.Fatalf("verify --stopped of an unfinished restore: exit %d (%v), want 2 naming the restore", exitCode(err), err)
	}
}

// TestAuditVerifyOfAJoinedInstancesDataDir: a second instance joined to the
// first one's NATS has no address of its own, and the instances answer in
// turn; verify --data-dir of the second one's directory, through that
// NATS, compares the second one's read models.
func TestAuditVerifyOfAJoinedInstancesDataDir(t *testing.T) {
	a, _ := startEngine(t)
	_, cfgB := startEngine(t, func(c *engine.Config) {
		c.NATSURL, c.NKey, c.Listen = a.ClientURL(), a.SeedFile(auth.Engine), ""
	})
	if _, err := cli(t, "order", "submit", "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "1000", "--nats-url="+a.ClientURL(), "--nkey="+a.SeedFile(auth.App)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rep, out, err := runAuditVerify(t, "--nats-url="+a.ClientURL(), "--nkey="+a.SeedFile(auth.Auditor), "--data-dir="+cfgB.DataDir, "--json")
		if err != nil || rep.Checked.ReadModels != "engine" {
			t.Fatalf("verify of the joined instance's data directory: %v, checked %+v: %s", err, rep.Checked, out)
		}
	}
}
