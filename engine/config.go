package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/ops"
	"github.com/bankbook/bankbook/worker"
)

// Duration is a time.Duration that reads and writes as "5m", "30s".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is everything `bankbook serve` can be told. Flags, BANKBOOK_*
// environment variables and a JSON config file all fill this struct; the
// JSON names are the flag names with '-' written as '_'.
type Config struct {
	// DataDir holds the embedded server's JetStream files (jetstream/) and
	// the read models (readmodels.db). Default "./data".
	DataDir string `json:"data_dir"`
	// Listen is the embedded server's client address. Default 127.0.0.1:4222.
	Listen string `json:"listen"`
	// NATSURL connects to an external NATS cluster instead of starting the
	// embedded server. Durability is then the cluster's own setting.
	NATSURL string `json:"nats_url"`
	// Credentials authenticate to the external cluster (NATSURL): a creds
	// file, an NKey seed file, or a user and a password file, and TLS files.
	auth.Credentials
	// AuthFile replaces the embedded server's generated identities (other
	// than the engine's) with the operator's own users (auth.LoadFile).
	AuthFile string `json:"auth_file"`
	// Tenant names the tenant whose engine this is on a shared NATS
	// deployment (auth.Tenant); "" for a deployment of one business.
	Tenant string `json:"tenant"`
	// Durability is the embedded server's profile: "safe" (fsync every
	// write, the default) or "fast" (the nats-server default: fsync every 2m).
	Durability string `json:"durability"`
	// GroupCommit, under "safe" with the embedded server, lets concurrent
	// writers share syncs: the server writes each message to the operating
	// system without syncing it, and the engine syncs the store's file
	// system once for every write waiting at that moment, before any of
	// them returns (internal/groupcommit, ADR 0012). Every write is still
	// durable before the engine relies on it or answers a client. Linux
	// only (syncfs); off by default.
	GroupCommit bool `json:"group_commit"`
	// Replicas of the streams and buckets (1 embedded; 3 on a cluster).
	Replicas int `json:"replicas"`
	// StartTimeout is how long Start keeps starting again, with an external
	// NATS (NATSURL), while NATS or JetStream is temporarily unavailable: no
	// server reachable yet, a cluster electing the leaders of the engine's
	// streams and buckets. Default 1m; 0 gives up at the first failure.
	StartTimeout Duration `json:"start_timeout"`
	// LogFormat is "json" or "console"; default json, console on a terminal.
	LogFormat string `json:"log_format"`
	// LogLevel is a zerolog level name. Default "info".
	LogLevel string `json:"log_level"`
	// CancelWindow is the scan window after submit. Default 5m.
	CancelWindow Duration `json:"cancel_window"`
	// DepositorNameMax is the longest depositor name handed out. Default 10.
	DepositorNameMax int `json:"depositor_name_max"`
	// NameGrace is how long a closed order keeps its depositor name, so that
	// a late deposit under it is refunded to the buyer's wallet. Default 24h.
	NameGrace Duration `json:"name_grace"`
	// PaymentDeadline is how long after submission an order waits for its
	// deposit before it expires (once the bank scan covers the deadline),
	// which starts its name grace. Default 24h.
	PaymentDeadline Duration `json:"payment_deadline"`
	// MaxUnpaidOrders is how many unpaid orders (open, or cancelled or
	// expired unpaid within the name grace) one buyer may hold; more are
	// refused with too_many_unpaid_orders. Default 20.
	MaxUnpaidOrders int `json:"max_unpaid_orders"`
	// MinWithdrawal is the smallest amount a wallet withdrawal may move:
	// each costs the company a firm-banking fee. 0 (the default): any.
	MinWithdrawal int64 `json:"min_withdrawal"`
	// ScanInterval is how often the bank scanner polls. Default 5m.
	ScanInterval Duration `json:"scan_interval"`
	// FinaliseRetry is how long a due cancellation waits for the bank scan
	// before it looks again. Default 0: the scan interval on an instance
	// that scans (the next scan is what it waits for), at most
	// unscannedFinaliseRetry on one that does not (another instance or an
	// outside feed scans, at a pace it cannot know).
	FinaliseRetry Duration `json:"finalise_retry"`
	// BankSim runs the simulated bank in-process and scans it.
	BankSim bool `json:"bank_sim"`
	// BankURL and BankToken scan a real provider's account-scan API over
	// HTTP (bankfeed.HTTPSource) instead.
	BankURL   string `json:"bank_url"`
	BankToken string `json:"bank_token"`
	// BankTokenFile holds BankToken instead (secrets stay out of `ps`).
	BankTokenFile string `json:"bank_token_file"`
	// BankSimLag is the simulated bank's refresh lag. Default 2s.
	BankSimLag Duration `json:"bank_sim_lag"`
	// FirmbankURL and FirmbankToken reach a real firm-banking provider for
	// payouts. With BankSim and no URL, a simulated provider runs in-process,
	// listening on FirmbankSimListen (default 127.0.0.1:0, a free port).
	FirmbankURL   string `json:"firmbank_url"`
	FirmbankToken string `json:"firmbank_token"`
	// FirmbankTokenFile holds FirmbankToken instead.
	FirmbankTokenFile string `json:"firmbank_token_file"`
	FirmbankSimListen string `json:"firmbank_sim_listen"`
	// FirmbankStatusLag is how long the provider may take to show a
	// transfer it accepted (process.Config.RefusalLag). Default 1m.
	FirmbankStatusLag Duration `json:"firmbank_status_lag"`
	// FirmbankSettleTimeout bounds how long one payout's send polls the
	// provider for its final result (process.Config.SettleTimeout), at
	// most maxFirmbankSettleTimeout;
	// FirmbankPendingRetry is how long a payout still pending after it
	// waits before the provider is asked again (PendingRetry). Defaults
	// 15s and 30s. With a webhook secret, results come by webhook as soon
	// as the provider has them, and the polls are only the fallback.
	FirmbankSettleTimeout Duration `json:"firmbank_settle_timeout"`
	FirmbankPendingRetry  Duration `json:"firmbank_pending_retry"`
	// FirmbankWebhookSecret, or the file FirmbankWebhookSecretFile (one
	// secret per line: the current one and, while rotating, the previous),
	// turns on POST /webhooks/firmbank on the HTTP listener: the provider's
	// signed results (firmbanking.WebhookReceiver), confirmed with its
	// status and recorded at once. Each secret is at least 16 bytes.
	FirmbankWebhookSecret     string `json:"firmbank_webhook_secret"`
	FirmbankWebhookSecretFile string `json:"firmbank_webhook_secret_file"`
	// Sim, with BankSim, is the simulated bank to use instead of a new one,
	// so that several engines in one process (tests) scan the same bank.
	Sim *bankfeed.SimBank `json:"-"`
	// ChatURL reaches a Sendbird-compatible chat provider for notifications
	// (API.md "Notifications"); ChatToken, or ChatTokenFile, is its API token.
	ChatURL       string `json:"chat_url"`
	ChatToken     string `json:"chat_token"`
	ChatTokenFile string `json:"chat_token_file"`
	// ChatSender is the user_id messages are sent as (it must exist at the
	// provider). Default "bankbook".
	ChatSender string `json:"chat_sender"`
	// ChatSafeChannels maps recipients to channel URLs real Sendbird
	// accepts (letters, digits, '_': store:s-1 → bb_store_3As_2D1;
	// chat.SafeChannelURL) instead of using the recipient as it is.
	ChatSafeChannels bool `json:"chat_safe_channels"`
	// NotifyWebhookURL posts notifications as JSON to a webhook instead
	// (chat.Webhook); NotifyWebhookToken(File) is its optional bearer token.
	NotifyWebhookURL       string `json:"notify_webhook_url"`
	NotifyWebhookToken     string `json:"notify_webhook_token"`
	NotifyWebhookTokenFile string `json:"notify_webhook_token_file"`
	// NotifyRate is the provider's send rate per second, shared by every
	// dispatcher of every instance on the same NATS. Default 5.
	NotifyRate float64 `json:"notify_rate"`
	// NotifyBurst is how many sends may go at once after a quiet spell.
	// Default 1: with more, a provider that counts any rolling second can
	// be exceeded (docs/notifications.md).
	NotifyBurst int `json:"notify_burst"`
	// NotifyMaxAttempts is how many failed sends since the last redrive
	// dead-letter a notification. Default 10.
	NotifyMaxAttempts int `json:"notify_max_attempts"`
	// ChatSim runs the fake chat provider in-process and sends to it
	// (unless ChatURL names another); ChatSimListen is where it listens
	// (default 127.0.0.1:0, a free port), ChatSimRate how many messages it
	// accepts in any rolling second (default 5).
	ChatSim       bool   `json:"chat_sim"`
	ChatSimListen string `json:"chat_sim_listen"`
	ChatSimRate   int    `json:"chat_sim_rate"`
	// ChatSimInstance, with ChatSim, is the fake provider to use instead of
	// a new one (tests).
	ChatSimInstance *chat.Sim `json:"-"`
	// IdempotencyTTL is how long idempotency keys are kept. Default 168h.
	IdempotencyTTL Duration `json:"idempotency_ttl"`
	// CollectBank, CollectNumber and CollectHolder name the collection account.
	CollectBank   string `json:"collect_bank"`
	CollectNumber string `json:"collect_number"`
	CollectHolder string `json:"collect_holder"`
	// StoreAccountRange is the range dedicated account numbers of store
	// links are allocated from, "FROM-TO" (digits; numbers have the width
	// of TO). Widen it, never move it: a number never changes once given.
	// Default 5001000000-5001999999.
	StoreAccountRange string `json:"store_account_range"`
	// StoreFeeBps is the platform fee on a store payment in basis points
	// (30 = 0.3 %). Recorded on each payment. Default 30.
	StoreFeeBps int `json:"store_fee_bps"`
	// SettlementDays is after how many business days a store payment is
	// paid out to its distributor (D+N, Asia/Seoul, weekends and
	// SettlementHolidays skipped). Recorded on each payment. Default 1.
	SettlementDays int `json:"settlement_days"`
	// SettlementHolidays names a file of the weekdays banks are closed
	// (one YYYY-MM-DD a line, '#' comments; domain.ParseHolidays), read at
	// start: settlement dates skip them as they skip weekends. Every
	// instance must be given the same file; the dates recorded on payments
	// never move. Default none: weekends only.
	SettlementHolidays string `json:"settlement_holidays"`
	// ReconcilePayoutsAt runs the payouts reconciliation every day at this
	// time of day (HH:MM or HH:MM:SS) in ReconcileTimeZone, on the
	// provider's report of the 24 hours before it, fetched from the
	// firm-banking provider (GET /reports/transfers). "off" stops the
	// nightly runs; empty leaves them as other instances set them.
	ReconcilePayoutsAt string `json:"reconcile_payouts_at"`
	// ReconcileBankAt runs the bank reconciliation every day at this time
	// of day (HH:MM or HH:MM:SS) in ReconcileTimeZone, on the bank's
	// statement of the collection account and its dedicated accounts for
	// the 24 hours before it, read from the account-scan API (BankURL, or
	// the simulated bank) once the bank says its data of that time is
	// complete. "off" stops the nightly runs; empty leaves them as other
	// instances set them.
	ReconcileBankAt string `json:"reconcile_bank_at"`
	// ReconcileTimeZone is the IANA zone of ReconcilePayoutsAt and
	// ReconcileBankAt. Default Asia/Seoul.
	ReconcileTimeZone string `json:"reconcile_time_zone"`
	// DuplicateWindow is the event stream's Nats-Msg-Id window. Default 2m.
	DuplicateWindow Duration `json:"duplicate_window"`
	// MaxConnections is how many client connections the embedded server
	// takes at once, the engine's own included. Default 0: what the
	// process's open-file limit leaves (embedded.DefaultMaxConnections).
	MaxConnections int `json:"max_connections"`
	// MaxConnectionsPerIdentity is how many connections each identity
	// other than the engine's may hold at once on the embedded server (and
	// in `bankbook auth config`'s accounts); 0 sets none. Default 1,000.
	MaxConnectionsPerIdentity int `json:"max_connections_per_identity"`
	// MaxRequestsPerIdentity is how many requests each identity may have
	// executing at once on an instance (of its 1024); more are answered
	// 429 throttled at once (server.Config.MaxPerIdentity). 0: no bound.
	// Default 256.
	MaxRequestsPerIdentity int `json:"max_requests_per_identity"`
	// HTTPListen is where /healthz, /readyz and /metrics are served.
	// Default 127.0.0.1:8080; "off" serves none.
	HTTPListen string `json:"http_listen"`
	// Pprof serves /debug/pprof on HTTPListen.
	Pprof bool `json:"pprof"`
	// Console serves the ops console at /console/ on HTTPListen (package
	// console, docs/console.md). Default true; it needs the embedded
	// server, whose identities it logs people in with.
	Console bool `json:"console"`
	// ConsoleHosts are the host names (comma-separated) the console
	// answers to besides IP addresses and localhost: the name browsers use
	// when a proxy forwards their Host header (console.Config.AllowedHosts).
	ConsoleHosts string `json:"console_hosts"`
	// ConsoleSecureCookies marks the console's cookies Secure although
	// requests arrive without TLS: browsers reach it through a
	// TLS-terminating proxy.
	ConsoleSecureCookies bool `json:"console_secure_cookies"`
	// PartConcurrency is how many units of work a background part handles
	// at once (default 1 each, payouts 8: see Concurrency.Of).
	PartConcurrency Concurrency `json:"part_concurrency"`
	// IdleTrim is how long the engine must be idle before it returns the
	// memory a burst left behind to the operating system (memtrim.go).
	// Default 15s; 0 never. Under memtrim.BufferExpiry (10s) the engine
	// warns: a trim then comes before nats-server lets its write buffers go.
	IdleTrim Duration `json:"idle_trim"`
	// TimerCheck is how often the engine looks for open orders whose timer
	// the NATS server holds past its time without firing it, and arms each
	// again (timercheck.go); a timer counts as held once it is this long
	// overdue. Default 1m.
	TimerCheck Duration `json:"timer_check"`
}

// Defaults returns the configuration `bankbook serve` starts from.
func Defaults() Config {
	return Config{
		DataDir:                   "./data",
		ReconcileTimeZone:         "Asia/Seoul",
		Listen:                    "127.0.0.1:4222",
		Durability:                string(embedded.Safe),
		Replicas:                  1,
		StartTimeout:              Duration(time.Minute),
		LogLevel:                  "info",
		CancelWindow:              Duration(5 * time.Minute),
		DepositorNameMax:          10,
		NameGrace:                 Duration(24 * time.Hour),
		PaymentDeadline:           Duration(24 * time.Hour),
		MaxUnpaidOrders:           20,
		ScanInterval:              Duration(5 * time.Minute),
		BankSimLag:                Duration(2 * time.Second),
		FirmbankStatusLag:         Duration(time.Minute),
		IdempotencyTTL:            Duration(7 * 24 * time.Hour),
		CollectBank:               "KB국민은행",
		CollectNumber:             "123401-04-567890",
		CollectHolder:             "(주)뱅크북",
		DuplicateWindow:           Duration(2 * time.Minute),
		StoreAccountRange:         fmt.Sprintf("%d-%d", accounts.DefaultFrom, accounts.DefaultTo),
		StoreFeeBps:               30,
		SettlementDays:            1,
		HTTPListen:                ops.DefaultListen,
		MaxConnectionsPerIdentity: 1000,
		MaxRequestsPerIdentity:    256,
		Console:                   true,
		NotifyRate:                5,
		NotifyBurst:               1,
		NotifyMaxAttempts:         10,
		ChatSimListen:             "127.0.0.1:0",
		FirmbankSimListen:         "127.0.0.1:0",
		ChatSimRate:               5,
		IdleTrim:                  Duration(idleTrimAfter),
		TimerCheck:                Duration(time.Minute),
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir is required"))
	}
	if err := c.PartConcurrency.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.HTTPListen == "" {
		errs = append(errs, errors.New(`http-listen is required (HOST:PORT, or "off")`))
	}
	if c.Pprof && c.HTTPListen == "off" {
		errs = append(errs, errors.New("pprof needs http-listen"))
	}
	if c.NATSURL == "" && c.Listen == "" {
		errs = append(errs, errors.New("listen is required with the embedded server"))
	}
	if _, err := embedded.ParseDurability(c.Durability); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.GroupCommit && c.NATSURL != "":
		// The engine syncs the server's store itself: it must reach it.
		errs = append(errs, errors.New("group-commit needs the embedded server (an external NATS syncs by its own sync_interval)"))
	case c.GroupCommit && c.embeddedFast():
		errs = append(errs, errors.New("group-commit needs durability safe (under fast nothing is synced before the ack)"))
	}
	if c.MaxConnections != 0 && c.MaxConnections < 64 {
		errs = append(errs, errors.New("max-connections must be 0 (from the open-file limit) or at least 64 (the engine's own connections count)"))
	}
	if c.MaxRequestsPerIdentity < 0 || c.MaxRequestsPerIdentity > 1024 {
		errs = append(errs, errors.New("max-requests-per-identity must be between 0 (no bound) and 1024"))
	}
	if c.MaxConnectionsPerIdentity < 0 {
		errs = append(errs, errors.New("max-connections-per-identity must be 0 (no limit) or more"))
	}
	if c.StartTimeout < 0 {
		errs = append(errs, errors.New("start-timeout must not be negative"))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, errors.New("replicas must be between 1 and 5"))
	}
	if c.NATSURL != "" {
		if err := auth.CheckURL(c.NATSURL, "nats-nkey"); err != nil {
			errs = append(errs, err)
		}
		if err := c.Credentials.Check(); err != nil {
			errs = append(errs, err)
		} else if c.Credentials.Empty() {
			errs = append(errs, errors.New("nats-url needs credentials: nats-creds, nats-nkey, or nats-user with nats-password-file"))
		}
		if c.AuthFile != "" {
			errs = append(errs, errors.New("auth-file configures the embedded server; an external cluster's own configuration governs (bankbook auth config)"))
		}
	} else if !c.Credentials.Empty() {
		errs = append(errs, errors.New("nats-creds, nats-nkey and nats-user are for an external cluster (nats-url); the embedded server uses the engine identity in data-dir/auth"))
	}
	if c.Tenant != "" && c.NATSURL == "" {
		errs = append(errs, errors.New("tenant names an engine on a shared external deployment (nats-url)"))
	}
	if c.NATSURL == "" && c.Replicas != 1 {
		errs = append(errs, errors.New("the embedded server is a single node: replicas must be 1"))
	}
	switch strings.ToLower(c.LogFormat) {
	case "", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log-format must be json or console, not %q", c.LogFormat))
	}
	if time.Duration(c.IdempotencyTTL) < 7*24*time.Hour {
		errs = append(errs, errors.New("idempotency-ttl must be at least 168h (7 days)"))
	}
	if time.Duration(c.CancelWindow) < time.Second {
		errs = append(errs, errors.New("cancel-window must be at least 1s"))
	}
	// Each order stores both in whole seconds (cancel_window_s,
	// expires_at): a fraction would be dropped without a word.
	for _, d := range []struct {
		flag string
		d    Duration
	}{{"cancel-window", c.CancelWindow}, {"payment-deadline", c.PaymentDeadline}} {
		if time.Duration(d.d)%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s must be whole seconds (each order keeps it in seconds), not %s", d.flag, time.Duration(d.d)))
		}
	}
	if c.NameGrace < 0 {
		errs = append(errs, errors.New("name-grace must not be negative"))
	}
	// Their timers are schedules in BANKBOOK_TIMERS, whose messages age out
	// after 90 days (commands.MaxTimerSpan).
	if d := time.Duration(c.PaymentDeadline); d < time.Second || d > commands.MaxTimerSpan {
		errs = append(errs, errors.New("payment-deadline must be between 1s and 720h (30 days)"))
	}
	if time.Duration(c.CancelWindow+c.NameGrace) > commands.MaxTimerSpan {
		errs = append(errs, errors.New("cancel-window and name-grace together must be at most 720h (30 days)"))
	}
	if c.MaxUnpaidOrders < 1 {
		errs = append(errs, errors.New("max-unpaid-orders must be at least 1"))
	}
	if c.MinWithdrawal < 0 || c.MinWithdrawal > domain.MaxAmount {
		errs = append(errs, fmt.Errorf("min-withdrawal must be between 0 and %d", domain.MaxAmount))
	}
	if time.Duration(c.ScanInterval) < 100*time.Millisecond {
		errs = append(errs, errors.New("scan-interval must be at least 100ms"))
	}
	if c.FinaliseRetry != 0 && (time.Duration(c.FinaliseRetry) < 100*time.Millisecond || time.Duration(c.FinaliseRetry) > maxFinaliseRetry) {
		// A wait is a redelivery of the due timer, in BANKBOOK_TIMERS,
		// whose messages age out after 90 days.
		errs = append(errs, fmt.Errorf("finalise-retry must be 0 (the scan interval, at most %v) or between 100ms and %v", maxFinaliseRetry, maxFinaliseRetry))
	}
	if c.BankSim && c.BankURL != "" {
		errs = append(errs, errors.New("bank-sim and bank-url exclude each other"))
	}
	for _, p := range []struct{ flag, url string }{
		{"bank-url", c.BankURL}, {"firmbank-url", c.FirmbankURL}, {"chat-url", c.ChatURL}, {"notify-webhook-url", c.NotifyWebhookURL},
	} {
		// A password in the URL would be given on the command line only
		// (`ps` shows it) and would be in every error naming the URL.
		if u, err := url.Parse(p.url); err == nil && u.User != nil {
			errs = append(errs, fmt.Errorf("%s %s carries credentials; give the provider's token with --%s-token-file or its environment variable", p.flag, auth.Redact(p.url), strings.TrimSuffix(p.flag, "-url")))
		}
	}
	if c.FirmbankStatusLag < 0 || time.Duration(c.FirmbankStatusLag) > worker.MaxUncertainWait {
		errs = append(errs, fmt.Errorf("firmbank-status-lag must be between 0 and %v (the payout sends it counts from are noted for twice as long)", worker.MaxUncertainWait))
	}
	if d := time.Duration(c.FirmbankSettleTimeout); d < 0 || d > maxFirmbankSettleTimeout {
		errs = append(errs, fmt.Errorf("firmbank-settle-timeout must be between 0 (15s) and %v: the payouts part's handler, which records the result after the polls, is cut at %v", maxFirmbankSettleTimeout, payoutsHandlerTimeout))
	}
	if d := time.Duration(c.FirmbankPendingRetry); d < 0 || d > worker.MaxUncertainWait {
		// The payouts part's notes of its sends are kept a day: a payout it
		// follows (recorded by an operator while a send was pending) must
		// be asked again while they are.
		errs = append(errs, fmt.Errorf("firmbank-pending-retry must be between 0 (30s) and %v (the notes of the payout sends it follows are kept twice as long)", worker.MaxUncertainWait))
	}
	if c.FirmbankWebhookSecret != "" || c.FirmbankWebhookSecretFile != "" {
		if c.FirmbankURL == "" && !c.BankSim {
			errs = append(errs, errors.New("firmbank-webhook-secret-file needs a firm-banking provider (--firmbank-url or --bank-sim) to confirm the results with"))
		}
		if c.HTTPListen == "off" {
			errs = append(errs, errors.New("firmbank-webhook-secret-file needs the HTTP listener (--http-listen) the webhooks arrive on"))
		}
		if _, err := c.webhookSecrets(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range []struct {
		job   nightlyJob
		at    string
		has   bool
		needs string
	}{
		{payoutsNightly, c.ReconcilePayoutsAt, c.FirmbankURL != "" || c.BankSim, "a firm-banking provider (--firmbank-url or --bank-sim) to fetch the report from"},
		{bankNightly, c.ReconcileBankAt, c.BankURL != "" || c.BankSim, "a bank feed (--bank-url or --bank-sim) to read the statement from"},
	} {
		if n.at == "" || n.at == "off" {
			continue
		}
		if _, err := parseNightly(n.at, c.ReconcileTimeZone); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.job.flag, err))
		}
		if !n.has {
			errs = append(errs, fmt.Errorf("%s needs %s", n.job.flag, n.needs))
		}
	}
	if c.BankSimLag < 0 {
		errs = append(errs, errors.New("bank-sim-lag must not be negative"))
	}
	if c.DepositorNameMax < 4 {
		errs = append(errs, errors.New("depositor-name-max must be at least 4 (one character and three digits)"))
	}
	if d := time.Duration(c.IdleTrim); d < 0 || d != 0 && d < 100*time.Millisecond {
		errs = append(errs, errors.New("idle-trim must be 0 (never) or at least 100ms"))
	}
	if d := time.Duration(c.TimerCheck); d < 100*time.Millisecond || d > time.Hour {
		errs = append(errs, errors.New("timer-check must be between 100ms and 1h"))
	}
	if time.Duration(c.DuplicateWindow) < 100*time.Millisecond {
		errs = append(errs, errors.New("duplicate-window must be at least 100ms"))
	}
	if from, to, err := accounts.ParseRange(c.StoreAccountRange); err != nil {
		errs = append(errs, fmt.Errorf("store-account-range: %w", err))
	} else if c.CollectNumber != "" && accounts.RangeHolds(from, to, c.CollectNumber) {
		// A store would be handed the collection account as its own: its
		// payments would be taken for order deposits.
		errs = append(errs, fmt.Errorf("store-account-range %s holds the collection account %s: dedicated accounts must be other numbers", c.StoreAccountRange, c.CollectNumber))
	}
	if c.StoreFeeBps < 0 || c.StoreFeeBps > domain.MaxFeeBps {
		errs = append(errs, fmt.Errorf("store-fee-bps must be between 0 and %d", domain.MaxFeeBps))
	}
	if c.SettlementDays < 0 || c.SettlementDays > 30 {
		errs = append(errs, errors.New("settlement-days must be between 0 and 30"))
	}
	if _, err := c.settlementHolidays(); err != nil {
		errs = append(errs, err)
	}
	if c.ChatURL != "" && c.NotifyWebhookURL != "" {
		errs = append(errs, errors.New("chat-url and notify-webhook-url exclude each other"))
	}
	if !(c.NotifyRate >= 0.001 && c.NotifyRate <= 10_000) { // NaN too
		errs = append(errs, errors.New("notify-rate must be between 0.001 and 10000 per second"))
	}
	if c.NotifyBurst < 1 || c.NotifyBurst > 10_000 {
		errs = append(errs, errors.New("notify-burst must be between 1 and 10000"))
	}
	if c.NotifyMaxAttempts < 1 || c.NotifyMaxAttempts > 100 {
		errs = append(errs, errors.New("notify-max-attempts must be between 1 and 100"))
	}
	if c.ChatSim && c.ChatSimRate < 1 {
		errs = append(errs, errors.New("chat-sim-rate must be at least 1"))
	}
	if c.CollectBank == "" || c.CollectNumber == "" || c.CollectHolder == "" {
		errs = append(errs, errors.New("collect-bank, collect-number and collect-holder are required"))
	}
	return errors.Join(errs...)
}

// String implements flag.Value.
func (d *Duration) String() string { return time.Duration(*d).String() }

// Set implements flag.Value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Concurrency is how many units of work each background part handles at
// once, by part name (react-orders, react-money, payouts, react-payouts,
// timers, react-notify, notify); a part
// not named takes its default (Of). As a flag: "react-money=4,timers=8".
type Concurrency map[string]int

// concurrentParts are the parts whose concurrency can be set.
var concurrentParts = []string{"react-orders", "react-money", "payouts", "react-payouts", "timers", "react-notify", "notify"}

// defaultConcurrency is the concurrency of the parts that do not handle one
// unit of work at a time by default: payouts wait seconds on the provider
// each, and are independent of one another.
var defaultConcurrency = map[string]int{"payouts": 8, "notify": 4}

// Of returns how many units of work part handles at once: as set, or the
// part's default (payouts 8, notify 4, the others 1).
func (c Concurrency) Of(part string) int {
	if n, ok := c[part]; ok {
		return n
	}
	if n, ok := defaultConcurrency[part]; ok {
		return n
	}
	return 1
}

// String implements flag.Value.
func (c *Concurrency) String() string {
	if c == nil || len(*c) == 0 {
		return ""
	}
	parts := make([]string, 0, len(*c))
	for _, name := range concurrentParts {
		if n, ok := (*c)[name]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", name, n))
		}
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value: "part=N,part=N".
func (c *Concurrency) Set(s string) error {
	out := Concurrency{}
	for _, item := range strings.Split(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%q: want part=N", item)
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("%q: %w", item, err)
		}
		out[name] = v
	}
	*c = out
	return nil
}

// validate reports unknown parts and counts outside 1..256.
func (c Concurrency) validate() error {
	var errs []error
	for name, n := range c {
		if !slices.Contains(concurrentParts, name) {
			errs = append(errs, fmt.Errorf("part-concurrency: unknown part %q (one of %s)", name, strings.Join(concurrentParts, ", ")))
		}
		if n < 1 || n > 256 {
			errs = append(errs, fmt.Errorf("part-concurrency: %s=%d must be between 1 and 256", name, n))
		}
	}
	return errors.Join(errs...)
}

// embeddedFast reports whether the engine runs the embedded server under
// the "fast" profile, which fsyncs nothing on write.
func (c Config) embeddedFast() bool {
	return c.NATSURL == "" && c.Durability == string(embedded.Fast)
}

// unscannedFinaliseRetry bounds the default FinaliseRetry of an instance
// that runs no bank scanner.
const unscannedFinaliseRetry = 10 * time.Second

// finaliseRetry is FinaliseRetry with its default.
func (c Config) finaliseRetry() time.Duration {
	switch {
	case c.FinaliseRetry != 0:
		return time.Duration(c.FinaliseRetry)
	case c.BankSim || c.BankURL != "":
		return min(time.Duration(c.ScanInterval), maxFinaliseRetry)
	}
	return min(time.Duration(c.ScanInterval), unscannedFinaliseRetry)
}

// maxFinaliseRetry bounds --finalise-retry and its default, the scan
// interval: a due timer waiting longer than the timers stream keeps it
// (90 days) would never come back.
const maxFinaliseRetry = time.Hour

// settlementHolidays reads the holiday calendar SettlementHolidays names:
// none without one.
func (c Config) settlementHolidays() (domain.Holidays, error) {
	if c.SettlementHolidays == "" {
		return domain.Holidays{}, nil
	}
	f, err := os.Open(c.SettlementHolidays)
	if err != nil {
		return domain.Holidays{}, fmt.Errorf("settlement-holidays: %w", err)
	}
	defer f.Close()
	h, err := domain.ParseHolidays(f)
	if err != nil {
		return domain.Holidays{}, fmt.Errorf("settlement-holidays %s: %w", c.SettlementHolidays, err)
	}
	return h, nil
}

// webhookSecrets are the firm-banking webhook's secrets: FirmbankWebhookSecret,
// or each non-blank line of FirmbankWebhookSecretFile; none without either.
// A file without one (empty, or blank lines) is an error: it would turn the
// webhooks off.
func (c Config) webhookSecrets() ([][]byte, error) {
	text := c.FirmbankWebhookSecret
	if c.FirmbankWebhookSecretFile != "" {
		b, err := os.ReadFile(c.FirmbankWebhookSecretFile)
		if err != nil {
			return nil, fmt.Errorf("firmbank-webhook-secret-file: %w", err)
		}
		text = string(b)
	}
	var secrets [][]byte
	for line := range strings.Lines(text) {
		if s := strings.TrimSpace(line); s != "" {
			if len(s) < firmbanking.MinWebhookSecretLen {
				return nil, fmt.Errorf("firmbank-webhook-secret: a secret of %d bytes; each must have at least %d", len(s), firmbanking.MinWebhookSecretLen)
			}
			secrets = append(secrets, []byte(s))
		}
	}
	if (text != "" || c.FirmbankWebhookSecretFile != "") && len(secrets) == 0 {
		return nil, errors.New("firmbank-webhook-secret: no secret in it")
	}
	if len(secrets) > 4 {
		return nil, fmt.Errorf("firmbank-webhook-secret: %d secrets; at most 4 (the current one and those being rotated out)", len(secrets))
	}
	return secrets, nil
}
