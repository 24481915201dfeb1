package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/engineproc"
	"github.com/bankbook/bankbook/internal/testenv"
)

// twoProcesses is an engine in this process (with the fake chat provider
// sim) and a second engine process joined to its NATS server, sending to
// the same provider.
type twoProcesses struct {
	a      *engine.Engine
	c      *client.Client
	sim    *chat.Sim
	b      *exec.Cmd
	bLog   string
	exited chan struct{}
}

// built is the bankbook command the tests that run a second engine
// process share.
var built = engineproc.Built{Race: raceEnabled}

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}

// bankbookBinary builds the bankbook command once for the package's tests.
func bankbookBinary(t testing.TB) string {
	t.Helper()
	bin, err := built.Path(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func startTwo(t testing.TB, sim *chat.Sim, rate int) *twoProcesses {
	t.Helper()
	bin := bankbookBinary(t)
	dir := t.TempDir()
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = filepath.Join(dir, "a"), "127.0.0.1:0", "off", "fast"
	cfg.ChatSim, cfg.ChatSimInstance, cfg.NotifyRate = true, sim, float64(rate)
	a, err := engine.Start(context.Background(), cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })

	token := filepath.Join(dir, "chat-token")
	if err := os.WriteFile(token, []byte("sim\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &twoProcesses{a: a, sim: sim, bLog: filepath.Join(dir, "b.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.bLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logFile.Close() })
	p.b = exec.Command(bin, "serve", "--nats-url", a.ClientURL(), "--nats-nkey", a.SeedFile(auth.Engine),
		"--data-dir", filepath.Join(dir, "b"), "--http-listen", "off", "--durability", "fast",
		"--chat-url", a.ChatSimURL(), "--chat-token-file", token, "--notify-rate", strconv.Itoa(rate),
		"--log-format", "json", "--log-level", "debug")
	p.b.Stdout, p.b.Stderr = logFile, logFile
	p.b.Env = append(os.Environ(), "BANKBOOK_NATS_URL=")
	p.b.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.b.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.b.Wait(); close(p.exited) }()
	t.Cleanup(func() { _ = p.b.Process.Kill(); <-p.exited })

	if p.c, err = client.Connect(a.ClientURL(), testenv.NKey(t, a.SeedFile(auth.Operator))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.c.Close)
	testenv.CheckFor(t, time.Minute, func() error {
		if n := instances(p.c.Conn()); n < 2 {
			return fmt.Errorf("%d engine instances answer; waiting for the second process (log %s)", n, p.bLog)
		}
		return nil
	})
	return p
}

// issue links n stores of distributor d and issues each a bill in one
// bulk request.
func (p *twoProcesses) issue(t testing.TB, d string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lines := make([]api.BillLine, n)
	for i := range lines {
		store := fmt.Sprintf("%s-st-%03d", d, i)
		lines[i] = api.BillLine{StoreID: store, Amount: 1000 + int64(i)}
		if _, _, err := client.Do(ctx, p.c, api.StoreLink, api.LinkStoreRequest{DistributorID: d, StoreID: store, StoreName: "가게"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := client.Do(ctx, p.c, api.BillIssueBulk, api.IssueBulkRequest{DistributorID: d, Bills: lines}, nil); err != nil {
		t.Fatal(err)
	}
}

// sentByB counts the notifications the second process logged as sent.
func (p *twoProcesses) sentByB() int {
	log, _ := os.ReadFile(p.bLog)
	return strings.Count(string(log), `"notification sent"`)
}

// allSent waits until the read models record n notifications sent, then
// checks the provider got exactly one message each, never more than rate
// in a rolling second, and returns them.
func (p *twoProcesses) allSent(t testing.TB, n, rate int, timeout time.Duration) []chat.SimMessage {
	t.Helper()
	testenv.CheckFor(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rep, _, err := client.Do(ctx, p.c, api.NotifyList, api.NotifyListRequest{Status: api.NotificationSent, PageRequest: api.PageRequest{Limit: 500}}, nil)
		if err != nil {
			return err
		}
		if len(rep.Notifications) != n {
			return fmt.Errorf("%d of %d notifications recorded sent; %d accepted by the provider", len(rep.Notifications), n, len(p.sim.Messages("")))
		}
		return nil
	})
	msgs := p.sim.Messages("")
	for what, k := range chat.Repeats(msgs) {
		t.Errorf("%s: %d messages", what, k)
	}
	if len(msgs) != n {
		t.Errorf("the provider accepted %d messages; want %d, one per store", len(msgs), n)
	}
	if most := chat.MostInWindow(msgs, time.Second); most > rate {
		t.Errorf("%d messages accepted within one rolling second; the provider allows %d", most, rate)
	}
	return msgs
}

func newSim(t testing.TB, rate int, latency time.Duration) *chat.Sim {
	t.Helper()
	sim, err := chat.NewSim(chat.SimConfig{Rate: rate, Token: "sim", Latency: latency})
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// bulkRun issues bills bills at once to a provider that accepts rate
// messages in any rolling second, dispatched by two engine processes that
// share one limiter, and checks that every store gets its message once,
// never more than rate in a rolling second, with no 429. It returns the
// time from the first message to the last over bills / rate.
func bulkRun(t testing.TB, bills, rate int) float64 {
	p := startTwo(t, newSim(t, rate, 0), rate)
	p.issue(t, "d-bulk", bills)
	msgs := p.allSent(t, bills, rate, 3*time.Minute)
	if n := p.sim.Refused(); n != 0 {
		t.Errorf("the provider refused %d requests with 429; want 0", n)
	}
	first, last := msgs[0].ReceivedAt, msgs[0].ReceivedAt
	for _, m := range msgs {
		if m.ReceivedAt.Before(first) {
			first = m.ReceivedAt
		}
		if m.ReceivedAt.After(last) {
			last = m.ReceivedAt
		}
	}
	if p.sentByB() == 0 || p.a.Loops["notify"].Stats().Processed == 0 {
		t.Errorf("one process dispatched nothing (second process: %d sent): the dispatchers did not share the work", p.sentByB())
	}
	ideal := time.Duration(bills) * time.Second / time.Duration(rate)
	ratio := last.Sub(first).Seconds() / ideal.Seconds()
	t.Logf("%d messages in %s from the first to the last: %.3f of %d/%d s; the second process sent %d",
		bills, last.Sub(first).Round(time.Millisecond), ratio, bills, rate, p.sentByB())
	return ratio
}

// TestBulkIssueOverTwoProcessesKeepsTheRate is the source company's
// failure, scaled up: 200 bills issued at once, dispatched by two engine
// processes that share one limiter, to a provider that accepts 5 messages
// in any rolling second. Every store gets its message once, never more than
// 5 in a rolling second, and the provider never answers 429.
//
// How close the run comes to 200 / 5 seconds is a performance figure,
// measured by BenchmarkBulkIssueOverTwoProcesses (docs/performance.md:
// 1.06–1.09 of it on the machine described there), not asserted here: on
// a shared, loaded machine a dispatcher that wakes late gives its slot up,
// and the run takes longer for reasons that are not the limiter's.
func TestBulkIssueOverTwoProcessesKeepsTheRate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bankbook and runs it as a second process: about a minute")
	}
	bulkRun(t, 200, 5)
}

// BenchmarkBulkIssueOverTwoProcesses measures the same run: the time from
// the first message to the last over 200 / 5 s (x_ideal; the engine paces
// at 5 / 1.07 per second, so 1.065 at best).
func BenchmarkBulkIssueOverTwoProcesses(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(bulkRun(b, 200, 5), "x_ideal")
	}
}

// TestKilledDispatcherProcessLosesAndRepeatsNothing: two engine processes
// dispatch 60 bill messages to a slow provider; one is killed with SIGKILL
// while it sends. The other takes over what the dead one held, asks the
// provider about the sends it left in doubt, and every store gets its
// message once.
func TestKilledDispatcherProcessLosesAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bankbook and runs it as a second process: about a minute")
	}
	const bills, rate = 60, 5
	p := startTwo(t, newSim(t, rate, 300*time.Millisecond), rate)
	p.issue(t, "d-kill", bills)
	testenv.CheckFor(t, time.Minute, func() error {
		if n := len(p.sim.Messages("")); n < bills/3 {
			return fmt.Errorf("%d messages accepted", n)
		}
		return nil
	})
	if err := syscall.Kill(p.b.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	sent := p.sentByB()
	t.Logf("the second process sent %d notifications before it was killed, with %d accepted in all", sent, len(p.sim.Messages("")))
	if sent == 0 {
		t.Fatalf("the killed process sent nothing: it was not dispatching (log %s)", p.bLog)
	}
	p.allSent(t, bills, rate, 2*time.Minute)
}

// instances counts the bankbook service instances that answer a ping.
func instances(nc *nats.Conn) int {
	subject, err := micro.ControlSubject(micro.PingVerb, api.ServiceName, "")
	if err != nil {
		return 0
	}
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return 0
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return 0
	}
	ids := map[string]bool{}
	for {
		msg, err := sub.NextMsg(500 * time.Millisecond)
		if err != nil {
			return len(ids)
		}
		var p micro.Ping
		if json.Unmarshal(msg.Data, &p) == nil {
			ids[p.ID] = true
		}
	}
}
