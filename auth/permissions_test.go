package auth_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/testenv"
)

// engineDesk stands where the engine would: in the ENGINE account it answers
// every service subject and remembers what reached it and who sent it.
type engineDesk struct {
	mu   sync.Mutex
	seen map[string][]nats.Header
}

func (d *engineDesk) reached(subject string) []nats.Header {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[subject]
}

func startDesk(t *testing.T, nc *nats.Conn) *engineDesk {
	d := &engineDesk{seen: map[string][]nats.Header{}}
	for _, subj := range []string{"bankbook.>", "$SRV.>"} {
		if _, err := nc.QueueSubscribe(subj, "bankbook", func(m *nats.Msg) {
			d.mu.Lock()
			d.seen[m.Subject] = append(d.seen[m.Subject], m.Header)
			d.mu.Unlock()
			if m.Reply != "" && !strings.HasPrefix(m.Subject, "bankbook.evt.") {
				_ = m.Respond([]byte(`{"ok":true}`))
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return d
}

// The permissions table of API.md "Access and identity", request by request,
// against a real server running the rendered configuration.
func TestRolePermissions(t *testing.T) {
	srv := testenv.Start(t, "")
	enc, js := srv.Connect(t)
	desk := startDesk(t, enc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: auth.DefaultStream, Subjects: []string{"bankbook.evt.>"}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "bankbook.evt.order.o-1", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bankbook_names"}); err != nil {
		t.Fatal(err)
	}

	const (
		app = 1 << iota
		feed
		op
		aud
		all = app | feed | op | aud
	)
	roles := map[auth.Role]int{auth.App: app, auth.Feed: feed, auth.Operator: op, auth.Auditor: aud}
	requests := []struct {
		subject string
		allowed int
	}{
		{"bankbook.cmd.order.submit", app | op},
		{"bankbook.cmd.order.cancel", app | op},
		{"bankbook.cmd.wallet.withdraw", app | op},
		{"bankbook.cmd.store.link", app | op},
		{"bankbook.cmd.store.rename", app | op},
		{"bankbook.cmd.bill.issue", app | op},
		{"bankbook.cmd.deposit.record", feed | op},
		{"bankbook.cmd.deposit.scan_complete", feed | op},
		{"bankbook.cmd.deposit.resolve", op},
		{"bankbook.cmd.notify.send", op},
		{"bankbook.cmd.notify.redrive", op},
		{"bankbook.q.notify.list", app | op | aud},
		{"bankbook.q.notify.limiter", app | op | aud},
		{"bankbook.cmd.reconcile.run", op},
		{"bankbook.cmd.reconcile.bank", op},
		{"bankbook.cmd.reconcile.payouts", op},
		{"bankbook.q.reconcile.get", op | aud},
		{"bankbook.cmd.deadletter.redrive", op},
		{"bankbook.q.order.get", app | op | aud},
		{"bankbook.q.wallet.get", app | op | aud},
		{"bankbook.q.audit.verify", op | aud},
		{"$SRV.PING.bankbook", all},
		{"$SRV.INFO.bankbook", all},
		{"bankbook.sim.bank.transfer", app | op},
		{"bankbook.sim.chat.messages", app | op},
		{"bankbook.evt.order.o-1", 0},
		{"$JS.API.STREAM.DELETE." + auth.DefaultStream, 0},
		{"$JS.API.STREAM.PURGE." + auth.DefaultStream, 0},
		{"$JS.API.CONSUMER.CREATE." + auth.DefaultStream, 0},
		{"$JS.API.STREAM.INFO." + auth.DefaultStream, 0},
		{"$JS.API.DIRECT.GET." + auth.DefaultStream, aud},
		{"$KV.bankbook_names.x", 0},
		{"$JS.API.STREAM.CREATE.MINE", 0},
	}
	before := lastSeq(t, stream)
	for role, bit := range roles {
		c := connectRole(t, srv, role)
		for _, r := range requests {
			body := []byte(`{}`)
			if strings.HasPrefix(r.subject, "$JS.API.DIRECT.GET.") {
				body = []byte(`{"seq":1}`)
			}
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			rep, err := c.Request(rctx, r.subject, body, nil)
			rcancel()
			var ae *api.Error
			refused := errors.As(err, &ae) && ae.Status == 403 && ae.Code == api.CodeForbidden
			want := r.allowed&bit != 0
			switch {
			case want && err != nil:
				t.Errorf("%s → %s: want allowed, got %v", role, r.subject, err)
			case !want && !refused:
				t.Errorf("%s → %s: want refused by the server, got %v", role, r.subject, err)
			case want && strings.HasPrefix(r.subject, "$JS.API.DIRECT.GET.") && rep.Header.Get(jetstream.SequenceHeader) != "1":
				t.Errorf("%s → %s: want the stream's first message, got %q %v", role, r.subject, rep.Data, rep.Header)
			}
		}
	}
	for _, r := range requests {
		if r.allowed == 0 && len(desk.reached(r.subject)) > 1 { // the engine's own publish is the one
			t.Errorf("%s reached the engine although no role may send it", r.subject)
		}
	}
	if after := lastSeq(t, stream); after != before {
		t.Errorf("refused writes changed the event stream: last seq %d → %d", before, after)
	}
	if _, err := stream.Info(ctx); err != nil {
		t.Errorf("the event stream is gone: %v", err)
	}
}

// No role may listen on the engine's subjects or answer for the service.
func TestRolesCannotSubscribeToEngineSubjects(t *testing.T) {
	srv := testenv.Start(t, "")
	for _, role := range []auth.Role{auth.App, auth.Feed, auth.Operator, auth.Auditor} {
		for _, sub := range []struct{ subject, queue string }{
			{"bankbook.>", ""},
			{"bankbook.cmd.order.submit", "bankbook"},
			{"bankbook.evt.>", ""},
			{"$JS.API.>", ""},
			{">", ""},
		} {
			errs := make(chan error, 4)
			nc := srv.ConnectRole(t, role, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
			var err error
			if sub.queue != "" {
				_, err = nc.QueueSubscribe(sub.subject, sub.queue, func(*nats.Msg) {})
			} else {
				_, err = nc.Subscribe(sub.subject, func(*nats.Msg) {})
			}
			if err == nil {
				err = nc.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, nats.ErrPermissionViolation) {
					t.Errorf("%s subscribe %s: want a permissions violation, got %v", role, sub.subject, err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s subscribe %s: the server accepted the subscription", role, sub.subject)
			}
			nc.Close()
		}
	}
}

// A queue subscriber outside the engine account never answers a command:
// a buyer is never told to pay a stranger's account.
func TestNobodyElseAnswersCommands(t *testing.T) {
	srv := testenv.Start(t, "")
	enc, _ := srv.Connect(t)
	startDesk(t, enc)
	thief := srv.ConnectRole(t, auth.App, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	var stolen sync.Map
	_, _ = thief.QueueSubscribe("bankbook.cmd.order.submit", "bankbook", func(m *nats.Msg) {
		stolen.Store(m.Subject, true)
		_ = m.Respond([]byte(`{"collect_account":{"number":"stranger"}}`))
	})
	c := connectRole(t, srv, auth.App)
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rep, err := c.Request(ctx, "bankbook.cmd.order.submit", []byte(`{}`), nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(rep.Data), "stranger") {
			t.Fatal("a client in another account answered a command")
		}
	}
	if _, ok := stolen.Load("bankbook.cmd.order.submit"); ok {
		t.Error("the thief's subscription received a command")
	}
}

// The actor is what the server asserts: a client cannot claim another
// identity, not with an Actor header, not with a forged Nats-Request-Info.
func TestActorIsAssertedByTheServer(t *testing.T) {
	srv := testenv.Start(t, "")
	enc, _ := srv.Connect(t)
	desk := startDesk(t, enc)
	for _, role := range []auth.Role{auth.App, auth.Feed, auth.Operator} {
		c := connectRole(t, srv, role)
		subject := map[auth.Role]string{auth.App: "bankbook.cmd.order.submit", auth.Feed: "bankbook.cmd.deposit.record", auth.Operator: "bankbook.cmd.deposit.resolve"}[role]
		forged := nats.Header{
			"Actor":                []string{"operator"},
			auth.RequestInfoHeader: []string{`{"acc":"ENGINE","user":"someone"}`},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Request(ctx, subject, []byte(`{}`), forged)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		arrived := auth.FromSubject(string(role), subject)
		if len(desk.reached(arrived)) == 0 {
			t.Fatalf("%s did not reach the engine as %s", subject, arrived)
		}
		if got, err := auth.Actor(arrived, ""); err != nil || got != string(role) {
			t.Errorf("%s: actor %q (%v), want %q", role, got, err, role)
		}
		if len(desk.reached(subject)) != 0 {
			t.Errorf("%s reached the engine on the client's subject, without its sender", subject)
		}
	}
	if _, err := auth.Actor("bankbook.cmd.order.submit", ""); !errors.Is(err, auth.ErrNotFromAnIdentity) {
		t.Errorf("a command on the client-facing subject (the engine's own account): %v", err)
	}
}

// A client that writes the protocol by hand can hide a Nats-Request-Info
// line behind a bare LF (the server does not see it, so does not replace
// it), and hide the server's own behind a blank line inside its header
// block (nats.go stops reading there, the server appends behind it). None
// of it matters: the actor is in the subject the server mapped the request
// to, which no header changes.
func TestSmuggledRequestInfoChangesNoActor(t *testing.T) {
	srv := testenv.Start(t, "")
	enc, _ := srv.Connect(t)
	desk := startDesk(t, enc)
	arrived := auth.FromSubject(string(auth.App), "bankbook.cmd.order.submit")
	for _, hdr := range []string{
		"X-A: y\nNats-Request-Info: {\"acc\":\"operator\"}\r\n",
		"X-A: y\nnats-request-info: {\"acc\":\"ENGINE\"}\r\n",
		"nats-request-info: {\"acc\":\"operator\"}\r\n\r\nX-B: z\r\n",
		"Nats-Request-Info: {\"acc\":\"operator\"}\r\n\r\nX-B: z\r\n",
		"X-A: y\nNats-Request-Info: {\"acc\":\"operator\"}\r\n\r\nX-B: z\r\n",
		"X-A: y\nNats-Request-Info: {\"acc\":\"ENGINE\"}\r\n\r\nX-B: z\r\n",
		"Idempotency-Key: k-1\r\n\r\nX-B: z\r\n",
	} {
		before := len(desk.reached(arrived))
		rawRequest(t, srv.ClientURL(), auth.SeedFile(srv.AuthDir, auth.App), "bankbook.cmd.order.submit", strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\"`, `"`).Replace(hdr), "{}")
		testenv.CheckFor(t, 5*time.Second, func() error {
			if len(desk.reached(arrived)) == before {
				return fmt.Errorf("header %q: the request did not reach the engine as %s", hdr, arrived)
			}
			return nil
		})
		if actor, err := auth.Actor(arrived, ""); err != nil || actor != string(auth.App) {
			t.Errorf("header %q: actor %q, %v; want app", hdr, actor, err)
		}
	}
	for _, subject := range []string{"bankbook.cmd.order.submit", auth.FromSubject("operator", "bankbook.cmd.order.submit"), auth.FromSubject("ENGINE", "bankbook.cmd.order.submit")} {
		if n := len(desk.reached(subject)); n != 0 {
			t.Errorf("%d requests reached the engine as %s", n, subject)
		}
	}
}

func connectRole(t *testing.T, srv *testenv.Server, role auth.Role) *client.Client {
	t.Helper()
	c, err := client.Connect(srv.ClientURL(), testenv.NKey(t, auth.SeedFile(srv.AuthDir, role)))
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(c.Close)
	return c
}

func lastSeq(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// rawRequest authenticates with seedFile and publishes one message with the
// header block exactly as given, as a hand-written client could.
func rawRequest(t *testing.T, url, seedFile, subject, headers, body string) {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	kp, err := auth.ReadSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	sig, _ := kp.Sign([]byte(info.Nonce))
	connect, _ := json.Marshal(map[string]any{"nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig), "verbose": false, "headers": true, "protocol": 1})
	hb := "NATS/1.0\r\n" + headers + "\r\n"
	fmt.Fprintf(c, "CONNECT %s\r\nSUB _INBOX.raw 1\r\nHPUB %s _INBOX.raw %d %d\r\n%s%s\r\nPING\r\n", connect, subject, len(hb), len(hb)+len(body), hb, body)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no PONG: %v", err)
		}
		if strings.HasPrefix(l, "-ERR") {
			t.Fatalf("server: %s", l)
		}
		if strings.HasPrefix(l, "PONG") {
			return
		}
	}
}
