package ops_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
)

// healthz sends one GET /healthz on c and reads the answer.
func healthz(c net.Conn, addr string) error {
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// hold opens n connections to addr, each doing what with it, and closes
// them when the test ends.
func hold(t *testing.T, addr string, n int, what func(net.Conn) error) []net.Conn {
	t.Helper()
	held := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if err := what(c); err != nil {
			t.Fatalf("connection %d: %v", len(held), err)
		}
	}
	return held
}

// answeredSoon asks /healthz on a new connection in the background and
// returns where its outcome comes.
func answeredSoon(t *testing.T, addr string) <-chan error {
	t.Helper()
	extra, err := net.Dial("tcp", addr) // completes in the kernel's accept queue
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = extra.Close() })
	answered := make(chan error, 1)
	go func() { answered <- healthz(extra, addr) }()
	return answered
}

// The server holds at most ops.MaxConns connections: a flood of them (no
// credentials needed) cannot use up the open files the embedded server's
// event stream needs. A connection beyond the bound, while every one is at
// work on a request (here: its headers not sent yet), is served once one
// closes.
func TestConnectionsAreBounded(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})
	addr := s.Addr().String()
	held := hold(t, addr, ops.MaxConns, func(c net.Conn) error {
		_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\n") // and nothing more
		return err
	})
	answered := answeredSoon(t, addr)
	select {
	case err := <-answered:
		t.Fatalf("connection %d was served while %d were at work (%v)", ops.MaxConns+1, ops.MaxConns, err)
	case <-time.After(500 * time.Millisecond):
	}
	_ = held[0].Close()
	testenv.Eventually(t, 10*time.Second, "the connection beyond the bound to be served once one closed", func() bool {
		select {
		case err := <-answered:
			if err != nil {
				t.Errorf("served with an error: %v", err)
			}
			return true
		default:
			return false
		}
	})
}

// Connections kept open idle between requests (keep-alive) do not keep a
// new one out: when all ops.MaxConns places are taken, the connection idle
// longest is closed to make room, and the new one is answered at once
// (healthz, readyz, metrics and the console stay reachable); but only once
// a new one has come.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})
	addr := s.Addr().String()
	held := hold(t, addr, ops.MaxConns, func(c net.Conn) error { return healthz(c, addr) })
	// All places taken, nobody else waiting: none is closed in advance.
	time.Sleep(300 * time.Millisecond)
	for i, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d of %d ended with no newcomer waiting: %v", i, ops.MaxConns, err)
		}
	}
	answered := answeredSoon(t, addr)
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("served with an error: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("connection %d not served while %d idle keep-alive connections were open", ops.MaxConns+1, ops.MaxConns)
	}
	// The idlest one, the first, was closed for it.
	_ = held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held[0].Read(make([]byte, 1)); err == nil {
		t.Errorf("the longest idle connection is still open")
	}
}

// A request whose body stalls holds its place no longer than one whose
// headers stall (the header timeout): the server ends the one begun first
// first. Before, a body could take 30 s, and MaxConns of them, sent by
// anyone who reaches the port and renewed as each was closed, kept
// /healthz, /readyz and the console waiting about 28 s for every answer.
func TestStalledBodyHoldsNoLongerThanStalledHeaders(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})
	addr := s.Addr().String()
	ended := make(chan string, 2)
	untilClosed := func(name string, c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // a bound for a broken test, not the assertion
		_, _ = io.Copy(io.Discard, c)
		ended <- name
	}
	body := hold(t, addr, 1, func(c net.Conn) error {
		_, err := fmt.Fprintf(c, "POST /healthz HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\nx", addr) // 1 byte of 100
		return err
	})
	go untilClosed("stalled body", body[0])
	time.Sleep(200 * time.Millisecond) // the body's request begins first
	headers := hold(t, addr, 1, func(c net.Conn) error {
		_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\n") // and nothing more
		return err
	})
	go untilClosed("stalled headers", headers[0])
	if first := <-ended; first != "stalled body" {
		t.Errorf("the server ended the request with stalled headers before the earlier one with a stalled body: a body holds a place longer than the header timeout")
	}
	<-ended
}

// Request headers are bounded well below net/http's default of 1 MiB:
// nothing this port serves needs more than a few cookies. Before, anyone
// who reaches the port could send MaxConns requests of a megabyte of
// headers each, renewed every read timeout, and hold about 600 MB of the
// engine's memory.
func TestLargeHeadersAreRefused(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})
	addr := s.Addr().String()
	send := func(headerBytes int) (int, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a bound for a broken test, not the assertion
		go func() {
			_, _ = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nCookie: big=%s\r\n\r\n", addr, strings.Repeat("a", headerBytes))
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := send(16 << 10); err != nil || code != http.StatusOK {
		t.Errorf("16 KiB of headers: %d, %v; want 200 (a browser's cookies)", code, err)
	}
	if code, err := send(128 << 10); err != nil || code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("128 KiB of headers: %d, %v; want 431", code, err)
	}
}
