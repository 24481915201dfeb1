package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
)

// blackHole forwards TCP connections to a server until it is told to drop
// what passes, as a frozen server or a network that silently loses packets
// does: the sockets stay open and nothing arrives either way.
type blackHole struct {
	l        net.Listener
	target   string
	dropping atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
}

// startBlackHole listens on a free loopback port and forwards to target
// until the test ends.
func startBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackHole{l: l, target: target}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *blackHole) url() string { return "nats://" + p.l.Addr().String() }

func (p *blackHole) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.keep(c)
		if p.dropping.Load() {
			go p.pipe(io.Discard, c)
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.keep(s)
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

func (p *blackHole) keep(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst while the proxy forwards, and reads and discards
// what src sends once it drops.
func (p *blackHole) pipe(dst io.Writer, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.dropping.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if c, ok := dst.(net.Conn); ok && !p.dropping.Load() {
				c.Close()
			}
			return
		}
	}
}

func (p *blackHole) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// natsReadiness is the "nats" condition of e's readiness, as /readyz
// reports it.
func natsReadiness(e *Engine) (ops.PartStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range ops.Check(ctx, e.readiness()).Parts {
		if p.Name == "nats" {
			return p, nil
		}
	}
	return ops.PartStatus{}, errors.New("no nats condition in the readiness")
}

// A connection to an external server that stops answering without closing
// (a frozen server, a network that drops packets) is noticed by its
// unanswered pings: the engine reports its connections down and
// reconnects, here to the same server once packets flow again.
func TestAConnectionThatStopsAnsweringIsNoticed(t *testing.T) {
	pingInterval = 500 * time.Millisecond
	t.Cleanup(func() { pingInterval = defaultPingInterval })
	srv := testenv.Start(t, "")
	proxy := startBlackHole(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	cfg := Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = filepath.Join(t.TempDir(), "data"), "", "off"
	cfg.NATSURL, cfg.NKey = proxy.url(), auth.SeedFile(srv.AuthDir, auth.Engine)
	e, err := Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	testenv.CheckFor(t, 20*time.Second, func() error {
		st, err := natsReadiness(e)
		if err == nil && !st.Ready {
			err = fmt.Errorf("nats not ready before the black hole: %+v", st)
		}
		return err
	})

	proxy.dropping.Store(true)
	testenv.CheckFor(t, 20*time.Second, func() error {
		st, err := natsReadiness(e)
		if err != nil {
			return err
		}
		for _, conn := range []string{"the event store connection is reconnecting (nats: stale connection)", "the service connection is reconnecting (nats: stale connection)"} {
			if st.Ready || !strings.Contains(st.Reason, conn) {
				return fmt.Errorf("nats while the server does not answer: %+v, want failing with %q", st, conn)
			}
		}
		return nil
	})

	proxy.dropping.Store(false)
	testenv.CheckFor(t, 20*time.Second, func() error {
		st, err := natsReadiness(e)
		if err == nil && !st.Ready {
			err = fmt.Errorf("nats once the server answers again: %+v", st)
		}
		return err
	})
}
