package ops_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
)

// The server holds at most ops.MaxConns connections: a flood of them (no
// credentials needed) cannot use up the open files the embedded server's
// event stream needs. A connection beyond the bound is served once one
// closes.
func TestConnectionsAreBounded(t *testing.T) {
	s := start(t, ops.Config{Readiness: &parts{}})
	addr := s.Addr().String()
	// Each held connection has been served once: it is accepted, and kept
	// alive idle.
	held := make([]net.Conn, 0, ops.MaxConns)
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	get := func(c net.Conn) error {
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	for range ops.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if err := get(c); err != nil {
			t.Fatalf("connection %d: %v", len(held), err)
		}
	}
	extra, err := net.Dial("tcp", addr) // completes in the kernel's accept queue
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	answered := make(chan error, 1)
	go func() { answered <- get(extra) }()
	select {
	case err := <-answered:
		t.Fatalf("connection %d was served while %d were open (%v)", ops.MaxConns+1, ops.MaxConns, err)
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
