package worker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/supervisor"
	"github.com/bankbook/bankbook/worker"
)

// env is a real embedded server with a work stream and the dead-letter stream.
type env struct {
	t      *testing.T
	js     jetstream.JetStream
	stream jetstream.Stream
	dead   *worker.DeadLetters
	logs   *testenv.SyncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, js: js, stream: stream, dead: dead, logs: &testenv.SyncBuffer{}}
}

// consumer returns a Consumer function for a durable on the work stream.
func (e *env) consumer(durable string, ackWait time.Duration) func(context.Context) (jetstream.Consumer, error) {
	return func(ctx context.Context) (jetstream.Consumer, error) {
		return e.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
		})
	}
}

// loop returns a Loop on durable name with fast backoffs; cfg fields set by
// the caller win.
func (e *env) loop(name string, h worker.Handler, cfg worker.Config) *worker.Loop {
	e.t.Helper()
	cfg.Name = name
	cfg.Handler = h
	cfg.Dead = e.dead
	if cfg.Consumer == nil {
		cfg.Consumer = e.consumer(name, 30*time.Second)
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 10 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	cfg.Log = zerolog.New(e.logs)
	l, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// run runs l until the test ends and checks that Run then returned nil.
func (e *env) run(l *worker.Loop) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("run: %v", err)
		}
	})
}

func (e *env) publish(subject, data string) uint64 {
	e.t.Helper()
	ack, err := e.js.Publish(context.Background(), subject, []byte(data))
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// calls records handler calls.
type calls struct {
	mu   sync.Mutex
	msgs []worker.Msg
	at   []time.Time
}

func (c *calls) add(m worker.Msg) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	c.at = append(c.at, time.Now())
	return len(c.msgs)
}

func (c *calls) all() ([]worker.Msg, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]worker.Msg(nil), c.msgs...), append([]time.Time(nil), c.at...)
}

func (c *calls) count(data string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if string(m.Data) == data {
			n++
		}
	}
	return n
}

func (c *calls) String() string {
	msgs, _ := c.all()
	s := ""
	for _, m := range msgs {
		s += fmt.Sprintf("%s#%d(attempt %d) ", m.Data, m.Seq, m.Attempt)
	}
	return s
}

// supervise runs l as the only part of a supervisor until the test ends.
func supervise(t *testing.T, l *worker.Loop) *supervisor.Supervisor {
	t.Helper()
	sup, err := supervisor.New(supervisor.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Add(supervisor.Part{Name: l.Name(), Run: l.Run, ReportsReady: true}); err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sup.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return sup
}
