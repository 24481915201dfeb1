package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// cliErr runs one bankbook command line and returns its stdout and stderr.
func cliErr(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// liveSnapshot is what the live engine answered once its read models had
// applied seq (and before they applied anything else): its content hash and
// the output of each query, keyed by the query's arguments.
type liveSnapshot struct {
	seq     eventstore.Seq
	hash    string
	answers map[string]string
}

// replayJSON is what the tests read of replay --json.
type replayJSON struct {
	Out            string `json:"out"`
	LastSeq        uint64 `json:"last_seq"`
	ContentHash    string `json:"content_hash"`
	Events         int    `json:"events"`
	UntilSeq       uint64 `json:"until_seq"`
	UntilTime      string `json:"until_time"`
	LastRecordedAt string `json:"last_recorded_at"`
	Compared       bool   `json:"compared"`
	Same           bool   `json:"same"`
	LiveSeq        uint64 `json:"live_seq"`
	NotCompared    string `json:"not_compared"`
}

// TestPointInTimeReplayAnswersAsTheLiveEngineDid: orders, a bank statement
// (a payment, an orphan, a bill payment), an orphan refunded to a wallet and
// a cancellation; after each step, the live engine's answers are recorded.
// A replay up to each recorded sequence (and up to each one's recorded
// time), queried offline, answers exactly the same bytes.
func TestPointInTimeReplayAnswersAsTheLiveEngineDid(t *testing.T) {
	e, cfg := startEngine(t, func(c *engine.Config) { c.StoreFeeBps = 100 })
	url := "--nats-url=" + e.ClientURL()
	auditor := "--nkey=" + e.SeedFile(auth.Auditor)
	ctx := context.Background()

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
	status := func() (api.ProjectionStatusReply, error) {
		var s api.ProjectionStatusReply
		out, err := cli(t, "projections", "status", "--hash", "--json", url)
		if err == nil {
			err = json.Unmarshal([]byte(out), &s)
		}
		return s, err
	}

	var (
		orderA, orderB api.SubmitOrderReply
		billID         string
		snaps          []liveSnapshot
	)
	// queries are the questions asked of the live engine after every step,
	// and of every replay.
	queries := func() [][]string {
		q := [][]string{
			{"ledger", "trial-balance", "--json"},
			{"ledger", "trial-balance"},
			{"order", "get", "--order-id", orderA.OrderID, "--json"},
			{"order", "get", "--order-id", orderB.OrderID, "--json"},
			{"order", "get", "--order-id", orderA.OrderID},
			{"wallet", "get", "--user-id", "u2", "--json"},
			{"wallet", "get", "--user-id", "u2"},
			{"bill", "get", "--bill-id", billID, "--json"},
			{"bill", "get", "--bill-id", billID},
			{"bill", "active", "--distributor-id", "d-r", "--json"},
			{"bill", "list", "--distributor-id", "d-r", "--store-id", "s-r"},
			{"store", "get", "--distributor-id", "d-r", "--store-id", "s-r", "--json"},
			{"store", "list", "--distributor-id", "d-r"},
			{"payment", "list", "--distributor-id", "d-r", "--json"},
			{"payment", "list", "--store-id", "s-r"},
			{"payment", "export", "--distributor-id", "d-r"},
		}
		// Every account the ledger has, one entry per page.
		var tb api.TrialBalanceReply
		decode(do("ledger", "trial-balance", "--json"), &tb)
		for _, a := range tb.Accounts {
			q = append(q, []string{"ledger", "account", "--account", a.Account, "--limit", "1", "--json"})
		}
		return q
	}
	// record waits until the engine is idle (the read models have applied
	// the whole stream, and it did not move since the last look), then asks
	// every query and keeps the answers if the read models were at the same
	// sequence, with the same content, before and after.
	record := func() {
		t.Helper()
		var prev eventstore.Seq
		testenv.CheckFor(t, 20*time.Second, func() error {
			before, err := status()
			if err != nil {
				return err
			}
			last := eventstore.Seq(before.StreamLastSeq)
			if before.Lag != 0 || eventstore.Seq(before.HashAtSeq) != last || last != prev {
				prev = last
				return fmt.Errorf("not idle: %+v", before)
			}
			s := liveSnapshot{seq: last, hash: before.Hash, answers: map[string]string{}}
			for _, q := range queries() {
				s.answers[strings.Join(q, " ")] = do(q...)
			}
			after, err := status()
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(after, before) {
				prev = 0
				return fmt.Errorf("the read models moved while recording: %+v, then %+v", before, after)
			}
			snaps = append(snaps, s)
			return nil
		})
	}

	// 1. Two orders, a store linked and billed.
	decode(do("order", "submit", "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json"), &orderA)
	decode(do("order", "submit", "--buyer-id", "u2", "--buyer-name", "이영희", "--amount", "12000", "--json"), &orderB)
	var link api.LinkStoreReply
	decode(do("store", "link", "--distributor-id", "d-r", "--store-id", "s-r", "--store-name", "한울식당", "--json"), &link)
	var bill api.IssueBillReply
	decode(do("bill", "issue", "--distributor-id", "d-r", "--store-id", "s-r", "--amount", "50000", "--json"), &bill)
	billID = bill.BillID
	record()

	// 2. A statement: order A paid, a stranger's transfer (an orphan), and
	// part of the bill.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	statement := writeStatement(t,
		"T1,"+cfg.CollectNumber+","+orderA.DepositorName+",39000,"+now+"\n"+
			"T2,"+cfg.CollectNumber+",누군가,1200,"+now+"\n"+
			"T3,"+link.DedicatedAccount.Number+",한울식당,20000,"+now+"\n")
	if _, err := cli(t, "deposit", "import", url, statement); err != nil {
		t.Fatal(err)
	}
	record()

	// 3. The orphan refunded to u2's wallet.
	var orphans api.OrphansReply
	decode(do("deposit", "orphans", "--json"), &orphans)
	if len(orphans.Deposits) != 1 {
		t.Fatalf("orphans: %+v", orphans)
	}
	do("deposit", "resolve", "--deposit-id", orphans.Deposits[0].DepositID, "--action", "refund_to_wallet", "--user-id", "u2")
	record()

	// 4. Order B cancelled.
	do("order", "cancel", "--order-id", orderB.OrderID, "--deposited=false")
	record()

	for i := 1; i < len(snaps); i++ {
		if snaps[i].seq <= snaps[i-1].seq {
			t.Fatalf("step %d recorded at seq %d, after step %d at %d", i+1, snaps[i].seq, i, snaps[i-1].seq)
		}
	}
	t.Logf("recorded at seqs %d, %d, %d, %d; %d answers at the last", snaps[0].seq, snaps[1].seq, snaps[2].seq, snaps[3].seq, len(snaps[3].answers))
	if a, b := snaps[0].answers["wallet get --user-id u2 --json"], snaps[2].answers["wallet get --user-id u2 --json"]; a == b {
		t.Fatalf("the wallet did not change between steps 1 and 3: %s", a)
	}

	// compare queries the read models in dir offline, with a NATS URL that
	// nothing listens on, and compares every answer with the live one.
	compare := func(t *testing.T, dir string, s liveSnapshot) {
		t.Helper()
		for q, want := range s.answers {
			args := append(strings.Fields(q), "--offline", dir, "--nats-url", "nats://127.0.0.1:1")
			got, err := cli(t, args...)
			if err != nil {
				t.Errorf("%s --offline: %v", q, err)
				continue
			}
			if got != want {
				t.Errorf("%s at seq %d:\noffline %s\n   live %s", q, s.seq, got, want)
			}
		}
	}
	replayTo := func(t *testing.T, until ...string) (replayJSON, string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "at")
		out, stderr, err := cliErr(t, append([]string{"replay", url, auditor, "--json", "--out", dir}, until...)...)
		if err != nil {
			t.Fatalf("replay %v: %v", until, err)
		}
		if stderr != "" {
			t.Errorf("replay wrote to a stderr that is no terminal: %q", stderr)
		}
		var res replayJSON
		decode(out, &res)
		if res.Out != filepath.Join(dir, "readmodels.db") || res.Compared == (res.NotCompared != "") ||
			res.Compared && (!res.Same || res.LiveSeq != res.LastSeq) {
			t.Errorf("a point-in-time replay is compared only where the live read models are, and then equal to them: %s", out)
		}
		return res, dir
	}

	for _, s := range snaps {
		t.Run(fmt.Sprintf("until seq %d", s.seq), func(t *testing.T) {
			res, dir := replayTo(t, "--until-seq", fmt.Sprint(s.seq))
			if res.LastSeq != uint64(s.seq) || res.UntilSeq != uint64(s.seq) || res.ContentHash != s.hash || res.Events < int(s.seq) {
				t.Fatalf("replay: %+v; live at seq %d had content hash %s", res, s.seq, s.hash)
			}
			compare(t, dir, s)
		})
		t.Run(fmt.Sprintf("until the time seq %d was recorded", s.seq), func(t *testing.T) {
			// The latest time any commit up to s.seq was recorded at:
			// commits appended at the same moment (the scanner records
			// several deposits at once, reactors run beside commands) may
			// be recorded in another order than they are stored, and the
			// replay ends before the first commit recorded after the time.
			var at, last time.Time
			for seq := eventstore.Seq(1); seq <= s.seq; seq++ {
				c, err := e.Events.Get(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range c.Events {
					if ev.RecordedAt.After(at) {
						at = ev.RecordedAt
					}
					if seq == s.seq {
						last = ev.RecordedAt
					}
				}
			}
			// In Seoul's zone: the same instant, to the nanosecond
			// (six digits would cover the whole microsecond).
			res, dir := replayTo(t, "--until-time", at.In(time.FixedZone("KST", 9*3600)).Format(toTheNanosecond))
			if res.LastSeq != uint64(s.seq) || res.ContentHash != s.hash {
				t.Fatalf("replay until %s: %+v; live at seq %d had content hash %s", at, res, s.seq, s.hash)
			}
			if got, err := time.Parse(time.RFC3339Nano, res.LastRecordedAt); err != nil || !got.Equal(last) {
				t.Fatalf("last_recorded_at %q, want %s (seq %d's)", res.LastRecordedAt, last, s.seq)
			}
			compare(t, dir, s)

			// The same time as audit history shows it, cut to the
			// microsecond, covers the whole microsecond: the commit is in.
			shown := domain.FormatTime(at)
			res, _ = replayTo(t, "--until-time", shown)
			if res.LastSeq != uint64(s.seq) || res.ContentHash != s.hash || res.UntilTime != shown {
				t.Fatalf("replay until %s (as shown): %+v; live at seq %d had content hash %s", shown, res, s.seq, s.hash)
			}
		})
	}

	t.Run("until a time before the first commit", func(t *testing.T) {
		c, err := e.Events.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Nine digits always: RFC3339Nano drops trailing zeros, and a time
		// that ends up with six digits covers its whole microsecond.
		res, dir := replayTo(t, "--until-time", c.Events[0].RecordedAt.Add(-time.Nanosecond).Format(toTheNanosecond))
		if res.LastSeq != 0 || res.Events != 0 {
			t.Fatalf("replay before the first commit: %+v", res)
		}
		out, err := cli(t, "order", "get", "--order-id", orderA.OrderID, "--offline", dir)
		if exitCode(err) != exitNotFound || out != "" {
			t.Fatalf("an order before it was submitted: exit %d %q (%v)", exitCode(err), out, err)
		}
	})

	t.Run("human output says it was not compared", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "h")
		out, err := cli(t, "replay", url, auditor, "--out", dir, "--until-seq", fmt.Sprint(snaps[1].seq))
		if err != nil || !strings.Contains(out, fmt.Sprintf("replayed sequences 1..%d", snaps[1].seq)) ||
			!strings.Contains(out, "content hash "+snaps[1].hash) || !strings.Contains(out, "not compared: point-in-time") ||
			!strings.Contains(out, "--offline "+dir) {
			t.Fatalf("replay: %q %v", out, err)
		}
	})

	// compared replays with args until the replay was compared (the engine
	// busy meanwhile leaves it at another sequence).
	compared := func(t *testing.T, args ...string) replayJSON {
		t.Helper()
		var res replayJSON
		testenv.CheckFor(t, 20*time.Second, func() error {
			out, err := cli(t, append([]string{"replay", url, auditor, "--json", "--out", filepath.Join(t.TempDir(), "r")}, args...)...)
			if err != nil {
				return err
			}
			res = replayJSON{}
			decode(out, &res)
			if !res.Compared {
				return fmt.Errorf("not compared (the engine was busy): %s", out)
			}
			return nil
		})
		return res
	}
	t.Run("a whole-stream replay is compared", func(t *testing.T) {
		res := compared(t)
		if !res.Same || res.LastSeq < uint64(snaps[len(snaps)-1].seq) || res.ContentHash == "" || res.NotCompared != "" || res.UntilSeq != 0 || res.UntilTime != "" {
			t.Fatalf("whole replay: %+v", res)
		}
	})

	last, err := e.Events.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a point-in-time replay to where the live read models are is compared", func(t *testing.T) {
		res := compared(t, "--until-seq", fmt.Sprint(last))
		if !res.Same || res.LastSeq != uint64(last) || res.UntilSeq != uint64(last) || res.NotCompared != "" {
			t.Fatalf("replay until the last seq: %+v", res)
		}
	})
	refused := []struct {
		name string
		args []string
		says string
	}{
		{"both ends", []string{"--until-seq", "2", "--until-time", time.Now().UTC().Format(time.RFC3339)}, "not both"},
		{"sequence 0", []string{"--until-seq", "0"}, "1 or more"},
		{"not a sequence", []string{"--until-seq", "-3"}, "until-seq"},
		{"not a time", []string{"--until-time", "yesterday"}, "RFC 3339"},
		{"a time without its zone", []string{"--until-time", "2026-11-30T18:00:00"}, "RFC 3339"},
		{"beyond the end", []string{"--until-seq", fmt.Sprint(last + 1000)}, fmt.Sprintf("the stream's last sequence is %d", last)},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "r")
			out, _, err := cliErr(t, append([]string{"replay", url, auditor, "--json", "--out", dir}, tc.args...)...)
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("exit %d (%v), want 2 saying %q", exitCode(err), err, tc.says)
			}
			// With --json, stdout holds the error, not a result.
			var body struct {
				Error struct {
					Code    string         `json:"code"`
					Details map[string]any `json:"details"`
				} `json:"error"`
				LastSeq *uint64 `json:"last_seq"`
			}
			if err := json.Unmarshal([]byte(out), &body); err != nil || body.Error.Code != "not_run" || body.Error.Details["exit_status"] != float64(exitUsage) || body.LastSeq != nil {
				t.Errorf("a refused replay printed %q (%v); want its error as JSON", out, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "readmodels.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused replay left read models behind: %v", err)
			}
		})
	}
	t.Run("refused: beyond the end, found by the replay itself", func(t *testing.T) {
		// A request timeout too short for the engine to answer the stream's
		// last sequence: the replay reads the stream to its end and refuses
		// then.
		dir := filepath.Join(t.TempDir(), "r")
		_, _, err := cliErr(t, "replay", url, auditor, "--timeout", "1ns", "--out", dir, "--until-seq", fmt.Sprint(last+1000))
		if exitCode(err) != exitUsage || !errors.Is(err, projections.ErrBeyondEnd) {
			t.Fatalf("exit %d (%v), want 2: beyond the end", exitCode(err), err)
		}
		if _, err := os.Stat(filepath.Join(dir, "readmodels.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused replay left read models behind: %v", err)
		}
	})
}

// TestOfflineQueriesFailAsTheEngineDoes: offline, a missing order is exit
// 3 with the engine's error body, bad input exit 4; a directory without
// read models, or a --min-seq the rebuilt read models never reach, is a
// usage error; the file of a running engine is in use (exit 5).
func TestOfflineQueriesFailAsTheEngineDoes(t *testing.T) {
	e, cfg := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	out, err := cli(t, "order", "submit", url, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sub api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rebuilt")
	if _, err := cli(t, "replay", url, "--nkey", e.SeedFile(auth.Auditor), "--out", dir, "--until-seq", fmt.Sprint(sub.Seq)); err != nil {
		t.Fatal(err)
	}

	notReadModels := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notReadModels, []byte(strings.Repeat("not a bbolt file\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}

	online, onlineErr := cli(t, "order", "get", url, "--order-id", "nope", "--json")
	offline, offlineErr := cli(t, "order", "get", "--offline", dir, "--order-id", "nope", "--json")
	if exitCode(offlineErr) != exitNotFound || exitCode(onlineErr) != exitNotFound || offline != online || offlineErr.Error() != onlineErr.Error() {
		t.Fatalf("unknown order: offline exit %d %q (%v), online exit %d %q (%v)", exitCode(offlineErr), offline, offlineErr, exitCode(onlineErr), online, onlineErr)
	}
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"the readmodels.db file itself", []string{"order", "get", "--order-id", sub.OrderID, "--offline", filepath.Join(dir, "readmodels.db")}, exitOK},
		{"bad input", []string{"order", "get", "--order-id", "a b", "--offline", dir}, exitRefused},
		{"a cursor it did not hand out", []string{"ledger", "account", "--account", "x", "--cursor", "zz", "--offline", dir}, exitRefused},
		{"a directory without read models", []string{"ledger", "trial-balance", "--offline", t.TempDir()}, exitUsage},
		{"a file that is no read models", []string{"ledger", "trial-balance", "--offline", notReadModels}, exitFailed},
		{"a directory that does not exist", []string{"wallet", "get", "--user-id", "u1", "--offline", filepath.Join(dir, "nope")}, exitUsage},
		{"a min-seq the replay did not reach", []string{"bill", "get", "--bill-id", "b1", "--min-seq", fmt.Sprint(sub.Seq + 1), "--offline", dir}, exitUsage},
		{"a min-seq it reached", []string{"order", "get", "--order-id", sub.OrderID, "--min-seq", fmt.Sprint(sub.Seq), "--offline", dir}, exitOK},
		{"a running engine's read models", []string{"order", "get", "--order-id", sub.OrderID, "--offline", cfg.DataDir}, exitUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d, want %d (%v)", got, tc.want, err)
			}
		})
	}
	// A file that is no read models is named as such, with what to do.
	if _, err := cli(t, "ledger", "trial-balance", "--offline", notReadModels); err == nil ||
		!strings.Contains(err.Error(), "is not whole read models") || !strings.Contains(err.Error(), "replay again") || strings.Contains(err.Error(), "the engine rebuilds") {
		t.Errorf("--offline at a file that is no read models: %v", err)
	}
}

// TestReplayProgressBar: the bar shows the share of the end reached, the
// sequence, the events and events/s; it redraws at most every 100ms and
// ends with a line at 100%; it draws nothing on what is not a terminal.
func TestReplayProgressBar(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	now := t0
	p := &progressBar{w: &buf, now: func() time.Time { return now }, start: t0, total: 1000}

	now = t0.Add(time.Second)
	p.update(projections.ReplayProgress{Seq: 500, Commits: 500, Events: 2500})
	want := "\r[###############...............]  50%  seq 500/1,000  2,500 events  2,500 events/s\x1b[K"
	if buf.String() != want {
		t.Fatalf("bar\n got %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	now = now.Add(50 * time.Millisecond)
	p.update(projections.ReplayProgress{Seq: 600, Commits: 600, Events: 3000})
	if buf.Len() != 0 {
		t.Fatalf("redrawn after 50ms: %q", buf.String())
	}
	now = t0.Add(2 * time.Second)
	p.update(projections.ReplayProgress{Seq: 800, Commits: 800, Events: 4000})
	if !strings.Contains(buf.String(), " 80%  seq 800/1,000  4,000 events  2,000 events/s") {
		t.Fatalf("second draw %q", buf.String())
	}
	buf.Reset()
	// A time replay ends before the stream's last sequence: 100% there.
	p.finish(true)
	if !strings.Contains(buf.String(), "100%  seq 800/800") || !strings.HasSuffix(buf.String(), "\n") {
		t.Fatalf("final line %q", buf.String())
	}
	buf.Reset()
	p.finish(false)
	if buf.String() != "\r\x1b[K" {
		t.Fatalf("a failed replay leaves %q", buf.String())
	}

	unknown := &progressBar{w: &buf, now: func() time.Time { return t0.Add(4 * time.Second) }, start: t0}
	buf.Reset()
	unknown.update(projections.ReplayProgress{Seq: 1234, Commits: 1234, Events: 12340})
	if buf.String() != "\rseq 1,234  12,340 events  3,085 events/s\x1b[K" {
		t.Fatalf("bar without an end: %q", buf.String())
	}

	var none *progressBar
	none.update(projections.ReplayProgress{Seq: 1}) // nothing, no panic
	none.finish(true)
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, w := range map[string]io.Writer{"a buffer": &buf, "a file": f} {
		if newProgressBar(w) != nil {
			t.Errorf("a progress bar on %s", name)
		}
	}
}

// A replay asked to stop at a sequence with no message (one removed from
// the store) says so, rather than only printing the sequence it reached.
func TestReplayTextNamesAMissingUntilSeq(t *testing.T) {
	r := replayResult{Out: "/x/readmodels.db", LastSeq: 10, UntilSeq: 11, ContentHash: "h", NotCompared: notComparedPointInTime}
	if s := r.text(); !strings.Contains(s, "the stream has no message at seq 11: the read models are as of seq 10") {
		t.Fatalf("replay text:\n%s", s)
	}
	r.LastSeq = 11
	if s := r.text(); strings.Contains(s, "no message") {
		t.Fatalf("replay text of a replay that reached its seq:\n%s", s)
	}
}

// last_recorded_at names the exact nanosecond with nine digits, also when
// the last ones are zeros: cut to six, it would read as a time written to
// the microsecond, which --until-time takes for the whole microsecond, so
// a later commit recorded in it would end the replay instead.
func TestLastRecordedAtKeepsNineDigits(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"whole microsecond", time.Date(2026, 12, 6, 20, 57, 59, 940993000, time.UTC), "2026-12-06T20:57:59.940993000Z"},
		{"trailing zeros", time.Date(2026, 12, 6, 20, 57, 59, 940993700, time.UTC), "2026-12-06T20:57:59.940993700Z"},
		{"whole second", time.Date(2026, 12, 6, 20, 57, 59, 0, time.UTC), "2026-12-06T20:57:59.000000000Z"},
		{"another zone", time.Date(2026, 12, 7, 5, 57, 59, 123456789, time.FixedZone("KST", 9*3600)), "2026-12-06T20:57:59.123456789Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := recordedAtText(tc.at)
			if got != tc.want || fractionDigits(got) != 9 {
				t.Fatalf("last_recorded_at of %s: %q, want %q", tc.at, got, tc.want)
			}
			if back, err := time.Parse(time.RFC3339Nano, got); err != nil || !back.Equal(tc.at) {
				t.Fatalf("%q parses as %s (%v), want %s", got, back, err, tc.at)
			}
		})
	}
}
