package ops

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimit is a listener that holds at most max connections open at once.
// When they are all taken and another comes, it closes the one that has
// waited longest between requests (an idle keep-alive connection) to make
// room, so a client that keeps connections open without using them cannot
// keep others out: only connections at work on a request, which the
// server's read timeouts bound, count against the limit then. With none
// idle, Accept waits for one to close.
type connLimit struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	idle map[net.Conn]time.Time // connections between requests, since when
}

func newConnLimit(ln net.Listener, max int) *connLimit {
	return &connLimit{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{}), idle: map[net.Conn]time.Time{}}
}

// connLimitRecheck is how often a full Accept looks again for an idle
// connection to close while it waits for one to end.
const connLimitRecheck = 100 * time.Millisecond

// Accept takes the next connection from the kernel first and then a place
// for it, so that an idle connection is closed only for a connection that
// has come, never in advance.
func (l *connLimit) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.acquire() {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

// acquire takes a place for a connection just accepted, closing the longest
// idle connection when there is none; false once the listener is closed.
func (l *connLimit) acquire() bool {
	for {
		select {
		case l.sem <- struct{}{}:
			return true
		case <-l.done:
			return false
		default:
		}
		l.closeIdlest()
		t := time.NewTimer(connLimitRecheck)
		select {
		case l.sem <- struct{}{}:
			t.Stop()
			return true
		case <-l.done:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// closeIdlest closes the connection idle the longest, if any.
func (l *connLimit) closeIdlest() {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest != nil {
		_ = oldest.Close() // releases its place at once
	}
}

// track is the http.Server's ConnState hook: it keeps the set of idle
// connections closeIdlest chooses from.
func (l *connLimit) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if state == http.StateIdle {
		l.idle[c] = time.Now()
	} else {
		delete(l.idle, c)
	}
}

func (l *connLimit) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its place back once, on its first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
