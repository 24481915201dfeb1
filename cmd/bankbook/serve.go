package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
)

// serveFlags binds every engine.Config field to a flag. Environment variables
// BANKBOOK_<FLAG> (upper case, '-' as '_') and the JSON file named by --config
// fill the same struct; precedence is flag > environment > file > default.
func serveFlags(cfg *engine.Config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "JSON config file (keys are the flag names with '_' for '-')")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for JetStream files and read models")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "embedded NATS client address HOST:PORT")
	fs.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL, "use this external NATS cluster instead of the embedded server (no credentials in the URL)")
	fs.StringVar(&cfg.NKey, "nats-nkey", cfg.NKey, "external NATS: the engine identity's NKey seed file")
	fs.StringVar(&cfg.Creds, "nats-creds", cfg.Creds, "external NATS: .creds file (JWT)")
	fs.StringVar(&cfg.User, "nats-user", cfg.User, "external NATS: user name (with --nats-password-file)")
	fs.StringVar(&cfg.PasswordFile, "nats-password-file", cfg.PasswordFile, "external NATS: file holding the user's password")
	fs.StringVar(&cfg.CA, "nats-ca", cfg.CA, "external NATS: CA certificate file for TLS")
	fs.StringVar(&cfg.Cert, "nats-cert", cfg.Cert, "external NATS: client certificate file for TLS")
	fs.StringVar(&cfg.Key, "nats-key", cfg.Key, "external NATS: client key file for TLS")
	fs.StringVar(&cfg.Tenant, "tenant", cfg.Tenant, "external NATS: the tenant this engine serves (bankbook auth config --tenant)")
	fs.StringVar(&cfg.AuthFile, "auth-file", cfg.AuthFile, "embedded server: the operator's own users and roles instead of the generated identities (docs/security.md)")
	fs.StringVar(&cfg.Durability, "durability", cfg.Durability, "embedded server write durability: safe (fsync every write) or fast")
	fs.BoolVar(&cfg.GroupCommit, "group-commit", cfg.GroupCommit, "under safe with the embedded server: concurrent writes share syncs of the store's file system (Linux syncfs) instead of one fsync each; every write is still durable before it is relied on (docs/performance.md, ADR 0012)")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "stream and bucket replicas (cluster only)")
	fs.Var(&cfg.StartTimeout, "start-timeout", "external NATS: how long to keep starting again while NATS or JetStream is temporarily unavailable (a node not up yet, a cluster electing leaders); 0: exit at the first failure")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "json or console (default json; console on a terminal)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.Var(&cfg.CancelWindow, "cancel-window", "scan window after submit before a reserved cancellation is final")
	fs.IntVar(&cfg.DepositorNameMax, "depositor-name-max", cfg.DepositorNameMax, "longest depositor name handed out, suffix included")
	fs.Var(&cfg.NameGrace, "name-grace", "how long a closed order keeps its depositor name (late deposits go to the wallet)")
	fs.Var(&cfg.PaymentDeadline, "payment-deadline", "how long after submission an unpaid order waits for its deposit before it expires")
	fs.IntVar(&cfg.MaxUnpaidOrders, "max-unpaid-orders", cfg.MaxUnpaidOrders, "unpaid orders one buyer may hold (open, or closed unpaid within the name grace)")
	fs.Int64Var(&cfg.MinWithdrawal, "min-withdrawal", cfg.MinWithdrawal, "smallest amount a wallet withdrawal may move, each costing a firm-banking fee (0: any)")
	fs.Var(&cfg.ScanInterval, "scan-interval", "how often the bank feed is scanned")
	fs.Var(&cfg.FinaliseRetry, "finalise-retry", "how long a due cancellation waits for the bank scan before looking again (0: the scan interval; at most 10s on an instance that runs no scanner)")
	fs.BoolVar(&cfg.BankSim, "bank-sim", cfg.BankSim, "run the simulated bank in-process and scan it (demos, tests)")
	fs.Var(&cfg.BankSimLag, "bank-sim-lag", "the simulated bank's refresh lag")
	fs.StringVar(&cfg.BankURL, "bank-url", cfg.BankURL, "account-scan API of a real provider (HTTP)")
	fs.StringVar(&cfg.BankTokenFile, "bank-token-file", cfg.BankTokenFile, "file holding the account-scan API's bearer token (or env BANKBOOK_BANK_TOKEN)")
	fs.StringVar(&cfg.FirmbankURL, "firmbank-url", cfg.FirmbankURL, "firm-banking provider for payouts (HTTP); with --bank-sim a simulated one runs")
	fs.Var(&cfg.FirmbankStatusLag, "firmbank-status-lag", "how long the firm-banking provider may take to show a transfer it accepted: a refused payout it does not know is failed only this long after its first send and after the latest send it may have taken (at most 12h)")
	fs.StringVar(&cfg.FirmbankTokenFile, "firmbank-token-file", cfg.FirmbankTokenFile, "file holding the firm-banking provider's bearer token (or env BANKBOOK_FIRMBANK_TOKEN)")
	fs.Var(&cfg.FirmbankSettleTimeout, "firmbank-settle-timeout", "how long one payout's send polls the provider for its final result (0: 15s; at most 15s)")
	fs.Var(&cfg.FirmbankPendingRetry, "firmbank-pending-retry", "how long a payout still pending at the provider waits before it is asked again (0: 30s; at most 12h); with webhooks only the fallback")
	fs.StringVar(&cfg.ReconcilePayoutsAt, "reconcile-payouts-at", cfg.ReconcilePayoutsAt, "reconcile the firm-banking provider's report of the day before every day at this time (HH:MM or HH:MM:SS, in --reconcile-time-zone); off stops it")
	fs.StringVar(&cfg.ReconcileBankAt, "reconcile-bank-at", cfg.ReconcileBankAt, "reconcile the bank's statement of the day before, read from the bank feed, every day at this time (HH:MM or HH:MM:SS, in --reconcile-time-zone); off stops it")
	fs.StringVar(&cfg.ReconcileTimeZone, "reconcile-time-zone", cfg.ReconcileTimeZone, "the IANA time zone of --reconcile-payouts-at and --reconcile-bank-at")
	fs.StringVar(&cfg.FirmbankWebhookSecretFile, "firmbank-webhook-secret-file", cfg.FirmbankWebhookSecretFile, "file holding the secret(s), one per line, the provider signs its webhooks to POST /webhooks/firmbank with (or env BANKBOOK_FIRMBANK_WEBHOOK_SECRET)")
	fs.StringVar(&cfg.ChatURL, "chat-url", cfg.ChatURL, "Sendbird-compatible chat provider for notifications (HTTP); with --chat-sim and no URL, the fake one")
	fs.StringVar(&cfg.ChatTokenFile, "chat-token-file", cfg.ChatTokenFile, "file holding the chat provider's API token (or env BANKBOOK_CHAT_TOKEN)")
	fs.StringVar(&cfg.ChatSender, "chat-sender", cfg.ChatSender, `user_id the chat provider sends messages as (must exist there; default "bankbook")`)
	fs.BoolVar(&cfg.ChatSafeChannels, "chat-safe-channels", cfg.ChatSafeChannels, "map recipients to channel URLs real Sendbird accepts (store:s-1 → bb_store_...) instead of using them as they are")
	fs.StringVar(&cfg.NotifyWebhookURL, "notify-webhook-url", cfg.NotifyWebhookURL, "post notifications as JSON to this webhook instead of a chat provider")
	fs.StringVar(&cfg.NotifyWebhookTokenFile, "notify-webhook-token-file", cfg.NotifyWebhookTokenFile, "file holding the webhook's bearer token (or env BANKBOOK_NOTIFY_WEBHOOK_TOKEN)")
	fs.Float64Var(&cfg.NotifyRate, "notify-rate", cfg.NotifyRate, "notifications sent per second, shared by every engine instance on the same NATS")
	fs.IntVar(&cfg.NotifyBurst, "notify-burst", cfg.NotifyBurst, "notifications that may go at once after a quiet spell (1 keeps any rolling second within the rate)")
	fs.IntVar(&cfg.NotifyMaxAttempts, "notify-max-attempts", cfg.NotifyMaxAttempts, "failed sends since the last redrive before a notification is dead-lettered")
	fs.BoolVar(&cfg.ChatSim, "chat-sim", cfg.ChatSim, "run the fake chat provider in-process and send notifications to it (demos, tests)")
	fs.StringVar(&cfg.ChatSimListen, "chat-sim-listen", cfg.ChatSimListen, "HOST:PORT of the fake chat provider, for other engine instances' --chat-url")
	fs.StringVar(&cfg.FirmbankSimListen, "firmbank-sim-listen", cfg.FirmbankSimListen, "HOST:PORT of the simulated firm banking (--bank-sim), for other engine instances' --firmbank-url")
	fs.IntVar(&cfg.ChatSimRate, "chat-sim-rate", cfg.ChatSimRate, "messages the fake chat provider accepts in any rolling second (the rest get 429)")
	fs.Var(&cfg.IdempotencyTTL, "idempotency-ttl", "how long idempotency keys are kept (at least 168h)")
	fs.StringVar(&cfg.CollectBank, "collect-bank", cfg.CollectBank, "bank of the collection account")
	fs.StringVar(&cfg.CollectNumber, "collect-number", cfg.CollectNumber, "number of the collection account")
	fs.StringVar(&cfg.CollectHolder, "collect-holder", cfg.CollectHolder, "holder of the collection account")
	fs.Var(&cfg.DuplicateWindow, "duplicate-window", "event stream Nats-Msg-Id dedup window")
	fs.Var(&cfg.IdleTrim, "idle-trim", "return the memory a burst left behind to the operating system once the engine has been idle this long (0: never; keep it over 10s, how long nats-server keeps its write buffers)")
	fs.Var(&cfg.TimerCheck, "timer-check", "how often to look for open orders whose timer the NATS server holds past its time without firing it (a write it refused), and arm each again; a timer that overdue counts as held")
	fs.StringVar(&cfg.StoreAccountRange, "store-account-range", cfg.StoreAccountRange, "FROM-TO: the numbers dedicated store accounts are allocated from (widen it, never move it)")
	fs.IntVar(&cfg.StoreFeeBps, "store-fee-bps", cfg.StoreFeeBps, "platform fee on a store payment, in basis points (recorded on each payment)")
	fs.IntVar(&cfg.SettlementDays, "settlement-days", cfg.SettlementDays, "business days until a store payment is settled to its distributor (D+N, Asia/Seoul; recorded on each payment)")
	fs.StringVar(&cfg.SettlementHolidays, "settlement-holidays", cfg.SettlementHolidays, "file of the weekdays banks are closed, one YYYY-MM-DD (Asia/Seoul) a line, '#' comments: settlement dates skip them as they skip weekends (read at start; give every instance the same file)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "client connections the embedded server takes at once, the engine's own included (0: what the open-file limit leaves, at most 65536)")
	fs.IntVar(&cfg.MaxConnectionsPerIdentity, "max-connections-per-identity", cfg.MaxConnectionsPerIdentity, "connections each identity other than the engine's may hold at once on the embedded server (0: no limit)")
	fs.IntVar(&cfg.MaxRequestsPerIdentity, "max-requests-per-identity", cfg.MaxRequestsPerIdentity, "requests each identity may have executing at once on this instance (of 1024); more are answered 429 throttled at once (0: no bound)")
	fs.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, `HOST:PORT of /healthz, /readyz, /metrics and the console /console/ ("off": none)`)
	fs.BoolVar(&cfg.Pprof, "pprof", cfg.Pprof, "also serve /debug/pprof on --http-listen")
	fs.BoolVar(&cfg.Console, "console", cfg.Console, "serve the ops console at /console/ on --http-listen (embedded server only; docs/console.md)")
	fs.StringVar(&cfg.ConsoleHosts, "console-hosts", cfg.ConsoleHosts, "host names the console answers to besides IP addresses and localhost (comma-separated: the name a proxy forwards)")
	fs.BoolVar(&cfg.ConsoleSecureCookies, "console-secure-cookies", cfg.ConsoleSecureCookies, "mark the console's cookies Secure (browsers reach it through a TLS-terminating proxy)")
	fs.Var(&cfg.PartConcurrency, "part-concurrency", "work handled at once per background part, e.g. payouts=16,timers=4 (default payouts=8, notify=4, the others 1)")
	return fs
}

// loadServeConfig builds the serve configuration from defaults, the config
// file, the environment and the command line.
func loadServeConfig(args []string, getenv func(string) string, stderr io.Writer) (engine.Config, error) {
	cfg := engine.Defaults()
	fs := serveFlags(&cfg, stderr)
	// The config file is read first so that env and flags override it.
	if path := configPath(args, getenv); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	// Secrets come from files or the environment, never from flags.
	cfg.BankToken = cmp.Or(getenv("BANKBOOK_BANK_TOKEN"), cfg.BankToken)
	cfg.FirmbankToken = cmp.Or(getenv("BANKBOOK_FIRMBANK_TOKEN"), cfg.FirmbankToken)
	cfg.FirmbankWebhookSecret = cmp.Or(getenv("BANKBOOK_FIRMBANK_WEBHOOK_SECRET"), cfg.FirmbankWebhookSecret)
	cfg.ChatToken = cmp.Or(getenv("BANKBOOK_CHAT_TOKEN"), cfg.ChatToken)
	cfg.NotifyWebhookToken = cmp.Or(getenv("BANKBOOK_NOTIFY_WEBHOOK_TOKEN"), cfg.NotifyWebhookToken)
	if err := parse(fs, args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	// BANKBOOK_NATS_URL is also what the client commands read: exported for
	// them, it would silently turn an embedded server asked for with
	// --listen into a connection to that URL.
	if slices.ContainsFunc(args, isFlag("listen")) && cfg.NATSURL != "" && !slices.ContainsFunc(args, isFlag("nats-url")) {
		return cfg, fmt.Errorf("--listen asks for the embedded server, but %s=%s asks to join that NATS instead: unset it, or drop --listen", envName("nats-url"), cfg.NATSURL)
	}
	return cfg, cfg.Validate()
}

func envName(flagName string) string {
	return "BANKBOOK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func configPath(args []string, getenv func(string) string) string {
	for i, a := range args {
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return getenv("BANKBOOK_CONFIG")
}

func newLogger(cfg engine.Config, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log-level: %w", err)
	}
	format := strings.ToLower(cfg.LogFormat)
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000Z", TimeLocation: time.UTC}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadServeConfig(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	e, err := engine.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("shutting down: draining in-flight commands")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.Stop(sctx)
}

// itoa formats an amount with thousands separators.
func itoa(n int64) string { return domain.GroupThousands(n) }

// counted is n followed by noun, with an s unless n is 1: "1 finding",
// "3 findings".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// isFlag matches a command-line argument that sets the named flag.
func isFlag(name string) func(string) bool {
	return func(a string) bool {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p || strings.HasPrefix(a, p+"=") {
				return true
			}
		}
		return false
	}
}
