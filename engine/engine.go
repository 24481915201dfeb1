// Package engine assembles a running bankbook: the NATS connection (an
// embedded server or an external cluster), the event store, the KV buckets,
// the command handlers, the process managers, the projection runner and the
// micro service.
//
// Start brings the parts up in dependency order; Stop takes them down in
// reverse, draining in-flight commands before anything they need goes away.
package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/console"
	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/logsample"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/ops"
	"github.com/bankbook/bankbook/process"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/ratelimit"
	"github.com/bankbook/bankbook/reservations"
	"github.com/bankbook/bankbook/server"
	"github.com/bankbook/bankbook/snapshots"
	"github.com/bankbook/bankbook/supervisor"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/watermarks"
	"github.com/bankbook/bankbook/worker"
)

// payoutsMaxAckPending is how many payouts may wait on the provider at once
// before new ones wait too.
const payoutsMaxAckPending = 100_000

// partProjections is the part that keeps the read models current.
const partProjections = "projections"

// partPayouts is the part that sends payouts through the provider (only
// on an instance with one); partPayoutReturns returns the money of failed
// payouts (on every instance).
const (
	partPayouts       = "payouts"
	partPayoutReturns = "react-payouts"
)

// partsStopTimeout bounds how long Stop waits for the background parts: more
// than a reactor's or a timer's handler may take (20s).
const partsStopTimeout = 25 * time.Second

// payoutsHandlerTimeout bounds one call of the payouts part's handler (a
// reactor's, under partsStopTimeout): a payout's send, its polls
// (--firmbank-settle-timeout) and the recording of its result.
const payoutsHandlerTimeout = 20 * time.Second

// maxFirmbankSettleTimeout is the longest --firmbank-settle-timeout: the
// polls leave the handler time to record the result. A longer one was cut
// by the handler's deadline, and the payout waited the pending retry.
const maxFirmbankSettleTimeout = payoutsHandlerTimeout - 5*time.Second

// Engine is a running bankbook instance.
type Engine struct {
	cfg Config
	log zerolog.Logger
	ns  *embedded.Server // nil with an external NATS
	nc  *nats.Conn       // JetStream: the store, the parts, the reactors
	// svc carries the service's requests and replies, apart from nc: a
	// client's flood of requests that makes the NATS server close the
	// connection as a slow consumer closes this one (which reconnects), not
	// the one the event store and every part depend on.
	svc      *nats.Conn
	Events   *eventstore.Store
	Models   *projections.Store
	Runner   *projections.Runner
	Commands commands.Handlers
	// Accounts is the dedicated account directory of store links.
	Accounts *accounts.Directory
	// Sim is the simulated bank with --bank-sim.
	Sim    *bankfeed.SimBank
	server *server.Server

	// Parts runs every background part: projections, reactors, timers,
	// the scanner and the HTTP operations server.
	Parts *supervisor.Supervisor
	// Loops are the worker loops by part name, for redrives and metrics.
	Loops map[string]*worker.Loop
	// DeadLetters holds the work parts gave up on.
	DeadLetters *worker.DeadLetters
	Metrics     *ops.Metrics
	opsServer   *ops.Server
	// console is the ops console on the HTTP listener (nil when off).
	console *console.Console
	// firmFee is the simulated firm-banking provider's fee per transfer
	// (0: a real provider, whose fee is known on settlement).
	firmFee int64
	// firmSim is the simulated firm-banking provider (--bank-sim), whose
	// webhooks go to this engine's own HTTP listener.
	firmSim          *firmbanking.FakeService
	simWebhookSecret string
	// startHead is the stream's last sequence when the engine started: the
	// read models are caught up once they have applied it.
	startHead eventstore.Seq
	// serving is true from the moment the API answers until Stop begins.
	serving atomic.Bool
	// stopping is true once Stop has begun: the NATS connections it closes
	// are closed on purpose (connOptions).
	stopping atomic.Bool
	// ncHealth and svcHealth are what the handlers of e.nc and e.svc last
	// saw (natsStatus).
	ncHealth, svcHealth connHealth
	// streams notes the streams and KV buckets the engine opened at start,
	// which readiness checks are still there.
	streams *streamNotes

	closers []func() error // simulated third parties
	// Limiter is the notification rate limit shared by every instance.
	Limiter *ratelimit.Limiter
	// ChatSim is the fake chat provider (--chat-sim); chatSimURL its address.
	ChatSim    *chat.Sim
	chatSimURL string
	unlock     func() error // releases the data directory
	// stopRearm ends the start-up re-arming of timers; rearmDone waits for it.
	stopRearm func()
	rearmDone sync.WaitGroup
	stopOnce  sync.Once
	stopErr   error
	// trims counts the memory-trim part's trims (memtrim.go).
	trims atomic.Uint64
	// syncs makes writes durable under group commit; nil otherwise
	// (every wait on it returns at once).
	syncs *groupcommit.Syncer
}

// Start starts an engine. On error, whatever was started is stopped again.
// With an external NATS, a start that fails because NATS or JetStream is
// temporarily unavailable (transient.Retryable: no server reachable yet, a
// cluster electing leaders) is stopped and made again, with growing pauses,
// until cfg.StartTimeout has passed or ctx ends; each failure is logged.
// A connection that cannot be made yet (refused, a name that does not
// resolve yet, a server that closes or does not answer) is waited for; one
// refused for its credentials or TLS, and a request NATS refuses for the
// engine's permissions, are not. Every step of a start creates or binds
// what it needs, so a repeated one finds what an earlier attempt made. An
// attempt under way at the deadline ends on its own bounds (seconds).
func Start(ctx context.Context, cfg Config, log zerolog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Duration(cfg.StartTimeout))
	for attempt := 1; ; attempt++ {
		e, err := start(ctx, cfg, log)
		if err == nil || cfg.NATSURL == "" {
			return e, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start stopped (%w): %w", context.Cause(ctx), err)
		}
		if !startAgain(err) {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if attempt == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("NATS still unavailable after %d attempts in %v (start-timeout): %w", attempt, time.Duration(cfg.StartTimeout), err)
		}
		pause := min(startPause<<min(attempt-1, 4), maxStartPause, left)
		log.Warn().Err(err).Int("attempt", attempt).Str("retry_in", pause.Round(time.Millisecond).String()).
			Msg("NATS or JetStream is not ready for the engine yet (a server not up, a cluster electing leaders); starting again")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("start stopped (%w) while NATS was not ready: %w", context.Cause(ctx), err)
		case <-time.After(pause):
		}
	}
}

// connectError is a failed connection to an external NATS.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// errRefused marks a start NATS refused for the engine's permissions: no
// waiting mends it.
var errRefused = errors.New("refused by NATS")

// startAgain reports whether a failed start may succeed if made again: NATS
// or JetStream was temporarily unavailable, or no connection could be made
// yet; not when NATS refused the engine's credentials, TLS or permissions.
func startAgain(err error) bool {
	if errors.Is(err, errRefused) {
		return false
	}
	if ce, ok := errors.AsType[*connectError](err); ok {
		var (
			unknownCA x509.UnknownAuthorityError
			badCert   x509.CertificateInvalidError
			badHost   x509.HostnameError
			verify    *tls.CertificateVerificationError
		)
		refused := errors.Is(ce, nats.ErrAuthorization) || errors.Is(ce, nats.ErrAuthExpired) || errors.Is(ce, nats.ErrAuthRevoked) ||
			errors.Is(ce, nats.ErrSecureConnRequired) || errors.Is(ce, nats.ErrSecureConnWanted) || errors.Is(ce, nats.ErrNkeysNotSupported) ||
			errors.As(ce, &unknownCA) || errors.As(ce, &badCert) || errors.As(ce, &badHost) || errors.As(ce, &verify)
		return !refused
	}
	return transient.Retryable(err)
}

// The pause after a failed start (first and largest).
const (
	startPause    = 500 * time.Millisecond
	maxStartPause = 5 * time.Second
)

// start is one attempt of Start.
func start(ctx context.Context, cfg Config, log zerolog.Logger) (_ *Engine, err error) {
	e := &Engine{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			if e.nc != nil {
				// NATS drops a request the engine may not publish and says
				// so on the connection: the request itself only times out.
				if last := e.nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) {
					err = fmt.Errorf("%w: %w (%w)", err, errRefused, last)
				}
			}
			_ = e.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// Before anything opens a file in it: two engines on one directory
	// would corrupt each other's JetStream store and read models.
	if e.unlock, err = datadir.Lock(cfg.DataDir); err != nil {
		return nil, err
	}
	_, lockID := datadir.Holder(cfg.DataDir)
	if _, err := os.Lstat(filepath.Join(cfg.DataDir, RestoreMarker)); err == nil {
		return nil, fmt.Errorf("%w: %s is there: run bankbook restore into %s again (it starts over), or remove the directory to start empty", ErrRestoreIncomplete, RestoreMarker, cfg.DataDir)
	}
	if cfg.NATSURL == "" {
		var generated []string
		_, serr := os.Stat(StoreDir(cfg.DataDir))
		firstStart := errors.Is(serr, fs.ErrNotExist)
		if e.ns, generated, err = startEmbedded(cfg, "", log); err != nil {
			return nil, err
		}
		if cfg.GroupCommit {
			if e.syncs, err = groupcommit.Open(StoreDir(cfg.DataDir)); err != nil {
				return nil, err
			}
			if fs := e.syncs.FileSystem(); fs != "ext2/3/4" {
				// nats-server replaces some files by an unsynced rename
				// when it does not sync per write; ext4 (data=ordered, its
				// default) writes a file's data before such a rename.
				log.Warn().Str("file_system", fs).Msg("group commit: the data directory is not on ext4, the file system its durability was argued and measured on (ADR 0012)")
			}
		}
		if e.nc, err = e.ns.Connect(connOptions(log, e.stopping.Load, &e.ncHealth)...); err != nil {
			return nil, fmt.Errorf("connect to embedded nats: %w", err)
		}
		if e.svc, err = e.ns.Connect(append(connOptions(log.With().Str("connection", "service").Logger(), e.stopping.Load, &e.svcHealth), nats.Name(serviceConnName))...); err != nil {
			return nil, fmt.Errorf("connect to embedded nats: %w", err)
		}
		started := log.Info().Str("listen", e.ns.ClientURL()).Str("durability", cfg.Durability).Bool("group_commit", cfg.GroupCommit).
			Str("store_dir", StoreDir(cfg.DataDir))
		if cfg.AuthFile != "" {
			started.Str("auth_file", cfg.AuthFile).
				Msg("embedded nats-server with JetStream started; clients authenticate as the users of auth_file (the role seeds in the data directory's auth/ are not accepted)")
		} else {
			started.Str("auth_dir", filepath.Join(cfg.DataDir, "auth")).
				Msg("embedded nats-server with JetStream started; clients authenticate with the seeds in auth_dir")
		}
		logGeneratedSeeds(log, filepath.Join(cfg.DataDir, "auth"), generated, firstStart)
		if cfg.Durability == string(embedded.Fast) {
			log.Warn().Msg("durability profile fast: acknowledged writes are fsynced only every 2 minutes, and the read models only when the engine stops; a machine crash can lose writes, and the read models are then rebuilt from the event log")
		}
	} else {
		creds, err := cfg.Credentials.Options()
		if err != nil {
			return nil, err
		}
		opts := append([]nats.Option{nats.Name("bankbook-engine")}, creds...)
		if e.nc, err = nats.Connect(cfg.NATSURL, append(opts, connOptions(log, e.stopping.Load, &e.ncHealth)...)...); err != nil {
			return nil, &connectError{fmt.Errorf("connect to %s: %w", auth.Redact(cfg.NATSURL), err)}
		}
		svcOpts := append(opts, append(connOptions(log.With().Str("connection", "service").Logger(), e.stopping.Load, &e.svcHealth), nats.Name(serviceConnName))...)
		if e.svc, err = nats.Connect(cfg.NATSURL, svcOpts...); err != nil {
			return nil, &connectError{fmt.Errorf("connect to %s: %w", auth.Redact(cfg.NATSURL), err)}
		}
		// Before anything is opened: in another account the engine would
		// serve that account's streams and clients. On the service
		// connection, whose last error start does not read.
		account, err := checkAccount(ctx, e.svc, cfg.Tenant, log)
		if err != nil {
			return nil, err
		}
		log.Info().Str("nats_url", auth.Redact(cfg.NATSURL)).Int("replicas", cfg.Replicas).Str("tenant", cfg.Tenant).Str("account", account).
			Msg("connected to external NATS; durability is the cluster's sync_interval and replica count")
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		return nil, err
	}
	// Under group commit every write of the engine returns once durable,
	// except a command's, which syncs at its own points (ADR 0012).
	js = groupcommit.Wrap(js, e.syncs)
	// Each stream opened from here to the start of serving is one /readyz
	// checks is still there.
	e.streams = noteStreams(js, cfg.Replicas, log)
	js = e.streams
	codec := domain.Events()
	if e.Events, err = eventstore.Open(ctx, js, eventstore.Config{
		Replicas: cfg.Replicas, Upcaster: codec, DuplicateWindow: time.Duration(cfg.DuplicateWindow),
		// An event this version cannot decode makes its commit damaged: refused
		// on load, skipped by projections, until an operator sets it aside.
		Check: func(env eventstore.Envelope) error {
			_, err := codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			return err
		},
	}); err != nil {
		return nil, err
	}
	idem, err := idempotency.Open(ctx, js, idempotency.Config{TTL: time.Duration(cfg.IdempotencyTTL), Replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	names, err := reservations.Open(ctx, js, reservations.Config{Replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	if e.DeadLetters, err = worker.OpenDeadLetters(ctx, js, worker.DeadConfig{Replicas: cfg.Replicas}); err != nil {
		return nil, err
	}
	tm, err := timers.Open(ctx, js, timers.Config{Replicas: cfg.Replicas, Log: log, Dead: e.DeadLetters, Concurrency: cfg.PartConcurrency["timers"]})
	if err != nil {
		return nil, err
	}
	marks, err := watermarks.Open(ctx, js, "", cfg.Replicas)
	if err != nil {
		return nil, err
	}
	from, to, _ := accounts.ParseRange(cfg.StoreAccountRange) // validated
	if e.Accounts, err = accounts.Open(ctx, js, accounts.Config{Replicas: cfg.Replicas, From: from, To: to}); err != nil {
		return nil, err
	}
	if err := restoreAccounts(ctx, e.Events, e.Accounts, codec, log); err != nil {
		return nil, err
	}
	snaps, err := snapshots.Open(ctx, js, snapshots.Config{Replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	e.streams.spareBucket(snapshots.DefaultBucket) // an optimisation: commands read every commit without it
	payouts, err := e.firmBanking(cfg)
	if err != nil {
		return nil, err
	}
	holidays, err := cfg.settlementHolidays()
	if err != nil {
		return nil, err
	}
	logHolidays(log, cfg.SettlementHolidays, holidays)
	e.Commands, err = commands.New(commands.Deps{Events: e.Events, Codec: codec, Names: names, Timers: tm, Watermarks: marks, Accounts: e.Accounts}, commands.Config{
		StoreFeeBps:        cfg.StoreFeeBps,
		SettlementDays:     cfg.SettlementDays,
		SettlementHolidays: holidays,
		CollectAccount:     domain.BankAccount{Bank: cfg.CollectBank, Number: cfg.CollectNumber, Holder: cfg.CollectHolder},
		CancelWindow:       time.Duration(cfg.CancelWindow),
		DepositorNameMax:   cfg.DepositorNameMax,
		NameGrace:          time.Duration(cfg.NameGrace),
		PaymentDeadline:    time.Duration(cfg.PaymentDeadline),
		MaxUnpaidOrders:    cfg.MaxUnpaidOrders,
		MinWithdrawal:      cfg.MinWithdrawal,
		FinaliseRetry:      cfg.finaliseRetry(),
		Snapshots:          snaps,
		BeforeAppend:       e.syncs.SyncPointFunc(),
	}, log)
	if err != nil {
		return nil, err
	}
	cmds := e.Commands
	if err := restoreNames(ctx, e.Events, names, cmds.Orders, codec, log); err != nil {
		return nil, err
	}
	procs, err := process.New(process.Config{Codec: codec, Orders: cmds.Orders, Deposits: cmds.Deposits, Wallets: cmds.Wallets, Payouts: cmds.Payouts, Provider: payouts,
		RefusalLag: time.Duration(cfg.FirmbankStatusLag), SettleTimeout: time.Duration(cfg.FirmbankSettleTimeout), PendingRetry: time.Duration(cfg.FirmbankPendingRetry),
		Sends: process.SendsIn(e.DeadLetters, partPayouts), Log: log})
	if err != nil {
		return nil, err
	}
	// Under the embedded server's "fast" profile the event stream is not
	// fsynced on every write, and neither are the read models.
	if e.Models, err = openReadModels(filepath.Join(cfg.DataDir, "readmodels.db"), &projections.Options{Codec: codec, Unsynced: cfg.embeddedFast()}, log); err != nil {
		return nil, err
	}
	if err := e.checkStream(ctx, js); err != nil {
		log.Error().Err(err).Msg("refusing to start: the event stream is not what these read models were built from (replaced, purged, emptied, or commits lost)")
		return nil, err
	}
	e.Runner = projections.NewRunner(e.Events, e.Models, log)
	e.Runner.SetDeadLetters(e.DeadLetters)
	if e.syncs != nil {
		// The read models are synced: never ahead of the durable stream.
		stream := e.Events.Config().Stream
		e.Runner.BeforeCommit(func(ctx context.Context, last eventstore.Seq) error {
			return e.syncs.WaitSeq(ctx, stream, uint64(last))
		})
	}
	if e.startHead, err = e.Events.LastSeq(ctx); err != nil {
		return nil, err
	}
	if e.Parts, err = supervisor.New(supervisor.Config{Log: log}); err != nil {
		return nil, err
	}
	e.Loops = map[string]*worker.Loop{}
	orderReactor, err := e.Events.Reactor(ctx, eventstore.ReactOptions{
		Durable: "react-orders", Types: []string{domain.AggregateOrder}, Dead: e.DeadLetters, Logger: log,
		Concurrency: cfg.PartConcurrency["react-orders"],
	}, procs.ReactToOrder)
	if err != nil {
		return nil, err
	}
	moneyReactor, err := e.Events.Reactor(ctx, eventstore.ReactOptions{
		Durable: "react-money", Types: []string{domain.AggregateWallet, domain.AggregateDeposit}, Dead: e.DeadLetters, Logger: log,
		Concurrency: cfg.PartConcurrency["react-money"],
	}, procs.ReactToMoney)
	if err != nil {
		return nil, err
	}
	// The money of failed payouts goes back on every instance, whoever
	// failed them (the payouts part, an operator).
	returnReactor, err := e.Events.Reactor(ctx, eventstore.ReactOptions{
		Durable: partPayoutReturns, Types: []string{domain.AggregatePayout}, Dead: e.DeadLetters, Logger: log,
		Concurrency: cfg.PartConcurrency.Of(partPayoutReturns),
	}, procs.ReturnFailedPayouts)
	if err != nil {
		return nil, err
	}
	loops := []*worker.Loop{orderReactor, moneyReactor, returnReactor}
	// Payouts are sent by a part of their own: each waits seconds on the
	// provider, several run at once, and no wallet or deposit reaction
	// waits for them. An instance without a provider runs none: its
	// payouts wait unread on the shared consumer for an instance with one.
	if payouts != nil {
		payoutReactor, err := e.Events.Reactor(ctx, eventstore.ReactOptions{
			Durable: partPayouts, Types: []string{domain.AggregatePayout}, Dead: e.DeadLetters, Logger: log,
			Concurrency: cfg.PartConcurrency.Of(partPayouts),
			// A payout pending at the provider waits unacknowledged, for
			// hours if the provider takes that long: room for many, so
			// pending ones never stop new payouts.
			MaxAckPending:  payoutsMaxAckPending,
			HandlerTimeout: payoutsHandlerTimeout,
		}, e.durableFirst(procs.SendPayouts))
		if err != nil {
			return nil, err
		}
		loops = append(loops, payoutReactor)
	}
	source, err := e.bankSource(cfg)
	if err != nil {
		return nil, err
	}
	timerLoop, err := tm.Worker(ctx, func(ctx context.Context, d timers.Due) (time.Duration, error) {
		var (
			wait time.Duration
			err  error
		)
		switch d.Kind {
		case commands.TimerFinaliseCancel:
			wait, err = cmds.Orders.FinaliseCancel(ctx, d.ID)
		case commands.TimerExpireOrder:
			wait, err = cmds.Orders.ExpireOrder(ctx, d.ID)
		case timerReconcilePayouts:
			reporter, ok := payouts.(firmbanking.Reporter)
			return e.runNightly(ctx, tm, payoutsNightly, ok, d, e.reconcilePayoutsNightly(reporter))
		case timerReconcileBank:
			return e.runNightly(ctx, tm, bankNightly, source != nil, d, e.reconcileBankNightly(source, marks, cfg.CollectNumber, time.Duration(cfg.ScanInterval)))
		default:
			return 0, worker.Permanent(fmt.Errorf("timer of unknown kind %q", d.Kind))
		}
		if errors.Is(err, commands.ErrAggregateDamaged) {
			// Not a failure of the timer: it fires once an operator has set
			// the damaged commit aside (reported already), not dead-lettered.
			return damagedTimerWait, nil
		}
		return wait, err
	})
	if err != nil {
		return nil, err
	}
	notifyLoops, err := e.startNotifications(ctx, cfg, js, codec, cmds.Notifications)
	if err != nil {
		return nil, err
	}
	guard := &streamGuard{e: e}
	parts := []supervisor.Part{{Name: partProjections, Run: e.Runner.Run}, {Name: partEventStream, Run: guard.run, ReportsReady: true}}
	if cfg.IdleTrim > 0 {
		parts = append(parts, supervisor.Part{Name: partMemory, Run: e.trimMemory})
	}
	if e.ns != nil {
		parts = append(parts, supervisor.Part{Name: partJetStream, Run: e.watchJetStream, ReportsReady: true})
	}
	parts = append(parts, supervisor.Part{Name: partTimerCheck, Run: func(ctx context.Context) error { return e.checkTimers(ctx, cmds.Orders) }})
	for _, l := range append(append(loops, timerLoop), notifyLoops...) {
		e.Loops[l.Name()] = l
		parts = append(parts, supervisor.Part{Name: l.Name(), Run: l.Run, ReportsReady: true}) // ready once its consumer is there
	}
	if source != nil {
		scanner := &bankfeed.Scanner{
			Source: source, Account: cfg.CollectNumber, IsSubAccount: e.Accounts.InRange, Recorder: recorder{cmds.Deposits}, Watermarks: marks,
			Interval: time.Duration(cfg.ScanInterval), Log: log,
		}
		if err := scanner.Validate(); err != nil {
			return nil, err
		}
		parts = append(parts, supervisor.Part{Name: "bank-scanner", Run: scanner.Run})
	}
	e.Metrics = ops.NewMetrics(&ops.MetricsOptions{Log: log})
	e.Runner.ObserveBatches(e.Metrics.ObserveProjectionBatch)
	sources := e.metricSources(tm, marks, cfg.CollectNumber)
	if e.syncs != nil {
		sources.GroupCommit = func(context.Context) (map[string]uint64, error) { return e.syncs.Stats().Counts(), nil }
	}
	if e.Limiter != nil {
		sources.RateLimit = func(context.Context) (map[string]uint64, error) { return e.Limiter.Stats().Counts(), nil }
	}
	e.Metrics.SetSources(sources)
	if cfg.HTTPListen != "off" {
		var consoleHandler http.Handler
		if e.console, err = e.newConsole(cfg, log); err != nil {
			return nil, err
		} else if e.console != nil {
			consoleHandler = e.console.Handler()
		}
		webhooks, err := e.webhooks(cfg, procs, payouts)
		if err != nil {
			return nil, err
		}
		if e.opsServer, err = ops.New(ops.Config{Listen: cfg.HTTPListen, Metrics: e.Metrics, Readiness: e.readiness(), EnablePprof: cfg.Pprof,
			Console: consoleHandler, Webhooks: webhooks, Log: log}); err != nil {
			return nil, err
		}
		parts = append(parts, supervisor.Part{Name: "http", Run: e.opsServer.Run})
	}
	if e.opsServer != nil {
		// A port in use fails the start instead of a part that keeps failing.
		if err := e.opsServer.Listen(ctx); err != nil {
			return nil, err
		}
		e.sendSimWebhooks()
	}
	for _, p := range parts {
		if err := e.Parts.Add(p); err != nil {
			return nil, err
		}
	}
	if err := e.Parts.Start(context.Background()); err != nil {
		return nil, err
	}
	var sim server.BankSim
	if e.Sim != nil {
		sim = simTransfers{e.Sim}
	}
	var chatSim server.ChatSim
	if e.ChatSim != nil {
		chatSim = chatSimMessages{e.ChatSim}
	}
	e.server, err = server.New(server.Config{
		MaxPerIdentity: cfg.MaxRequestsPerIdentity,
		Conn:           e.svc, Orders: cmds.Orders, Deposits: cmds.Deposits, Wallets: cmds.Wallets, Links: cmds.Links, Payouts: cmds.Payouts,
		PayoutStatus: payoutStatus(payouts), PayoutStatusLag: cmp.Or(time.Duration(cfg.FirmbankStatusLag), time.Minute), Events: e.Events, Idempotency: idem,
		ReadModels: e.Models, Runner: e.Runner, BankSim: sim, Observer: e.Metrics, Log: log, Tenant: cfg.Tenant, LockID: lockID,
		Notifications: cmds.Notifications, Limiter: limiterState{e.Limiter}, ChatSim: chatSim,
		DeadLetters:     deadLetterDesk{dead: e.DeadLetters, loops: e.Loops},
		ReadModelsReady: e.readModelsCaughtUpForQueries,
		Durable:         e.syncs.WaitDirtyFunc(),
	})
	if err != nil {
		return nil, err
	}
	if err := e.server.Start(); err != nil {
		e.server = nil
		return nil, err
	}
	for _, ep := range e.server.Endpoints() {
		e.Metrics.DeclareEndpoints(ep.Name)
	}
	e.streams.freeze()
	e.serving.Store(true)
	e.rearmTimers(cmds.Orders)
	for _, n := range []struct {
		job nightlyJob
		at  string
	}{{payoutsNightly, cfg.ReconcilePayoutsAt}, {bankNightly, cfg.ReconcileBankAt}} {
		if err := e.armNightly(ctx, tm, n.job, n.at, cfg.ReconcileTimeZone); err != nil {
			return nil, fmt.Errorf("%s: %w", n.job.flag, err)
		}
	}
	log.Info().Str("service", api.ServiceName).Str("version", api.Version).Msg("bankbook is serving")
	return e, nil
}

// bankSource returns the account-scan API the scanner polls, if any.
func (e *Engine) bankSource(cfg Config) (bankfeed.Source, error) {
	switch {
	case cfg.BankSim:
		bank := cfg.Sim
		if bank == nil {
			var err error
			if bank, err = bankfeed.NewSimBank(bankfeed.SimOptions{Lag: time.Duration(cfg.BankSimLag)}); err != nil {
				return nil, err
			}
		}
		e.Sim = bank
		e.log.Info().Stringer("lag", time.Duration(cfg.BankSimLag)).Stringer("scan_interval", time.Duration(cfg.ScanInterval)).
			Msg("simulated bank: transfer with 'bankbook bank-sim transfer' or bankbook.sim.bank.transfer")
		return bank.SourceWith(cfg.CollectNumber, e.Accounts.InRange), nil
	case cfg.BankURL != "":
		token, err := secret(cfg.BankToken, cfg.BankTokenFile)
		if err != nil {
			return nil, fmt.Errorf("bank-token-file: %w", err)
		}
		src := &bankfeed.HTTPSource{URL: cfg.BankURL, Token: token}
		if err := src.Validate(); err != nil {
			return nil, fmt.Errorf("bank-url: %w", err)
		}
		return src, nil
	}
	e.log.Info().Msg("no bank feed configured: deposits arrive through bankbook.cmd.deposit.record and 'bankbook deposit import'")
	return nil, nil
}

// firmBanking returns the payout provider: a real one at --firmbank-url, the
// simulated one (over loopback HTTP) with --bank-sim, or none.
func (e *Engine) firmBanking(cfg Config) (firmbanking.Provider, error) {
	switch {
	case cfg.FirmbankURL != "":
		token, err := secret(cfg.FirmbankToken, cfg.FirmbankTokenFile)
		if err != nil {
			return nil, fmt.Errorf("firmbank-token-file: %w", err)
		}
		c := &firmbanking.Client{BaseURL: cfg.FirmbankURL, Token: token}
		return c, c.Validate()
	case cfg.BankSim:
		e.firmFee = 500
		fake := firmbanking.NewFakeService(firmbanking.FakeOptions{Token: "sim", Fee: e.firmFee, SettleAfter: 2 * time.Second, FailAccounts: []string{"000000000000"}})
		ln, err := net.Listen("tcp", cfg.FirmbankSimListen)
		if err != nil {
			return nil, fmt.Errorf("firmbank-sim-listen: %w", err)
		}
		srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		e.closers = append(e.closers, srv.Close)
		e.firmSim = fake
		e.log.Info().Str("url", "http://"+ln.Addr().String()).Msg("simulated firm banking: fee 500, settles after 2s, account 000000000000 fails")
		return &firmbanking.Client{BaseURL: "http://" + ln.Addr().String(), Token: "sim"}, nil
	}
	e.log.Warn().Msg("no firm-banking provider: this instance runs no payouts part; withdrawals and refunds to the bank are recorded as requested and sent by an instance with a provider")
	return nil, nil
}

// webhooksPath is where the firm-banking provider's webhooks arrive, under
// ops.WebhooksPath; webhookEndpoint is their name in
// bankbook_requests_total, with the status answered as its code.
const (
	webhooksPath    = ops.WebhooksPath + "firmbank"
	webhookEndpoint = "webhook_firmbank"
	// webhookTimeout bounds the handling of one webhook: past it the
	// provider is answered 500 and delivers it again.
	webhookTimeout = 15 * time.Second
)

// webhooks is the handler of the provider's webhooks (ops.WebhooksPath),
// or nil: with a webhook secret, or with the simulated provider, which
// signs with a secret made for this start when none is given.
func (e *Engine) webhooks(cfg Config, procs *process.Managers, provider firmbanking.Provider) (http.Handler, error) {
	secrets, err := cfg.webhookSecrets()
	if err != nil {
		return nil, err
	}
	if e.firmSim != nil && len(secrets) == 0 {
		secrets = [][]byte{[]byte(rand.Text())}
	}
	if len(secrets) == 0 || provider == nil {
		return nil, nil
	}
	if e.firmSim != nil {
		e.simWebhookSecret = string(secrets[0])
	}
	mux := http.NewServeMux()
	notify := func(ctx context.Context, ev firmbanking.WebhookEvent) error {
		// The provider waits for the answer: a status call and a command.
		ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
		defer cancel()
		err := procs.ResultNotified(ctx, ev)
		switch {
		case errors.Is(err, firmbanking.ErrResultContradicts):
			e.log.Error().Err(err).Str("payout_id", ev.Transfer.ID).Str("event_id", ev.EventID).Msg("the provider's result contradicts the recorded one")
		case err != nil:
			e.log.Warn().Err(err).Str("payout_id", ev.Transfer.ID).Str("event_id", ev.EventID).Msg("firm-banking webhook not taken")
		}
		return err
	}
	observe := func(status int, d time.Duration) { e.Metrics.ObserveRequest(webhookEndpoint, status, d) }
	mux.Handle(webhooksPath, &firmbanking.WebhookReceiver{Secrets: secrets, Notify: notify, Observe: observe})
	e.Metrics.DeclareEndpoints(webhookEndpoint)
	e.log.Info().Str("path", webhooksPath).Int("secrets", len(secrets)).Msg("firm-banking webhooks: signed results are confirmed with the provider's status and recorded at once")
	return mux, nil
}

// sendSimWebhooks has the simulated provider post its webhooks to this
// engine's HTTP listener, once a second, until the engine stops.
func (e *Engine) sendSimWebhooks() {
	if e.firmSim == nil || e.simWebhookSecret == "" {
		return
	}
	addr, ok := e.opsServer.Addr().(*net.TCPAddr)
	if !ok {
		return
	}
	if addr.IP.IsUnspecified() {
		addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: addr.Port}
	}
	e.firmSim.SetWebhook("http://"+addr.String()+webhooksPath, e.simWebhookSecret)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.firmSim.RunWebhooks(ctx, time.Second)
	}()
	e.closers = append(e.closers, func() error { cancel(); <-done; return nil })
}

// openReadModels opens the read-model file. A damaged one (truncated,
// overwritten) is moved aside, kept for inspection, and replaced by a new
// file that the Runner rebuilds from the event log: the read models are
// derived data, and the log is the truth.
func openReadModels(path string, opts *projections.Options, log zerolog.Logger) (*projections.Store, error) {
	models, err := projections.Open(path, opts)
	if err == nil && opts.Unsynced != models.Unsynced() {
		log.Warn().Str("file", path).Msg("the machine's boot ID cannot be read: the read models are fsynced on every batch, as under durability safe")
	}
	if !errors.Is(err, projections.ErrDamaged) {
		return models, err
	}
	aside, merr := projections.MoveAside(path, time.Now())
	if merr != nil {
		return nil, fmt.Errorf("%w (%v)", err, merr)
	}
	log.Error().Err(err).Str("file", path).Str("moved_to", aside).
		Msg("read-model file damaged: moved aside; rebuilding the read models from the event log (delete the damaged copy once inspected)")
	return projections.Open(path, opts)
}

// recorder records the scanner's transactions as deposits.
type recorder struct{ h *commands.Deposits }

func (r recorder) Record(ctx context.Context, t bankfeed.Transaction) (bool, error) {
	rep, err := r.h.RecordDeposit(ctx, commands.Meta{Command: api.DepositRecord.Subject, CorrelationID: r.h.NewID(), Actor: "scanner"},
		api.RecordDepositRequest{BankTxnID: t.BankTxnID, AccountNumber: t.AccountNumber, DepositorName: t.DepositorName, Amount: t.Amount, DepositedAt: t.DepositedAt})
	return err == nil && rep.Outcome != domain.OutcomeDuplicate, err
}

// simTransfers serves bankbook.sim.bank.transfer from the simulated bank.
type simTransfers struct{ bank *bankfeed.SimBank }

func (s simTransfers) Transfer(name string, amount int64, account string) (string, time.Time, error) {
	t, err := s.bank.Transfer(name, amount, account)
	return t.BankTxnID, t.DepositedAt, err
}

// SeedFile is where the embedded server's generated seed of role is kept
// (<data-dir>/auth/<role>.nk).
func (e *Engine) SeedFile(role auth.Role) string {
	return auth.SeedFile(filepath.Join(e.cfg.DataDir, "auth"), role)
}

// ClientURL is the URL clients connect to.
func (e *Engine) ClientURL() string {
	if e.ns != nil {
		return e.ns.ClientURL()
	}
	return e.cfg.NATSURL
}

// Stop drains in-flight commands, stops the projection runner, closes the
// read models and the connection, and shuts the embedded server down. It is
// idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		e.stopping.Store(true)
		e.serving.Store(false) // /readyz says so at once
		if e.stopRearm != nil {
			e.stopRearm()
			e.rearmDone.Wait()
		}
		var errs []error
		if e.server != nil {
			errs = append(errs, e.server.Stop(ctx))
		}
		if e.Parts != nil {
			// A budget of their own, longer than any handler's timeout, so
			// work in flight (a payout) can finish even when the drain used
			// ctx up; and bounded: a part that ignores its context is
			// reported, not waited on.
			pctx, cancel := context.WithTimeout(context.Background(), partsStopTimeout)
			errs = append(errs, e.Parts.Stop(pctx))
			cancel()
		}
		if e.opsServer != nil {
			errs = append(errs, e.opsServer.Close())
		}
		if e.console != nil {
			errs = append(errs, e.console.Close()) // the sessions' NATS connections
		}
		for _, c := range e.closers {
			errs = append(errs, c())
		}
		if e.Models != nil {
			errs = append(errs, e.Models.Close())
		}
		if e.svc != nil {
			e.svc.Close()
		}
		if e.nc != nil {
			e.nc.Close()
		}
		if e.ns != nil {
			e.ns.Shutdown()
		}
		if e.syncs != nil {
			// What the server wrote while shutting down.
			errs = append(errs, e.syncs.Wait(context.Background()), e.syncs.Close())
		}
		if e.unlock != nil {
			errs = append(errs, e.unlock())
		}
		e.stopErr = errors.Join(errs...)
		e.log.Info().Msg("bankbook stopped")
	})
	return e.stopErr
}

// newConsole makes the ops console (cfg.Console), or returns nil: it logs
// people in with the embedded server's identities, so with an external
// NATS it is not served.
func (e *Engine) newConsole(cfg Config, log zerolog.Logger) (*console.Console, error) {
	if !cfg.Console {
		return nil, nil
	}
	if e.ns == nil {
		log.Warn().Msg("ops console not served: it logs people in with the embedded server's identities, and this engine uses an external NATS (--console=false silences this)")
		return nil, nil
	}
	ids, err := auth.Identities(filepath.Join(cfg.DataDir, "auth"), cfg.AuthFile)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for h := range strings.SplitSeq(cfg.ConsoleHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	c, err := console.New(console.Config{URL: e.ClientURL(), Identities: ids, Readiness: e.readiness(), FirmBankingFee: e.firmFee,
		NameGrace:    time.Duration(cfg.NameGrace),
		AllowedHosts: hosts, SecureCookies: cfg.ConsoleSecureCookies, Log: log.With().Str("part", "console").Logger()})
	if err != nil {
		return nil, fmt.Errorf("ops console: %w", err)
	}
	log.Info().Str("path", console.Prefix).Msg("ops console served on the HTTP listener; log in as operator or auditor")
	return c, nil
}

// HTTPAddr is the address /healthz, /readyz and /metrics are served on; nil
// when the HTTP server is off or not listening yet.
func (e *Engine) HTTPAddr() net.Addr {
	if e.opsServer == nil {
		return nil
	}
	return e.opsServer.Addr()
}

// readiness is what /readyz reports: every supervised part, and the read
// models, which are caught up once they have applied the stream as it was
// when the engine started (new and changed projections rebuilt).
func (e *Engine) readiness() ops.Readiness {
	return ops.ReadinessFunc(func(ctx context.Context) ([]ops.PartStatus, error) {
		var out []ops.PartStatus
		service := ops.PartStatus{Name: "api", State: ops.StateStarting, Reason: "not serving yet, or stopping"}
		if e.serving.Load() {
			service = ops.PartStatus{Name: "api", State: ops.StateRunning, Ready: true}
		}
		out = append(out, service, natsStatus(map[string]*connHealth{"event store": &e.ncHealth, "service": &e.svcHealth}))
		out = append(out, e.streams.conditions(ctx, e.ncHealth.why())...) // the streams and the storage, at once
		rm := ops.PartStatus{Name: "readmodels", State: ops.StateStarting}
		for _, st := range e.Parts.Statuses() {
			out = append(out, ops.PartStatus{Name: st.Name, Ready: st.OK(), State: string(st.State), Reason: st.Detail,
				Since: st.Since, Restarts: uint64(st.Restarts), LastError: st.LastError})
			if st.Name == partProjections && st.State == supervisor.Failing {
				rm.State, rm.Since = ops.StateFailing, st.Since // the runner that feeds them fails
			}
		}
		if err := e.readModelsCaughtUp(); err != nil {
			rm.Reason = err.Error()
		} else {
			rm.Ready, rm.State = true, ops.StateRunning
		}
		return append(out, rm), nil
	})
}

// connHealth is what the handlers of one of the engine's NATS connections
// last saw: nil while it is connected, otherwise why it is not. Readiness
// reads it without taking the connection's lock, which a write to a server
// that stopped reading can hold for long.
type connHealth struct{ down atomic.Pointer[string] }

func (h *connHealth) lost(why string) { h.down.Store(&why) }
func (h *connHealth) connected()      { h.down.Store(nil) }

// why is why the connection is down, "" while it is connected.
func (h *connHealth) why() string {
	if why := h.down.Load(); why != nil {
		return *why
	}
	return ""
}

// natsStatus is the readiness of the engine's NATS connections (by what
// they serve): failing while any of them is not connected (reconnecting,
// or closed for good), with why. Every part waits on NATS then, though a
// consumer notices only when its heartbeats stop.
func natsStatus(conns map[string]*connHealth) ops.PartStatus {
	var down []string
	for _, name := range slices.Sorted(maps.Keys(conns)) {
		if why := conns[name].why(); why != "" {
			down = append(down, "the "+name+" connection is "+why)
		}
	}
	if len(down) > 0 {
		return ops.PartStatus{Name: "nats", State: ops.StateFailing, Reason: strings.Join(down, "; ")}
	}
	return ops.PartStatus{Name: "nats", State: ops.StateRunning, Ready: true}
}

// readModelsCaughtUp is nil once the read models have applied the stream as
// it was when the engine started, new and changed projections rebuilt: what
// /readyz calls caught up. Until then read-model queries answer 503 (a
// rebuilt or new file would show empty or partial views).
func (e *Engine) readModelsCaughtUp() error { return e.caughtUp(false) }

// readModelsCaughtUpForQueries is readModelsCaughtUp as the queries that
// wait for it tell their clients: why read models stopped, which may name
// files, is for /readyz and the log.
func (e *Engine) readModelsCaughtUpForQueries() error { return e.caughtUp(true) }

func (e *Engine) caughtUp(forQueries bool) error {
	ready, reason := e.Runner.Ready()
	cp := e.Runner.Checkpoint()
	if forQueries && cp >= e.startHead {
		// Every projection holds the stream as it was at start: queries
		// may read them, whatever befell the runner since (a stall is for
		// /readyz, and each query's own wait tells its client). Whether a
		// query happened to see them ready before a stop must not decide
		// it.
		return nil
	}
	if !ready && forQueries && strings.HasPrefix(reason, projections.ReasonStopped) {
		return errors.New(projections.ReasonStopped + ": /readyz says why")
	}
	switch {
	case !ready:
		return errors.New(reason)
	case cp < e.startHead:
		return fmt.Errorf("catching up: at seq %d of %d", cp, e.startHead)
	}
	return nil
}

// metricSources are the gauges /metrics reads at scrape time.
func (e *Engine) metricSources(tm *timers.Timers, marks *watermarks.Store, account string) ops.Sources {
	var conns func(context.Context) (map[string]uint64, error)
	if e.ns != nil {
		conns = e.ns.Connections
	}
	return ops.Sources{
		Connections: conns,
		Parts:       e.readiness(),
		ProjectionLag: func(ctx context.Context) (uint64, error) {
			head, err := e.Events.LastSeq(ctx)
			return e.Runner.Lag(head), err
		},
		ConsumerPending: func(ctx context.Context) (map[string]uint64, error) {
			out := map[string]uint64{}
			for name, l := range e.Loops {
				n, err := l.Pending(ctx)
				if errors.Is(err, worker.ErrNotRunning) {
					continue
				}
				if err != nil {
					return nil, err
				}
				out[name] = n
			}
			return out, nil
		},
		TimersPending: tm.Armed,
		Reconciliations: func(context.Context) (map[string]ops.LastRun, error) {
			runs, err := e.Models.LatestReconcileRuns()
			if err != nil {
				return nil, err
			}
			out := make(map[string]ops.LastRun, len(runs))
			for kind, r := range runs {
				at, err := time.Parse(time.RFC3339Nano, r.CompletedAt)
				if err != nil {
					return nil, fmt.Errorf("reconciliation run %s: completed_at %q: %w", r.RunID, r.CompletedAt, err)
				}
				out[kind] = ops.LastRun{At: at, Findings: r.Findings}
			}
			return out, nil
		},
		Notifications: func(context.Context) (map[string]uint64, error) {
			counts, err := e.Models.NotificationCounts()
			out := make(map[string]uint64, len(counts))
			for status, n := range counts {
				out[status] = uint64(n)
			}
			return out, err
		},
		PartWork: func(context.Context) (map[string]map[string]uint64, error) {
			out := map[string]map[string]uint64{}
			for name, l := range e.Loops {
				st := l.Stats()
				out[name] = map[string]uint64{"processed": st.Processed, "retried": st.Retried, "deferred": st.Deferred,
					"dead_lettered": st.DeadLettered, "panics": st.Panics}
			}
			if e.cfg.IdleTrim > 0 {
				out[partMemory] = map[string]uint64{"processed": e.trims.Load()}
			}
			return out, nil
		},
		DeadLetters: func(ctx context.Context) (uint64, error) {
			counts, err := e.DeadLetters.Count(ctx)
			var n uint64
			for _, c := range counts {
				n += c
			}
			return n, err
		},
		StoreAccountsRemaining: e.Accounts.Remaining,
		ScanWatermarks: func(ctx context.Context) (map[string]time.Time, error) {
			wm, err := marks.Watermark(ctx, domain.NormalizeAccountNumber(account))
			if err != nil || wm.IsZero() {
				return nil, err
			}
			return map[string]time.Time{account: wm}, nil
		},
	}
}

// damagedTimerWait is how long a timer of an order with a damaged commit
// waits before it looks again.
const damagedTimerWait = time.Minute

// StartEmbedded starts the embedded nats-server of cfg.DataDir as serve
// does, without the engine, for tools that work on a stopped engine's data
// (bankbook restore): with the identities in <data-dir>/auth (created on
// first start) or cfg.AuthFile, listening on cfg.Listen ("": in-process
// connections only), its JetStream files in storeDir ("": where serve
// keeps them, <data-dir>/jetstream). The caller locks the data directory.
func StartEmbedded(cfg Config, storeDir string, log zerolog.Logger) (*embedded.Server, error) {
	srv, _, err := startEmbedded(cfg, storeDir, log)
	return srv, err
}

// logGeneratedSeeds says which roles' seeds the embedded server's start
// generated in dir: every one on the data directory's first start; any
// other time a seed file was removed to rotate its key, or lost, and
// clients holding the old seed are now refused without a word from the
// server.
func logGeneratedSeeds(log zerolog.Logger, dir string, roles []string, firstStart bool) {
	switch {
	case len(roles) == 0:
	case firstStart:
		log.Info().Str("dir", dir).Strs("roles", roles).Msg("generated one NKey seed per role")
	default:
		log.Warn().Str("dir", dir).Strs("roles", roles).
			Msg("generated a new NKey seed for roles whose seed file was missing: clients holding an earlier seed of these roles are refused until given the new one")
	}
}

// RestoreMarker is the file bankbook restore keeps in a data directory
// until every stream is in place; Start refuses a directory that has it.
const RestoreMarker = "RESTORE-INCOMPLETE"

// ErrRestoreIncomplete means the data directory holds a restore that did
// not finish: serving it would run on an empty or partial log.
var ErrRestoreIncomplete = errors.New("engine: a restore into this data directory did not finish")

// StoreDir is where serve keeps the embedded server's JetStream files.
func StoreDir(dataDir string) string { return filepath.Join(dataDir, "jetstream") }

// startEmbedded starts the embedded server with the identities in
// <data-dir>/auth (created on first start) or the operator's --auth-file,
// and its files in storeDir ("": StoreDir).
func startEmbedded(cfg Config, storeDir string, log zerolog.Logger) (_ *embedded.Server, generated []string, err error) {
	if storeDir == "" {
		storeDir = StoreDir(cfg.DataDir)
	}
	dir := filepath.Join(cfg.DataDir, "auth")
	for _, r := range auth.Roles {
		if cfg.AuthFile != "" && r != auth.Engine {
			continue // created too, but only the engine's is used
		}
		if _, err := os.Stat(auth.SeedFile(dir, r)); errors.Is(err, fs.ErrNotExist) {
			generated = append(generated, string(r)) // Identities creates it
		}
	}
	ids, err := auth.Identities(dir, cfg.AuthFile)
	if err != nil {
		return nil, nil, err
	}
	accounts, err := auth.Render(auth.Tenant{Users: ids, Simulators: cfg.BankSim || cfg.ChatSim, MaxConnections: cfg.MaxConnectionsPerIdentity})
	if err != nil {
		return nil, nil, err
	}
	durability, _ := embedded.ParseDurability(cfg.Durability)
	srv, err := embedded.Start(embedded.Config{
		StoreDir: storeDir, Listen: cfg.Listen, Durability: durability, EngineSyncs: cfg.GroupCommit,
		Accounts: accounts, EngineSeed: auth.SeedFile(dir, auth.Engine), MaxConnections: cfg.MaxConnections, Log: &log,
	})
	return srv, generated, err
}

// payoutStatus is server.Config.PayoutStatus for provider (nil: none).
func payoutStatus(provider firmbanking.Provider) func(context.Context, string) (string, error) {
	if provider == nil {
		return nil
	}
	return func(ctx context.Context, id string) (string, error) {
		res, err := provider.Status(ctx, id)
		if errors.Is(err, firmbanking.ErrUnknownTransfer) {
			return "", nil
		}
		return string(res.Status), err
	}
}

// serviceConnName names the engine's service connection (Engine.svc) to
// the NATS server.
const serviceConnName = "bankbook-engine-service"

// A connection whose server stops answering without closing it (a frozen
// server, a network that drops packets and sends no reset) is seen only by
// its pings: each connection pings every pingInterval and counts as stale,
// and reconnects (in a cluster, to another server), once a ping is still
// unanswered maxPingsOut intervals after it was sent. The engine's
// connections are thus noticed down 20-30 s after their server stopped
// answering, where nats.go's default interval (2 min) took 4-6 min, all
// the while /readyz said nats was ready. A ping is a few bytes; a loaded
// server answers within seconds, so 20 s of patience does not give up on
// a slow one.
const (
	defaultPingInterval = 10 * time.Second
	maxPingsOut         = 2
)

// pingInterval is defaultPingInterval; tests shorten it.
var pingInterval = defaultPingInterval

// connOptions are the options of each of the engine's NATS connections: it
// reconnects for ever, notices a server that stopped answering by its pings
// (pingInterval), and its handlers log what happens to it and keep health
// current. Errors are sampled: a client's flood can make the server
// report a slow consumer for every message it drops. stopping reports
// whether the engine is stopping, when it closes its connections itself.
func connOptions(log zerolog.Logger, stopping func() bool, health *connHealth) []nats.Option {
	errs := logsample.Flood(log)
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // ClosedHandler says so
			}
			why := "reconnecting"
			if err != nil {
				why += " (" + err.Error() + ")"
			}
			health.lost(why)
			log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			why, err := "closed", nc.LastError()
			if err != nil {
				why += " (" + err.Error() + ")"
			}
			health.lost(why)
			if stopping() {
				log.Info().Msg("NATS connection closed")
				return
			}
			// Closed for good (the server refused it, say): nothing this
			// connection serves works any more.
			log.Error().Err(err).Msg("NATS connection closed for good: no reconnect follows; restart the engine")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			health.connected()
			log.Info().Str("server", nc.ConnectedServerName()).Msg("reconnected to NATS") // its URL is a default for an in-process connection
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := errs.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS reported an error")
		}),
	}
}

// logHolidays says which holiday calendar settlement dates are counted on,
// and warns when it holds no date from today on (Asia/Seoul): a calendar
// nobody has extended since.
func logHolidays(log zerolog.Logger, file string, h domain.Holidays) {
	if file == "" {
		return
	}
	dates := h.Dates()
	ev := log.Info()
	today := time.Now().In(domain.Seoul()).Format(domain.DateLayout)
	if len(dates) == 0 || dates[len(dates)-1] < today {
		ev = log.Warn()
	}
	ev = ev.Str("settlement_holidays", file).Int("dates", len(dates))
	if len(dates) == 0 {
		ev.Msg("the settlement holiday calendar is empty: settlement dates skip weekends only")
		return
	}
	ev = ev.Str("first", dates[0]).Str("last", dates[len(dates)-1])
	if dates[len(dates)-1] < today {
		ev.Msg("the settlement holiday calendar holds no date from today on: settlement dates skip weekends only until it is extended")
		return
	}
	ev.Msg("settlement dates skip the holidays of the calendar")
}

// secret is value, or the contents of file when one is named.
func secret(value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// checkStream refuses read models built from another event stream (deleted
// and recreated) or from more of it than it now holds (emptied).
func (e *Engine) checkStream(ctx context.Context, js jetstream.JetStream) error {
	st, err := js.Stream(ctx, e.Events.Config().Stream)
	if err != nil {
		return err
	}
	si, err := st.Info(ctx)
	if err != nil {
		return err
	}
	var lost []eventstore.Seq
	if si.State.NumDeleted > 0 {
		// Which ones, for the message; the count alone refuses the start.
		if d, err := st.Info(ctx, jetstream.WithDeletedDetails(true)); err == nil {
			for _, seq := range d.State.Deleted[:min(len(d.State.Deleted), 10)] {
				lost = append(lost, eventstore.Seq(seq))
			}
		}
	}
	return e.Models.CheckStream(projections.StreamInfo{Name: si.Config.Name, Created: si.Created,
		FirstSeq: eventstore.Seq(si.State.FirstSeq), LastSeq: eventstore.Seq(si.State.LastSeq),
		Lost: uint64(si.State.NumDeleted), LostSeqs: lost})
}

// restoreAccounts writes the store links' dedicated account numbers back
// into the accounts bucket when it has no counter while the event stream
// holds links: a bucket deleted, or restored without its entries. It runs
// before any command is taken: a counter that started again would hand a
// new link a number a store already has, and that store's payments with it.
func restoreAccounts(ctx context.Context, events *eventstore.Store, dir *accounts.Directory, codec *domain.Codec, log zerolog.Logger) error {
	if ok, err := dir.HasCounter(ctx); err != nil || ok {
		return err
	}
	links := map[string]string{}
	err := events.ReadType(ctx, domain.AggregateLink, func(c eventstore.Commit) error {
		if c.Damaged != nil {
			log.Warn().Uint64("seq", uint64(c.Seq)).Str("link_id", c.AggregateID).Err(c.Damaged).
				Msg("restoring the accounts bucket: a link commit that cannot be read is passed over; if it linked the store, its number may be given again")
		}
		for _, env := range c.Events {
			if env.EventType != (domain.StoreLinked{}).EventType() {
				continue // only the link's first event holds its number
			}
			ev, err := codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				return fmt.Errorf("restore the accounts bucket: seq %d: %w", c.Seq, err)
			}
			if l, ok := ev.(domain.StoreLinked); ok {
				links[l.LinkID] = l.DedicatedAccount.Number
			}
		}
		return nil
	})
	if err != nil || len(links) == 0 {
		return err
	}
	log.Warn().Int("links", len(links)).Msg("the accounts bucket has no counter while the event stream holds store links: writing their numbers back")
	if err := dir.Restore(ctx, links); err != nil {
		return fmt.Errorf("restore the accounts bucket: %w", err)
	}
	return nil
}

// restoreNames reserves the depositor names that open and recently closed
// orders still need again, from the order commits in the event stream,
// when the depositor-name bucket is not marked as holding every
// reservation: a bucket deleted, or restored without its entries (and,
// once, the bucket of an engine from before the mark). It runs before any
// command is taken or deposit matched: a name handed out again would let a
// transfer meant for an open order pay a new one. Orders whose commits
// cannot all be read keep their names whatever their state.
//
// It folds the order commits in stream order, holding only the orders that
// may still need a name (commands.Orders.NameKeeper): one that needs none
// after a commit is dropped and remembered by its ID alone, and should a
// later commit of it come, a second pass folds it again from its first
// commit. So its memory follows the open and recently closed orders (and
// the IDs of the others), not every order ever placed.
func restoreNames(ctx context.Context, events *eventstore.Store, names *reservations.Store, orders *commands.Orders, codec *domain.Codec, log zerolog.Logger) error {
	if kept, err := names.Kept(ctx); err != nil || kept {
		return err
	}
	keeps, err := orders.NameKeeper(ctx)
	if err != nil {
		return fmt.Errorf("restore depositor names: %w", err)
	}
	byID := map[string]domain.Order{}
	unread := map[string]bool{}
	// fold applies commit c to o; an order with a commit it cannot read is
	// noted in unread.
	fold := func(o domain.Order, c eventstore.Commit) domain.Order {
		if c.Damaged != nil {
			log.Warn().Uint64("seq", uint64(c.Seq)).Str("order_id", c.AggregateID).Err(c.Damaged).
				Msg("restoring depositor names: an order commit that cannot be read; the order keeps its name")
			unread[c.AggregateID] = true
			return o
		}
		for _, env := range c.Events {
			ev, err := codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				log.Warn().Uint64("seq", uint64(c.Seq)).Str("order_id", c.AggregateID).Err(err).
					Msg("restoring depositor names: an order event this engine cannot read; the order keeps its name")
				unread[c.AggregateID] = true
				break
			}
			o = o.Apply(ev)
		}
		return o
	}
	dropped, again := map[string]bool{}, map[string]bool{}
	err = events.ReadType(ctx, domain.AggregateOrder, func(c eventstore.Commit) error {
		id := c.AggregateID
		if dropped[id] {
			again[id] = true // its state is gone: folded again below
			return nil
		}
		o := fold(byID[id], c)
		if !unread[id] && o.Exists() && !keeps(o) {
			delete(byID, id)
			dropped[id] = true
			return nil
		}
		byID[id] = o
		return nil
	})
	if err == nil && len(again) > 0 {
		// The orders that came back after being dropped, folded anew from
		// their first commit, as read the first time.
		err = events.ReadType(ctx, domain.AggregateOrder, func(c eventstore.Commit) error {
			if again[c.AggregateID] {
				byID[c.AggregateID] = fold(byID[c.AggregateID], c)
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("restore depositor names: %w", err)
	}
	list := make([]domain.Order, 0, len(byID))
	for id, o := range byID {
		if unread[id] && o.Exists() {
			o.Status = domain.StatusAwaitingDeposit // its name is kept as an open order's
		}
		list = append(list, o)
	}
	// The first submitted first: of two orders given one name while the
	// names were lost, the earlier keeps it.
	slices.SortFunc(list, func(a, b domain.Order) int {
		return cmp.Or(a.SubmittedAt.Compare(b.SubmittedAt), cmp.Compare(a.ID, b.ID))
	})
	if len(list) > 0 {
		restored, taken, err := orders.RestoreNames(ctx, list, keeps) // the rule the orders were dropped by
		if err != nil {
			return fmt.Errorf("restore depositor names: %w", err)
		}
		log.Warn().Int("orders", len(list)).Int("orders_needing_no_name", len(dropped)-len(again)).Int("names_reserved", restored).Int("names_held_by_other_orders", len(taken)).
			Msg("the depositor-name bucket is not marked as holding every reservation: reserved again the names of open and recently closed orders")
	}
	return names.MarkKept(ctx)
}

// rearmTimers re-arms, in the background once the read models have caught
// up, the timer of every open order (a reserved cancellation, an expiry):
// a purged or lost timers stream is repaired from state. Arming is
// idempotent: a timer still scheduled is replaced, not doubled.
func (e *Engine) rearmTimers(orders *commands.Orders) {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopRearm = cancel
	e.rearmDone.Add(1)
	go func() {
		defer e.rearmDone.Done()
		if err := e.Runner.WaitFor(ctx, e.startHead); err != nil {
			return
		}
		ids, err := e.Models.OpenOrderIDs()
		if err == nil {
			_, err = orders.RearmTimers(ctx, ids) // logs what it armed
		}
		if err != nil && ctx.Err() == nil {
			e.log.Error().Err(err).Msg("re-arming the timers of open orders")
		}
	}()
}
