package engine_test

// A three-node nats-server cluster under two engines with --replicas 3: the
// event stream's leader is shut down while clients submit orders, and raw
// JetStream publishes to an R3 stream led by the same node are the baseline.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

const (
	// eventStream is the engine's event stream (eventstore's default name).
	eventStream = "BANKBOOK_EVENTS"
	// baselineStream is the R3 stream the raw JetStream baseline writes.
	baselineStream  = "BASELINE"
	baselineSubject = "baseline"
	// clusterClients submit orders concurrently; baselinePublishers publish
	// to the baseline stream.
	clusterClients     = 6
	baselinePublishers = 4
	// attemptTimeout is one order request's budget: more than the engine's
	// own command timeout (10s), so the engine answers before the client
	// gives up, and what it answers is seen.
	attemptTimeout = 15 * time.Second
	// baselineAttemptTimeout is one raw publish's budget: short, so that a
	// publish lost with the leader is repeated soon and the baseline
	// measures the cluster rather than the publisher's patience.
	baselineAttemptTimeout = 500 * time.Millisecond
	// settleTimeout bounds every wait of the test: generous, so that a slow
	// machine does not fail it; the figures are logged, not asserted.
	settleTimeout = 30 * time.Second
	// retryPause is how long a client waits before it repeats a request.
	retryPause = 25 * time.Millisecond
	// acksAfterRecovery is how many acknowledged writes each side needs
	// after the election before the load stops.
	acksAfterRecovery = 20
)

// clusterAccess is how the test reaches the cluster: the configuration
// fragment every node loads, the account that holds the engine's streams,
// and the options of the engines' connections, of the API clients and of
// the test's own JetStream connection (which creates the baseline stream
// and reads the event stream to verify it).
type clusterAccess struct {
	extra   string
	account string
	engine  func(*engine.Config)
	client  []nats.Option
	admin   []nats.Option
}

// authenticated is the cluster with bankbook's identities (auth.Ensure)
// and the accounts block auth.Render makes of them: the engines and the
// test's JetStream connection use the engine identity, the API clients the
// app identity.
func authenticated(t *testing.T) clusterAccess {
	t.Helper()
	dir := t.TempDir()
	ids, err := auth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := auth.Render(auth.Tenant{Users: ids, Stream: eventStream})
	if err != nil {
		t.Fatal(err)
	}
	engineCreds := auth.Credentials{NKey: auth.SeedFile(dir, auth.Engine)}
	options := func(c auth.Credentials) []nats.Option {
		opts, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		return opts
	}
	return clusterAccess{
		extra:   string(accounts),
		account: auth.EngineAccount,
		engine:  func(cfg *engine.Config) { cfg.Credentials = engineCreds },
		client:  options(auth.Credentials{NKey: auth.SeedFile(dir, auth.App)}),
		admin:   options(engineCreds),
	}
}

// TestClusterLeaderLoss shuts down the event stream's leader while clients
// submit orders with idempotency keys (repeating the same key on 503) and
// raw JetStream publishers write an R3 stream led by the same node. Every
// acknowledged order exists once on the stream, no reply is a 500, and
// every acknowledged baseline message is stored once. It logs how long the
// election took and how long after it writes resumed, for both.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster with two engines")
	}
	access := authenticated(t)
	cl := testcluster.Start(t, 3, access.extra)
	if nc, err := nats.Connect(cl.URL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the cluster")
	}
	logs := &testenv.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", tail(logs.String(), 20000))
		}
	})
	engines := []*engine.Engine{
		startClusterEngine(t, cl, access, "e1", logs),
		startClusterEngine(t, cl, access, "e2", logs),
	}
	if got := engines[0].Events.Config().Stream; got != eventStream {
		t.Fatalf("the engine's event stream is %s, this test watches %s", got, eventStream)
	}

	js, adminConn := dial(t, cl.URL(), access.admin...)
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	// The buckets read from their leader: a follower answering a direct
	// get may not have applied a write just acknowledged.
	buckets := 0
	for name := range js.StreamNames(ctx).Name() {
		if !strings.HasPrefix(name, "KV_") {
			continue
		}
		buckets++
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.CachedInfo().Config; cfg.AllowDirect || cfg.Replicas != 3 {
			t.Errorf("bucket stream %s: direct gets %v, replicas %d; want reads from the leader of 3", name, cfg.AllowDirect, cfg.Replicas)
		}
	}
	if buckets == 0 {
		t.Fatal("no bucket streams listed")
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: baselineStream, Subjects: []string{baselineSubject + ".>"}, Replicas: 3, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("create %s: %v", baselineStream, err)
	}
	victim := cl.WaitStreamLeader(access.account, eventStream, settleTimeout)
	cl.MoveStreamLeader(adminConn, access.account, baselineStream, victim, settleTimeout)
	t.Logf("%s and %s are led by %s; it also leads %v", eventStream, baselineStream, victim, ledBy(t, js, cl, access.account, victim))

	orders, baseline := newLoad(), newLoad()
	for i := range clusterClients {
		w := dialWriter(t, cl.URL(), access.client...)
		orders.run(func(stop <-chan struct{}) { submitOrders(orders, w, i, stop) })
	}
	for i := range baselinePublishers {
		w := dialWriter(t, cl.URL(), access.admin...)
		baseline.run(func(stop <-chan struct{}) { publishBaseline(baseline, w, i, stop) })
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			orders.stop()
			baseline.stop()
		}
	}
	defer stopLoad()
	testenv.Eventually(t, settleTimeout, "orders and baseline messages acknowledged before the kill", func() bool {
		return orders.acked(time.Time{}) >= acksAfterRecovery && baseline.acked(time.Time{}) >= acksAfterRecovery
	})

	// Watch both streams for their next leader while the victim goes down.
	eventsElected := cl.WatchLeader(access.account, eventStream, victim)
	baselineElected := cl.WatchLeader(access.account, baselineStream, victim)
	killed := time.Now()
	cl.Shutdown(victim)
	down := time.Since(killed)
	eventsAt := waitTime(t, eventsElected, "a new "+eventStream+" leader")
	baselineAt := waitTime(t, baselineElected, "a new "+baselineStream+" leader")
	testenv.Eventually(t, settleTimeout, "writes acknowledged after the election", func() bool {
		return orders.acked(eventsAt) >= acksAfterRecovery && baseline.acked(baselineAt) >= acksAfterRecovery
	})
	stopLoad()
	orders.wait(t)
	baseline.wait(t)

	// Correctness: nothing acknowledged is lost, nothing is stored twice,
	// and the engine answered 503, never 500, while it could not write.
	for _, f := range append(orders.failures(), baseline.failures()...) {
		t.Error(f)
	}
	checkOrders(t, js, engines[0].Events, orders.all())
	checkBaseline(t, js, baseline.all())

	// Figures.
	t.Logf("shutdown of %s took %v; %d orders and %d baseline messages acknowledged", victim, down.Round(time.Millisecond),
		len(orders.all()), len(baseline.all()))
	t.Logf("engine connections: %s", strings.Join(connectionEvents(logs.String()), "; "))
	t.Logf("order replies while it ran: %s", orders.outcomeSummary())
	t.Logf("baseline publish errors while it ran: %s", baseline.outcomeSummary())
	reportRecovery(t, "bankbook commands", js, eventStream, killed, eventsAt, orders.all())
	reportRecovery(t, "raw JetStream publish (baseline)", js, baselineStream, killed, baselineAt, baseline.all())
}

// startClusterEngine starts an engine on the cluster with three replicas;
// its log goes to logs. It is stopped when the test ends.
func startClusterEngine(t *testing.T, cl *testcluster.Cluster, access clusterAccess, name string, logs *testenv.SyncBuffer) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	e, err := engine.Start(ctx, clusterEngineConfig(t, cl, access, name), engineLog(logs, name))
	if err != nil {
		t.Fatalf("start engine %s: %v", name, err)
	}
	stopAtCleanup(t, e, name)
	return e
}

// clusterEngineConfig is the configuration of an engine named name on the
// cluster with three replicas.
func clusterEngineConfig(t *testing.T, cl *testcluster.Cluster, access clusterAccess, name string) engine.Config {
	cfg := engine.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	cfg.NATSURL = cl.URL()
	cfg.Replicas = 3
	cfg.HTTPListen = "off"
	cfg.MaxUnpaidOrders = 1 << 20
	access.engine(&cfg)
	return cfg
}

// engineLog is the log of the engine named name, written to logs.
func engineLog(logs *testenv.SyncBuffer, name string) zerolog.Logger {
	return zerolog.New(logs).Level(zerolog.InfoLevel).With().Timestamp().Str("engine", name).Logger()
}

// stopAtCleanup stops e when the test ends.
func stopAtCleanup(t *testing.T, e *engine.Engine, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("stop engine %s: %v", name, err)
		}
	})
}

// dial connects to url, retrying reconnects forever, until the test ends.
func dial(t *testing.T, url string, opts ...nats.Option) (jetstream.JetStream, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, nc
}

// ledBy lists the streams of account that node leads.
func ledBy(t *testing.T, js jetstream.JetStream, cl *testcluster.Cluster, account, node string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var out []string
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if name != eventStream && name != baselineStream && cl.StreamLeader(account, name) == node {
			out = append(out, name)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatalf("list streams: %v", err)
	}
	slices.Sort(out)
	return out
}

func waitTime(t *testing.T, ch <-chan time.Time, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(settleTimeout):
		t.Fatalf("timed out after %v waiting for %s", settleTimeout, what)
		return time.Time{}
	}
}

// ---------------------------------------------------------------------------
// Load

// ack is an acknowledged write: the request's key (idempotency key or
// Nats-Msg-Id), what it wrote (order ID or subject), its stream sequence,
// and when the acknowledgement arrived.
type ack struct {
	key, id string
	seq     uint64
	at      time.Time
}

// load runs writers until stopped and records what they were told.
type load struct {
	mu       sync.Mutex
	acks     []ack
	outcomes map[string]int // failed attempts by kind
	fails    []string       // what must not happen
	done     chan struct{}
	wg       sync.WaitGroup
}

func newLoad() *load { return &load{outcomes: map[string]int{}, done: make(chan struct{})} }

func (l *load) run(writer func(stop <-chan struct{})) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		writer(l.done)
	}()
}

// stop tells the writers to finish the write in hand and return.
func (l *load) stop() { close(l.done) }

// wait waits for the writers to return.
func (l *load) wait(t *testing.T) {
	t.Helper()
	finished := make(chan struct{})
	go func() { l.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * settleTimeout):
		t.Fatal("writers did not finish")
	}
}

func (l *load) ack(a ack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks = append(l.acks, a)
}

func (l *load) outcome(kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes[kind]++
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, fmt.Sprintf(format, args...))
}

// acked counts the acknowledgements that arrived after since.
func (l *load) acked(since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.acks {
		if a.at.After(since) {
			n++
		}
	}
	return n
}

func (l *load) all() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acks)
}

func (l *load) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.fails)
}

func (l *load) outcomeSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.outcomes) == 0 {
		return "none failed"
	}
	var parts []string
	for kind, n := range l.outcomes {
		parts = append(parts, fmt.Sprintf("%s ×%d", kind, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// errServerLost cancels an attempt whose writer's connection dropped: its
// reply cannot arrive, so it is repeated at once rather than waited for.
var errServerLost = errors.New("the writer's server went away")

// writerConn is a writer's connection and a way to learn that it dropped.
type writerConn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	drop chan struct{} // closed when the connection drops, then replaced
}

// dialWriter connects a writer to url, until the test ends.
func dialWriter(t *testing.T, url string, opts ...nats.Option) *writerConn {
	t.Helper()
	w := &writerConn{drop: make(chan struct{})}
	w.js, w.nc = dial(t, url, append(opts, nats.DisconnectErrHandler(func(*nats.Conn, error) { w.dropped() }))...)
	return w
}

func (w *writerConn) dropped() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.drop)
	w.drop = make(chan struct{})
}

// drops returns a channel closed at the connection's next drop.
func (w *writerConn) drops() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drop
}

// verdict says what a failed attempt means: its kind (for the tally),
// whether it may be repeated, and whether it must not happen at all.
type verdict struct {
	kind      string
	retry     bool
	forbidden bool
}

// retryUntil repeats write, each attempt bounded by attempt and cancelled
// when w's connection drops, until it succeeds or judge says its failure is
// final, or settleTimeout passes; it records every failure's kind, and the
// forbidden ones as failures. It returns whether write succeeded.
func retryUntil(l *load, w *writerConn, what string, attempt time.Duration, write func(ctx context.Context) error, judge func(error) verdict) bool {
	deadline := time.Now().Add(settleTimeout)
	for {
		err := attemptOnce(w, attempt, write)
		if err == nil {
			return true
		}
		v := verdict{kind: "repeated at once: " + errServerLost.Error(), retry: true}
		if !errors.Is(err, errServerLost) {
			v = judge(err)
		}
		l.outcome(v.kind)
		switch {
		case v.forbidden:
			l.fail("%s: %v", what, err)
		case !v.retry:
			l.fail("%s: %v (not to be repeated)", what, err)
			return false
		}
		if time.Now().After(deadline) {
			l.fail("%s: still failing after %v: %v", what, settleTimeout, err)
			return false
		}
		time.Sleep(retryPause)
	}
}

// attemptOnce runs write with a deadline of attempt, cancelled with
// errServerLost if w's connection drops meanwhile.
func attemptOnce(w *writerConn, attempt time.Duration, write func(ctx context.Context) error) error {
	drops := w.drops()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ctx, cancelTimeout := context.WithTimeout(ctx, attempt)
	defer cancelTimeout()
	go func() {
		select {
		case <-drops:
			cancel(errServerLost)
		case <-ctx.Done():
		}
	}()
	err := write(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errServerLost) {
		return fmt.Errorf("%w: %w", errServerLost, err)
	}
	return err
}

// submitOrders submits orders, each under its own idempotency key and
// buyer, until stop. A 503, an in-progress or conflict 409, no reply, or a
// dropped connection is repeated with the same key; a 500 is a failure, and
// repeated too, so that the loss check still covers that order.
func submitOrders(l *load, w *writerConn, worker int, stop <-chan struct{}) {
	c := client.New(w.nc)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		key := fmt.Sprintf("cluster-%d-%d", worker, n)
		req := api.SubmitOrderRequest{BuyerID: fmt.Sprintf("buyer-%d-%d", worker, n), BuyerName: fmt.Sprintf("c%dn%d", worker, n), Amount: 10_000}
		write := func(ctx context.Context) error {
			rep, _, err := client.Do(ctx, c, api.OrderSubmit, req, client.WithIdempotencyKey(key))
			if err == nil {
				l.ack(ack{key: key, id: rep.OrderID, seq: uint64(rep.Seq), at: time.Now()})
			}
			return err
		}
		if !retryUntil(l, w, "submit "+key, attemptTimeout, write, judgeReply) {
			return
		}
	}
}

// judgeReply: 503 and the 409s of a repeated key are to be repeated; any
// other 5xx is forbidden (a transient NATS failure must be 503); other
// error replies are final; no reply or no responders are repeated.
func judgeReply(err error) verdict {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		v := verdict{kind: fmt.Sprintf("%d %s", ae.Status, ae.Code)}
		switch {
		case ae.Status == 503, ae.Status == 409 && (ae.Code == "in_progress" || ae.Code == api.CodeConflict):
			v.retry = true
		case ae.Status >= 500:
			v.retry, v.forbidden = true, true
		}
		return v
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return verdict{kind: "no reply within " + attemptTimeout.String(), retry: true}
	case errors.Is(err, nats.ErrNoResponders):
		return verdict{kind: "no responders", retry: true}
	}
	return verdict{kind: "transport: " + err.Error(), retry: true}
}

// publishBaseline publishes to the baseline stream, each message under its
// own Nats-Msg-Id, until stop; every failure is repeated with the same ID.
func publishBaseline(l *load, w *writerConn, worker int, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("baseline-%d-%d", worker, n)
		subject := fmt.Sprintf("%s.%d.%d", baselineSubject, worker, n)
		write := func(ctx context.Context) error {
			pa, err := w.js.Publish(ctx, subject, []byte(id), jetstream.WithMsgID(id))
			if err == nil {
				l.ack(ack{key: id, id: subject, seq: pa.Sequence, at: time.Now()})
			}
			return err
		}
		if !retryUntil(l, w, "publish "+id, baselineAttemptTimeout, write, judgePublish) {
			return
		}
	}
}

// judgePublish: every publish failure is repeated with the same ID.
func judgePublish(err error) verdict {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		return verdict{kind: fmt.Sprintf("api error %d", apiErr.ErrorCode), retry: true}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return verdict{kind: "no ack within " + baselineAttemptTimeout.String(), retry: true}
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return verdict{kind: "no responders", retry: true}
	}
	return verdict{kind: "transport: " + err.Error(), retry: true}
}

// ---------------------------------------------------------------------------
// Checks and figures

// checkOrders: every acknowledged order is on the event stream, at the
// sequence its reply named, under one key only; and the stream holds no
// order that no reply acknowledged (a repeated key that made a second one).
func checkOrders(t *testing.T, js jetstream.JetStream, events *eventstore.Store, acks []ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	byOrder := map[string]string{}
	for _, a := range acks {
		if other, dup := byOrder[a.id]; dup {
			t.Errorf("order %s acknowledged for keys %s and %s", a.id, other, a.key)
		}
		byOrder[a.id] = a.key
		commits, err := events.Load(ctx, eventstore.Ref{Type: domain.AggregateOrder, ID: a.id}, 0)
		switch {
		case err != nil:
			t.Errorf("load order %s (key %s): %v", a.id, a.key, err)
		case len(commits) == 0:
			t.Errorf("order %s (key %s) acknowledged at seq %d is not on the stream", a.id, a.key, a.seq)
		case uint64(commits[0].Seq) != a.seq:
			t.Errorf("order %s (key %s): acknowledged at seq %d, first commit at seq %d", a.id, a.key, a.seq, commits[0].Seq)
		}
	}
	stream, err := js.Stream(ctx, eventStream)
	if err != nil {
		t.Fatalf("stream %s: %v", eventStream, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(events.Subject(eventstore.Ref{Type: domain.AggregateOrder, ID: "*"})))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	prefix := events.Subject(eventstore.Ref{Type: domain.AggregateOrder, ID: ""})
	for subject := range info.State.Subjects {
		if id := strings.TrimPrefix(subject, prefix); byOrder[id] == "" {
			t.Errorf("order %s is on the stream but no submit was acknowledged for it (a duplicate)", id)
		}
	}
	if len(info.State.Subjects) != len(byOrder) {
		t.Errorf("%d orders on the stream, %d acknowledged", len(info.State.Subjects), len(byOrder))
	}
}

// checkBaseline: every acknowledged message is stored, at its sequence,
// once.
func checkBaseline(t *testing.T, js jetstream.JetStream, acks []ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, baselineStream)
	if err != nil {
		t.Fatalf("stream %s: %v", baselineStream, err)
	}
	for _, a := range acks {
		msg, err := stream.GetMsg(ctx, a.seq)
		if err != nil {
			t.Errorf("baseline %s acknowledged at seq %d: %v", a.key, a.seq, err)
			continue
		}
		if msg.Subject != a.id || string(msg.Data) != a.key {
			t.Errorf("baseline seq %d holds %s %q, want %s %q", a.seq, msg.Subject, msg.Data, a.id, a.key)
		}
	}
	if n := stream.CachedInfo().State.Msgs; n != uint64(len(acks)) {
		t.Errorf("baseline stream holds %d messages, %d were acknowledged", n, len(acks))
	}
}

// reportRecovery logs how long the election took (leader shut down → a new
// leader seen), how long the stream took no writes (the last acknowledged
// write stored before the election → the first stored after it, by the
// stream's own timestamps), and how long after the election writes resumed:
// the first write stored, and the first acknowledgement to reach a writer.
func reportRecovery(t *testing.T, what string, js jetstream.JetStream, name string, killed, elected time.Time, acks []ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	var lastBefore, firstStored, firstAcked time.Time
	for _, a := range acks {
		if a.at.Before(killed.Add(-time.Second)) {
			continue // long before: not near the gap
		}
		msg, err := stream.GetMsg(ctx, a.seq)
		if err != nil {
			t.Fatalf("%s seq %d: %v", name, a.seq, err)
		}
		switch {
		case msg.Time.Before(elected):
			if msg.Time.After(lastBefore) {
				lastBefore = msg.Time
			}
		default:
			if firstStored.IsZero() || msg.Time.Before(firstStored) {
				firstStored = msg.Time
			}
			if firstAcked.IsZero() || a.at.Before(firstAcked) {
				firstAcked = a.at
			}
		}
	}
	if firstStored.IsZero() || lastBefore.IsZero() {
		t.Fatalf("%s: no acknowledged write stored on both sides of the election", what)
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	resumed := firstAcked.Sub(elected)
	verdict := "within 2s"
	if resumed > 2*time.Second {
		verdict = "NOT within 2s"
	}
	t.Logf("%s: new leader %v after the shutdown began; last write before it stored %v after the shutdown began; "+
		"no write stored for %v; after the election the first write was stored after %v and acknowledged after %v (%s)",
		what, ms(elected.Sub(killed)), ms(lastBefore.Sub(killed)), ms(firstStored.Sub(lastBefore)),
		ms(firstStored.Sub(elected)), ms(resumed), verdict)
}

// connectionEvents picks the engines' NATS disconnects and reconnects out of
// their log.
func connectionEvents(log string) []string {
	var out []string
	for line := range strings.Lines(log) {
		var rec struct {
			Engine, Message, Server string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && (strings.HasPrefix(rec.Message, "disconnected") || strings.HasPrefix(rec.Message, "reconnected")) {
			out = append(out, strings.TrimSpace(rec.Engine+" "+rec.Message+" "+rec.Server))
		}
	}
	if len(out) == 0 {
		return []string{"none lost its server"}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
