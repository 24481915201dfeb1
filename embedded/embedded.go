// Package embedded runs bankbook's in-process nats-server with JetStream.
//
// The engine talks to it over an in-process connection; clients (the CLI,
// other languages) reach it on the configured TCP address. The durability
// profile is a server-wide setting: Safe fsyncs every write before the
// publish is acknowledged, Fast flushes to the OS and fsyncs every two
// minutes (the nats-server default).
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Durability is the write durability profile of the embedded server.
type Durability string

const (
	// Safe fsyncs every JetStream write before acknowledging it.
	Safe Durability = "safe"
	// Fast acknowledges after the write reaches the OS; fsync runs every 2 minutes.
	Fast Durability = "fast"
)

// ParseDurability parses "safe" or "fast".
func ParseDurability(s string) (Durability, error) {
	switch d := Durability(s); d {
	case Safe, Fast:
		return d, nil
	}
	return "", fmt.Errorf("durability must be safe or fast, not %q", s)
}

// Config configures the embedded server.
type Config struct {
	// StoreDir holds JetStream's files. Required.
	StoreDir string
	// Listen is the client address, HOST:PORT. Port 0 picks a free port;
	// empty means no TCP listener (in-process connections only).
	Listen string
	// Durability is the write durability profile. Default Safe.
	Durability Durability
	// ServerName must stay the same across restarts of one data directory.
	// Default "bankbook".
	ServerName string
}

// Server is a running embedded nats-server.
type Server struct {
	ns  *server.Server
	cfg Config
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded: store dir is required")
	}
	if cfg.Durability == "" {
		cfg.Durability = Safe
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "bankbook"
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		NoSigs:             true,
		NoLog:              true,
		SyncAlways:         cfg.Durability == Safe,
		JetStreamMaxMemory: 256 << 20,
		MaxPayload:         1 << 20,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded: listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded: nats-server did not become ready in 30s")
	}
	return &Server{ns: ns, cfg: cfg}, nil
}

// ClientURL is the TCP URL clients use ("" when not listening).
func (s *Server) ClientURL() string {
	if s.cfg.Listen == "" {
		return ""
	}
	return s.ns.ClientURL()
}

// Connect opens an in-process connection.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect("", append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("bankbook-engine")}, opts...)...)
}

// Shutdown stops the server and waits until it has stopped. It is idempotent.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
