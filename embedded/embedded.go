// Package embedded runs bankbook's in-process nats-server with JetStream.
//
// The engine talks to it over an in-process connection; clients (the CLI,
// other languages) reach it on the configured TCP address. Every connection,
// in-process ones too, authenticates: the server runs the accounts and
// permissions that package auth renders, and Connect uses the engine's own
// seed. The durability
// profile is a server-wide setting: Safe fsyncs every write before the
// publish is acknowledged, Fast flushes to the OS and fsyncs every two
// minutes (the nats-server default).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/logsample"
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
	// EngineSyncs, under Safe, has the server write each message to the
	// operating system before its ack without syncing it, as under Fast:
	// the engine syncs the store's file system itself before it relies on
	// a write (internal/groupcommit).
	EngineSyncs bool
	// ServerName must stay the same across restarts of one data directory.
	// Default "bankbook".
	ServerName string
	// Accounts is the accounts block the server runs (auth.Render). Required:
	// the embedded server never runs without authentication.
	Accounts []byte
	// EngineSeed is the engine identity's seed file, used by Connect.
	// Required.
	EngineSeed string
	// MaxConnections is how many client connections the server takes at
	// once, the engine's own included; more are refused. 0:
	// DefaultMaxConnections of the process's open-file limit.
	MaxConnections int
	// Log receives the server's own warnings and errors. Default: discarded.
	Log *zerolog.Logger
}

// DefaultMaxConnections is the connection limit for a process that may
// open nofile files (0: unknown): what is left of them once a quarter, at
// least 1,024 (half of a smaller limit), is kept for JetStream's files,
// the read models, the HTTP listener and the engine's own connections, and
// at most nats-server's own default (64K). Connections past the open-file limit would fail
// JetStream's writes with them; past this one, only new connections fail.
func DefaultMaxConnections(nofile uint64) int {
	const most, least = server.DEFAULT_MAX_CONNECTIONS, 64
	if nofile == 0 {
		return most
	}
	keep := max(nofile/4, min(1024, nofile/2))
	if nofile < keep+least {
		return least
	}
	return int(min(nofile-keep, most))
}

// Connections is how many client connections the server holds now
// ("open": the engine's own, clients', and those not yet authenticated)
// and takes at most ("max"): new ones are refused at the limit.
func (s *Server) Connections(context.Context) (map[string]uint64, error) {
	return map[string]uint64{"open": uint64(s.ns.NumClients()), "max": uint64(s.cfg.MaxConnections)}, nil
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
	if len(cfg.Accounts) == 0 || cfg.EngineSeed == "" {
		return nil, errors.New("embedded: accounts and the engine seed are required (the server always authenticates)")
	}
	opts := &server.Options{}
	if err := opts.ProcessConfigString(string(cfg.Accounts)); err != nil {
		return nil, fmt.Errorf("embedded: accounts: %w", err)
	}
	opts.ServerName = cfg.ServerName
	opts.JetStream = true
	opts.StoreDir = cfg.StoreDir
	opts.NoSigs = true
	opts.SyncAlways = cfg.Durability == Safe && !cfg.EngineSyncs
	opts.JetStreamMaxMemory = 256 << 20
	opts.MaxPayload = 1 << 20
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections(openFileLimit())
	}
	opts.MaxConn = cfg.MaxConnections
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
	logs := &serverLog{fatal: make(chan string, 1), log: zerolog.Nop()}
	if cfg.Log != nil {
		// Sampled: any client can make the server log (a refused publish is
		// an error line each), so a flood must not fill the disk. The first
		// 20 lines of each second are kept, then one in a thousand.
		logs.log = logsample.Flood(*cfg.Log)
	}
	ns.SetLoggerV2(logs, false, false, false)
	go ns.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-logs.fatal:
			ns.Shutdown()
			return nil, fmt.Errorf("%w: %s", ErrStart, msg)
		default:
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("%w: not ready in 30s", ErrStart)
		}
	}
	return &Server{ns: ns, cfg: cfg}, nil
}

// ErrStart means the embedded server could not start (a taken port, an
// unusable store directory); the message says why.
var ErrStart = errors.New("embedded: nats-server did not start")

// serverLog sends the server's own messages to zerolog: notices at debug,
// warnings and errors as such. A fatal message (a port already taken) ends
// Start at once.
type serverLog struct {
	log   zerolog.Logger
	fatal chan string
}

func (l *serverLog) Noticef(format string, v ...any) {
	l.log.Debug().Str("component", "nats-server").Msgf(format, v...)
}
func (l *serverLog) Warnf(format string, v ...any) {
	l.log.Warn().Str("component", "nats-server").Msgf(format, v...)
}
func (l *serverLog) Errorf(format string, v ...any) {
	l.log.Error().Str("component", "nats-server").Msgf(format, v...)
}
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Str("component", "nats-server").Msg(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
func (l *serverLog) Debugf(string, ...any) {}
func (l *serverLog) Tracef(string, ...any) {}

// ClientURL is the TCP URL clients use ("" when not listening).
func (s *Server) ClientURL() string {
	if s.cfg.Listen == "" {
		return ""
	}
	return s.ns.ClientURL()
}

// Connect opens an in-process connection as the engine.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return s.ConnectAs(s.cfg.EngineSeed, opts...)
}

// ConnectAs opens an in-process connection with the seed in seedFile.
func (s *Server) ConnectAs(seedFile string, opts ...nats.Option) (*nats.Conn, error) {
	nkey, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	return nats.Connect("", append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("bankbook-engine"), nkey}, opts...)...)
}

// DisconnectClient closes the connection the server knows by id (its
// client ID, nats.Conn.GetClientID), as it does to a slow consumer.
func (s *Server) DisconnectClient(id uint64) error {
	return s.ns.DisconnectClientByID(id)
}

// StoreHealth returns nil while the server's JetStream is enabled and no
// stream of any account has a write error or failed to be recovered at
// start; otherwise an error naming each problem. A stream's file store
// that failed a write (a disk error, no file descriptor left) refuses
// every later write until the server restarts: nothing else says so, the
// publishes that fail are not even answered. Of what the server's health
// check finds, only those count: not the directory of a stream being
// deleted, or left by a deletion a crash cut short (no configuration in
// it; the server skips it), nor its check that it accepts connections
// within a millisecond.
func (s *Server) StoreHealth() error {
	h := s.ns.Healthz(&server.HealthzOptions{Details: true})
	var errs []error
	for _, e := range h.Errors {
		if e.Type == server.HealthzErrorJetStream || e.Type == server.HealthzErrorStream && (strings.Contains(e.Error, "write error") || s.unrecovered(e)) {
			errs = append(errs, errors.New(e.Error))
		}
	}
	return errors.Join(errs...)
}

// unrecovered reports whether e says a stream could not be recovered
// whose directory holds its configuration: one the server failed to read
// at start, not one a deletion is removing or left behind.
func (s *Server) unrecovered(e server.HealthzError) bool {
	if !strings.Contains(e.Error, "could not be recovered") || strings.HasPrefix(e.Stream, ".") || e.Stream == "" || e.Account == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(s.cfg.StoreDir, "jetstream", e.Account, "streams", e.Stream, "meta.inf"))
	return err == nil
}

// Shutdown stops the server and waits until it has stopped. It is idempotent.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
