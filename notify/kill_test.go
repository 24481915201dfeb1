package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/bankbook/bankbook/internal/soak"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestKilledDispatcherProcessLosesAndRepeatsNothing: two engine processes
// dispatch 60 bill messages to a slow provider; one is killed with SIGKILL
// while it sends. The other takes over what the dead one held, asks the
// provider about the sends it left in doubt, and every store gets its
// message once.
func TestKilledDispatcherProcessLosesAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bankbook and runs it as a second process: about a minute")
	}
	const bills = 60
	dir := t.TempDir()
	bin := filepath.Join(dir, "bankbook")
	if err := soak.Build(t.Context(), bin, raceEnabled); err != nil {
		t.Fatal(err)
	}
	sim, err := chat.NewSim(chat.SimConfig{Rate: 5, Token: "sim", Latency: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = filepath.Join(dir, "a"), "127.0.0.1:0", "off", "fast"
	cfg.ChatSim, cfg.ChatSimInstance, cfg.NotifyRate = true, sim, 5
	cfg.PartConcurrency = engine.Concurrency{"notify": 2}
	a, err := engine.Start(context.Background(), cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })

	token := filepath.Join(dir, "chat-token")
	if err := os.WriteFile(token, []byte("sim\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "b.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	b := exec.Command(bin, "serve", "--nats-url", a.ClientURL(), "--nats-nkey", a.SeedFile(auth.Engine),
		"--data-dir", filepath.Join(dir, "b"), "--http-listen", "off", "--durability", "fast",
		"--chat-url", a.ChatSimURL(), "--chat-token-file", token, "--notify-rate", "5",
		"--part-concurrency", "notify=4", "--log-format", "json", "--log-level", "debug")
	b.Stdout, b.Stderr = logFile, logFile
	b.Env = append(os.Environ(), "BANKBOOK_NATS_URL=")
	b.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = b.Wait(); close(exited) }()
	t.Cleanup(func() { _ = b.Process.Kill(); <-exited })

	c, err := client.Connect(a.ClientURL(), testenv.NKey(t, a.SeedFile(auth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	testenv.CheckFor(t, time.Minute, func() error {
		if n := instances(c.Conn()); n < 2 {
			return fmt.Errorf("%d engine instances answer; waiting for the second process (log %s)", n, logPath)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lines := make([]api.BillLine, bills)
	for i := range lines {
		store := fmt.Sprintf("kill-st-%03d", i)
		lines[i] = api.BillLine{StoreID: store, Amount: 1000 + int64(i)}
		if _, _, err := client.Do(ctx, c, api.StoreLink, api.LinkStoreRequest{DistributorID: "d-kill", StoreID: store, StoreName: "가게"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := client.Do(ctx, c, api.BillIssueBulk, api.IssueBulkRequest{DistributorID: "d-kill", Bills: lines}, nil); err != nil {
		t.Fatal(err)
	}

	// Kill the second process while both are sending.
	testenv.CheckFor(t, time.Minute, func() error {
		if n := len(sim.Messages("")); n < bills/3 {
			return fmt.Errorf("%d messages accepted", n)
		}
		return nil
	})
	if err := syscall.Kill(b.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	log, _ := os.ReadFile(logPath)
	sentByB := strings.Count(string(log), `"notification sent"`)
	t.Logf("the second process sent %d notifications before it was killed, with %d accepted in all", sentByB, len(sim.Messages("")))
	if sentByB == 0 {
		t.Fatalf("the killed process sent nothing: it was not dispatching (log %s)", logPath)
	}

	testenv.CheckFor(t, 2*time.Minute, func() error {
		var sent api.NotifyListReply
		rep, _, err := client.Do(ctx, c, api.NotifyList, api.NotifyListRequest{Status: api.NotificationSent, PageRequest: api.PageRequest{Limit: 500}}, nil)
		if err != nil {
			return err
		}
		sent = rep
		if len(sent.Notifications) != bills {
			return fmt.Errorf("%d of %d notifications recorded sent", len(sent.Notifications), bills)
		}
		return nil
	})
	msgs := sim.Messages("")
	for what, n := range chat.Repeats(msgs) {
		t.Errorf("%s: %d messages", what, n)
	}
	if len(msgs) != bills {
		t.Errorf("the provider accepted %d messages; want %d, one per store", len(msgs), bills)
	}
	if most := chat.MostInWindow(msgs, time.Second); most > 5 {
		t.Errorf("%d messages accepted within one rolling second; the provider allows 5", most)
	}
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
