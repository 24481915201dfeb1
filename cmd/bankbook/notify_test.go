package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// notifyList runs `bankbook notify list --json` with args and decodes it.
func notifyList(t *testing.T, url string, args ...string) (api.NotifyListReply, error) {
	t.Helper()
	out, err := cli(t, append([]string{"notify", "list", url, "--json"}, args...)...)
	if err != nil {
		return api.NotifyListReply{}, err
	}
	var rep api.NotifyListReply
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return api.NotifyListReply{}, fmt.Errorf("notify list --json: %q: %w", out, err)
	}
	return rep, nil
}

// waitListed waits until `notify list --json` with args lists exactly n
// notifications and returns them.
func waitListed(t *testing.T, url string, n int, args ...string) []api.NotificationView {
	t.Helper()
	var got []api.NotificationView
	testenv.CheckFor(t, 30*time.Second, func() error {
		rep, err := notifyList(t, url, args...)
		if err != nil {
			return err
		}
		if got = rep.Notifications; len(got) != n {
			return fmt.Errorf("notify list %v: %d notifications, want %d", args, len(got), n)
		}
		return nil
	})
	return got
}

// TestNotifyCommandsAgainstARunningEngine: with the fake chat provider
// running in the engine (--chat-sim) and refusing one store's channel, a
// bill to each of two stores gives one sent and one dead notification.
// `notify list` shows them (by status, by recipient, as text and JSON),
// `notify redrive` answers 404 and 409 with exit statuses 3 and 4 and brings
// the dead one back, `notify limiter` shows the shared limit, and
// `chat-sim messages` what the provider accepted.
func TestNotifyCommandsAgainstARunningEngine(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.ChatSim, c.ChatSimListen = true, "127.0.0.1:0" })
	if e.ChatSim == nil {
		t.Fatal("the engine runs no fake chat provider")
	}
	url := "--nats-url=" + e.ClientURL()

	out, err := cli(t, "notify", "list", url)
	if err != nil || out != "no notifications\n" {
		t.Fatalf("notify list before any: %q %v", out, err)
	}

	e.ChatSim.RefuseChannel("store:s-dead")
	for _, store := range []string{"s-ok", "s-dead"} {
		if _, err := cli(t, "store", "link", url, "--distributor-id", "d-n", "--store-id", store, "--store-name", "가게 "+store); err != nil {
			t.Fatalf("link %s: %v", store, err)
		}
		if _, err := cli(t, "bill", "issue", url, "--distributor-id", "d-n", "--store-id", store, "--amount", "39000"); err != nil {
			t.Fatalf("issue to %s: %v", store, err)
		}
	}
	dead := waitListed(t, url, 1, "--status", "dead")[0]
	sent := waitListed(t, url, 1, "--status", "sent")[0]
	if dead.Recipient != "store:s-dead" || dead.Kind != "bill_issued" || dead.LastError == "" || dead.Attempts != 1 {
		t.Errorf("dead: %+v; want the refused store's bill_issued with its error", dead)
	}
	if sent.Recipient != "store:s-ok" || sent.SentAt == "" {
		t.Errorf("sent: %+v; want the other store's, with sent_at", sent)
	}

	out, err = cli(t, "notify", "list", url)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{dead.NotificationID, sent.NotificationID, " dead ", " sent ", "store:s-dead", "bill_issued", "last error: " + dead.LastError, "sent " + sent.SentAt} {
		if !strings.Contains(out, want) {
			t.Errorf("notify list: %q lacks %q", out, want)
		}
	}
	out, err = cli(t, "notify", "list", url, "--recipient", "store:s-ok")
	if err != nil || !strings.Contains(out, sent.NotificationID) || strings.Contains(out, dead.NotificationID) {
		t.Errorf("notify list --recipient store:s-ok: %q %v", out, err)
	}
	out, err = cli(t, "notify", "list", url, "--limit", "1")
	if err != nil || strings.Count(out, "ntf_") != 1 || !strings.Contains(out, "more: --cursor ") {
		t.Errorf("notify list --limit 1: %q %v", out, err)
	}
	cursor := strings.TrimSpace(out[strings.Index(out, "more: --cursor ")+len("more: --cursor "):])
	if next, err := notifyList(t, url, "--limit", "1", "--cursor", cursor); err != nil || len(next.Notifications) != 1 || next.NextCursor != "" {
		t.Errorf("the second page: %+v %v", next, err)
	}

	cases := []struct {
		name string
		args []string
		want int
	}{
		{"redrive of an unknown notification", []string{"notify", "redrive", url, "--notification-id", "ntf_000000000000000000000000"}, exitNotFound},
		{"redrive of a sent notification", []string{"notify", "redrive", url, "--notification-id", sent.NotificationID}, exitRefused},
		{"redrive without an id", []string{"notify", "redrive", url}, exitUsage},
		{"redrive of a wildcard", []string{"notify", "redrive", url, "--notification-id", "*"}, exitRefused},
		{"list of an unknown status", []string{"notify", "list", url, "--status", "gone"}, exitRefused},
		{"list of a recipient of no kind", []string{"notify", "list", url, "--recipient", "shop:1"}, exitRefused},
		{"list with a cursor it did not hand out", []string{"notify", "list", url, "--cursor", "00"}, exitRefused},
		{"chat-sim messages of a bad channel", []string{"chat-sim", "messages", url, "--channel", "store:a b"}, exitRefused},
		{"unknown notify command", []string{"notify", "send", url}, exitUsage},
		{"unknown chat-sim command", []string{"chat-sim", "send", url}, exitUsage},
		{"notify without a command", []string{"notify"}, exitUsage},
		{"a stray argument", []string{"notify", "limiter", url, "now"}, exitUsage},
		{"group help", []string{"notify", "-h"}, exitOK},
		{"chat-sim help", []string{"chat-sim", "-h"}, exitOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d, want %d (%v)", got, tc.want, err)
			}
		})
	}
	out, err = cli(t, "notify", "redrive", url, "--notification-id", sent.NotificationID)
	if err == nil || !strings.Contains(err.Error(), "409 notification_not_dead") {
		t.Errorf("redrive of a sent notification: %q %v; want 409 notification_not_dead", out, err)
	}
	if _, err := cli(t, "notify", "redrive", url, "--notification-id", "ntf_000000000000000000000000"); err == nil || !strings.Contains(err.Error(), "404 notification_not_found") {
		t.Errorf("redrive of an unknown notification: %v; want 404 notification_not_found", err)
	}

	// The store's channel works again: the redriven notification is sent.
	e.ChatSim.AllowChannel("store:s-dead")
	out, err = cli(t, "notify", "redrive", url, "--notification-id", dead.NotificationID, "--reason", "channel fixed", "--idempotency-key", "rd-1")
	if err != nil || !strings.HasPrefix(out, "notification "+dead.NotificationID+"  pending  (seq ") {
		t.Fatalf("redrive: %q %v", out, err)
	}
	again, err := cli(t, "notify", "redrive", url, "--notification-id", dead.NotificationID, "--reason", "channel fixed", "--idempotency-key", "rd-1")
	if err != nil || !strings.HasPrefix(again, strings.TrimSuffix(out, "\n")) || !strings.Contains(again, "replayed") {
		t.Errorf("the same redrive again: %q %v", again, err)
	}
	waitListed(t, url, 2, "--status", "sent")
	waitListed(t, url, 0, "--status", "dead")

	out, err = cli(t, "notify", "limiter", url)
	if err != nil || !strings.Contains(out, "scope chat: 5 per second, burst 1; ") || !strings.Contains(out, "notifications pending") {
		t.Errorf("notify limiter: %q %v", out, err)
	}
	out, err = cli(t, "notify", "limiter", url, "--json")
	var lim api.NotifyLimiterReply
	if err != nil || json.Unmarshal([]byte(out), &lim) != nil || lim.Scope != "chat" || lim.RatePerS != 5 || lim.Burst != 1 || lim.Pending != 0 {
		t.Errorf("notify limiter --json: %q %v; want chat, 5/s, burst 1, none pending", out, err)
	}

	chatSimPage = 1 // every message, one request per message
	out, err = cli(t, "chat-sim", "messages", url)
	chatSimPage = api.MaxSimChatMessages
	if err != nil || !strings.Contains(out, "store:s-ok") || !strings.Contains(out, "store:s-dead") || !strings.Contains(out, "bill_issued") ||
		!strings.Contains(out, "2 messages accepted, 0 requests refused with 429 (on every channel)") {
		t.Errorf("chat-sim messages: %q %v", out, err)
	}
	out, err = cli(t, "chat-sim", "messages", url, "--from", "2", "--limit", "1")
	if err != nil || strings.Count(out, "bill_issued") != 1 || !strings.Contains(out, "2 messages accepted (1 shown)") {
		t.Errorf("chat-sim messages --from 2 --limit 1: %q %v", out, err)
	}
	out, err = cli(t, "chat-sim", "messages", url, "--channel", "store:s-dead", "--json")
	var msgs api.SimChatMessagesReply
	if err != nil || json.Unmarshal([]byte(out), &msgs) != nil || len(msgs.Messages) != 1 || msgs.Messages[0].Channel != "store:s-dead" ||
		!strings.Contains(msgs.Messages[0].Data, dead.NotificationID) {
		t.Errorf("chat-sim messages --channel store:s-dead --json: %q %v", out, err)
	}
	// A channel_url of --chat-safe-channels is a channel it takes too.
	out, err = cli(t, "chat-sim", "messages", url, "--channel", "bb_store_3As_2Ddead")
	if err != nil || !strings.Contains(out, "0 messages accepted") {
		t.Errorf("chat-sim messages --channel bb_store_3As_2Ddead: %q %v", out, err)
	}
}

// TestChatSimMessagesNeedsTheChatSim: against an engine without
// --chat-sim, `chat-sim messages` finds no one to answer (exit status 5),
// while the notify commands work.
func TestChatSimMessagesNeedsTheChatSim(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.BankSim = true })
	url := "--nats-url=" + e.ClientURL()
	if _, err := cli(t, "chat-sim", "messages", url); exitCode(err) != exitUnavailable {
		t.Errorf("chat-sim messages without the fake chat provider: exit %d (%v), want %d", exitCode(err), err, exitUnavailable)
	}
	if out, err := cli(t, "notify", "limiter", url); err != nil || !strings.Contains(out, "per second") {
		t.Errorf("notify limiter: %q %v", out, err)
	}
}

// TestChatSimTextNamesTheChannel: with --channel the count of accepted
// messages is the channel's, and the summary says so, beside the refusals,
// which are counted on every channel.
func TestChatSimTextNamesTheChannel(t *testing.T) {
	r := api.SimChatMessagesReply{Messages: []api.SimChatMessage{{Channel: "store:s-1"}}, Total: 1}
	if got, want := chatSimText("store:s-1")(r), "1 message accepted on store:s-1, 0 requests refused with 429 (on every channel)\n"; !strings.HasSuffix(got, want) {
		t.Errorf("with a channel: %q; want it to end with %q", got, want)
	}
	if got, want := chatSimText("")(r), "1 message accepted, 0 requests refused with 429 (on every channel)\n"; !strings.HasSuffix(got, want) {
		t.Errorf("without a channel: %q; want it to end with %q", got, want)
	}
}

// TestChatSimMessagesJSONErrorIsTheEngines: `chat-sim messages --json`
// refused by the engine prints the engine's error body as it sent it,
// whether it reads every message or one page: the same document on
// stdout, without the exit_status a failure on the CLI's side carries.
func TestChatSimMessagesJSONErrorIsTheEngines(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.ChatSim, c.ChatSimListen = true, "127.0.0.1:0" })
	url := "--nats-url=" + e.ClientURL()
	page, err := cli(t, "chat-sim", "messages", url, "--channel", "store:a b", "--limit", "5", "--json")
	if exitCode(err) != exitRefused || !strings.Contains(page, `"invalid_input"`) {
		t.Fatalf("one page: exit %d (%v), stdout %q", exitCode(err), err, page)
	}
	all, err := cli(t, "chat-sim", "messages", url, "--channel", "store:a b", "--json")
	if exitCode(err) != exitRefused {
		t.Fatalf("every message: exit %d (%v), want %d", exitCode(err), err, exitRefused)
	}
	if all != page || strings.Contains(all, "exit_status") {
		t.Fatalf("every message: stdout %q; want the engine's body as sent, %q", all, page)
	}
}
