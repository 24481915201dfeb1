package ops

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// durationBuckets are the request duration histogram's upper bounds in
// seconds: 100µs to 10s, about three per decade.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
}

// MetricsOptions configures NewMetrics. A nil *MetricsOptions means every
// default.
type MetricsOptions struct {
	// Log receives a line for every source that fails or times out during a
	// scrape. Default: discard.
	Log zerolog.Logger
	// SourceTimeout bounds each source during one scrape; sources run
	// concurrently, so a scrape takes at most about this long. Default 2s.
	SourceTimeout time.Duration
	// Now is the clock watermark ages are measured with. Default time.Now.
	Now func() time.Time
}

// Sources are where the gauges that other parts own are read from, at
// scrape time. Every field is optional: a nil source's series are left out.
// A source that returns an error, or does not return within the source
// timeout, is logged, counted in bankbook_metrics_source_errors_total{source}
// and left out of that scrape; the rest of the scrape is unaffected.
//
// Sources are called concurrently with each other and with every other
// scrape, and must return by the time their ctx ends.
type Sources struct {
	// ProjectionLag is how many events the read models are behind the event
	// stream (the most-behind projection). bankbook_projection_lag_events.
	ProjectionLag func(ctx context.Context) (uint64, error)
	// ConsumerPending is, per JetStream consumer name, how many messages
	// wait for it. bankbook_consumer_pending{consumer}.
	ConsumerPending func(ctx context.Context) (map[string]uint64, error)
	// TimersPending is how many timers are armed and not yet handled.
	// bankbook_timers_pending.
	TimersPending func(ctx context.Context) (uint64, error)
	// DeadLetters is how many dead-lettered units of work wait for an
	// operator. bankbook_dead_letters.
	DeadLetters func(ctx context.Context) (uint64, error)
	// ScanWatermarks is, per scanned bank account number, the time up to
	// which that account's bank data is known complete. Each is shown as
	// its age, bankbook_scan_watermark_age_seconds{account}; an account
	// with the zero time (never scanned) is left out.
	ScanWatermarks func(ctx context.Context) (map[string]time.Time, error)
	// StoreAccountsRemaining is how many dedicated account numbers the
	// store account range has left for new store links:
	// bankbook_store_accounts_remaining.
	StoreAccountsRemaining func(ctx context.Context) (uint64, error)
	// Notifications is, per status (pending, sent, dead), how many
	// notifications the read models hold: bankbook_notifications{status}.
	Notifications func(ctx context.Context) (map[string]uint64, error)
	// PartWork is, per worker part and outcome (processed, retried,
	// deferred, dead_lettered, panics), how many units of work it has
	// settled since the process started: bankbook_part_work_total{part,outcome}.
	PartWork func(ctx context.Context) (map[string]map[string]uint64, error)
	// GroupCommit is, per count (writes made durable, waits that needed a
	// sync, syncs run), what group commit did since the process started:
	// bankbook_group_commit_total{count}. Nil when group commit is off.
	GroupCommit func(ctx context.Context) (map[string]uint64, error)
	// RateLimit is, per count (ratelimit.Stats.Counts: slots reserved,
	// calls that failed, ...), what the shared rate limiter did since the
	// process started: bankbook_ratelimit_total{count}.
	RateLimit func(ctx context.Context) (map[string]uint64, error)
	// Connections is, per count (open, max), how many client connections
	// the embedded server holds now and takes at most:
	// bankbook_embedded_connections{count}. Nil with an external NATS.
	Connections func(ctx context.Context) (map[string]uint64, error)
	// Reconciliations is, per kind (bank, payouts), the latest recorded
	// reconciliation run: bankbook_reconcile_last_run_age_seconds{kind}
	// and bankbook_reconcile_last_run_findings{kind}. A kind never run is
	// left out.
	Reconciliations func(ctx context.Context) (map[string]LastRun, error)
	// Parts is the supervisor's view of every part:
	// bankbook_part_up{part}, bankbook_part_ready{part} and
	// bankbook_part_restarts_total{part}.
	// Usually the same source as Config.Readiness.
	Parts Readiness
}

// LastRun is a kind's latest reconciliation run: when it completed and
// how many of its items need an operator.
type LastRun struct {
	At       time.Time
	Findings int
}

// Source names, the source label of bankbook_metrics_source_errors_total.
const (
	sourceProjectionLag   = "projection_lag"
	sourceConsumerPending = "consumer_pending"
	sourceTimersPending   = "timers_pending"
	sourceDeadLetters     = "dead_letters"
	sourceScanWatermarks  = "scan_watermarks"
	sourceParts           = "parts"
	sourcePartWork        = "part_work"
	sourceGroupCommit     = "group_commit"
	sourceRateLimit       = "ratelimit"
	sourceNotifications   = "notifications"
	sourceStoreAccounts   = "store_accounts"
	sourceConnections     = "connections"
	sourceReconciliations = "reconciliations"
)

// Metrics is bankbook's Prometheus registry: the Go runtime and process
// collectors, the request series the API server observes, and the gauges
// read from Sources at scrape time. It uses its own registry, never the
// global default one. Its methods are safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	handler      http.Handler
	requests     *prometheus.CounterVec
	durations    *prometheus.HistogramVec
	sourceErrors *prometheus.CounterVec
	batches      prometheus.Histogram
	batchCommits prometheus.Counter
	sources      atomic.Pointer[Sources]
	log          zerolog.Logger
	timeout      time.Duration
	now          func() time.Time
}

// NewMetrics returns a Metrics with no sources; see SetSources.
func NewMetrics(opts *MetricsOptions) *Metrics {
	var o MetricsOptions
	if opts != nil {
		o = *opts
	}
	if o.SourceTimeout <= 0 {
		o.SourceTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		log:     o.Log,
		timeout: o.SourceTimeout,
		now:     o.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bankbook_requests_total",
			Help: "API requests answered, by endpoint and reply code (200 for success).",
		}, []string{"endpoint", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bankbook_request_duration_seconds",
			Help:    "Time from receiving an API request to replying, by endpoint, whatever the outcome.",
			Buckets: durationBuckets,
		}, []string{"endpoint"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bankbook_metrics_source_errors_total",
			Help: "Scrapes in which a metrics source failed or timed out, so its series were left out.",
		}, []string{"source"}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bankbook_projection_batch_seconds",
			Help:    "Time the projection runner took to apply and commit one batch of commits to the read models.",
			Buckets: durationBuckets,
		}),
		batchCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bankbook_projection_batch_commits_total",
			Help: "Commits in the batches of bankbook_projection_batch_seconds: divided by its count, the mean batch size.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.durations,
		m.batches,
		m.batchCommits,
		&sourceCollector{m: m}, // with sourceErrors
	)
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      promLog{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
		// Without it promhttp never negotiates OpenMetrics, whatever the
		// scraper asks for.
		EnableOpenMetrics: true,
	}))
	return m
}

// Registry is the registry /metrics serves, for collectors of other parts.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or OpenMetrics
// when negotiated). Server mounts it at /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveRequest records one answered API request: endpoint is the
// endpoint's name from the API vocabulary (a fixed set: never request
// data), code the reply code (200 for success), d the time it took.
func (m *Metrics) ObserveRequest(endpoint string, code int, d time.Duration) {
	c, err := m.requests.GetMetricWithLabelValues(endpoint, strconv.Itoa(code))
	if err != nil {
		m.log.Warn().Err(err).Str("endpoint", endpoint).Msg("metrics: request not recorded")
		return
	}
	c.Inc()
	h, err := m.durations.GetMetricWithLabelValues(endpoint)
	if err != nil {
		return
	}
	h.Observe(d.Seconds())
}

// ObserveProjectionBatch records one batch the projection runner applied:
// its commits and how long applying and committing it took.
func (m *Metrics) ObserveProjectionBatch(commits int, d time.Duration) {
	m.batches.Observe(d.Seconds())
	m.batchCommits.Add(float64(commits))
}

// DeclareEndpoints makes every given endpoint appear in /metrics before its
// first request: bankbook_requests_total{code="200"} at 0 and an empty
// duration histogram, so that rates and alerts see a zero, not a gap.
func (m *Metrics) DeclareEndpoints(endpoints ...string) {
	for _, e := range endpoints {
		if _, err := m.requests.GetMetricWithLabelValues(e, "200"); err != nil {
			m.log.Warn().Err(err).Str("endpoint", e).Msg("metrics: endpoint not declared")
			continue
		}
		_, _ = m.durations.GetMetricWithLabelValues(e)
	}
}

// SetSources replaces the scrape-time sources. It may be called at any time,
// for example once the parts it reads from have started.
func (m *Metrics) SetSources(s Sources) {
	for name, set := range map[string]bool{
		sourceProjectionLag:   s.ProjectionLag != nil,
		sourceConsumerPending: s.ConsumerPending != nil,
		sourceTimersPending:   s.TimersPending != nil,
		sourceDeadLetters:     s.DeadLetters != nil,
		sourceScanWatermarks:  s.ScanWatermarks != nil,
		sourceParts:           s.Parts != nil,
		sourcePartWork:        s.PartWork != nil,
		sourceGroupCommit:     s.GroupCommit != nil,
		sourceRateLimit:       s.RateLimit != nil,
		sourceNotifications:   s.Notifications != nil,
		sourceStoreAccounts:   s.StoreAccountsRemaining != nil,
		sourceConnections:     s.Connections != nil,
		sourceReconciliations: s.Reconciliations != nil,
	} {
		if set {
			m.sourceErrors.WithLabelValues(name)
		}
	}
	m.sources.Store(&s)
}

// promLog adapts zerolog to promhttp's error log.
type promLog struct{ log zerolog.Logger }

func (l promLog) Println(v ...any) {
	l.log.Error().Msg("metrics: " + fmt.Sprint(v...))
}

// sourceCollector reads Sources at scrape time.
type sourceCollector struct{ m *Metrics }

var (
	descProjectionLag = prometheus.NewDesc("bankbook_projection_lag_events",
		"Events the read models are behind the event stream (the most-behind projection).", nil, nil)
	descConsumerPending = prometheus.NewDesc("bankbook_consumer_pending",
		"Messages waiting for a JetStream consumer.", []string{"consumer"}, nil)
	descTimersPending = prometheus.NewDesc("bankbook_timers_pending",
		"Timers armed and not yet handled.", nil, nil)
	descDeadLetters = prometheus.NewDesc("bankbook_dead_letters",
		"Dead-lettered units of work waiting for an operator.", nil, nil)
	descWatermarkAge = prometheus.NewDesc("bankbook_scan_watermark_age_seconds",
		"How old a scanned account's watermark is: bank data after it is not known complete.", []string{"account"}, nil)
	descStoreAccounts = prometheus.NewDesc("bankbook_store_accounts_remaining",
		"Dedicated account numbers the store account range has left for new store links (store.link answers account_range_exhausted at 0).", nil, nil)
	descReconcileAge = prometheus.NewDesc("bankbook_reconcile_last_run_age_seconds",
		"Seconds since the latest reconciliation run of each kind (bank, payouts) completed: above a day, a nightly run did not happen.", []string{"kind"}, nil)
	descReconcileFindings = prometheus.NewDesc("bankbook_reconcile_last_run_findings",
		"Items of the latest reconciliation run of each kind that need an operator (every category but matched and timing_difference).", []string{"kind"}, nil)
	descConnections = prometheus.NewDesc("bankbook_embedded_connections",
		"The embedded NATS server's client connections: open now (the engine's own, clients', those not yet authenticated) and the most it takes (max; new ones are refused at it).", []string{"count"}, nil)
	descPartUp = prometheus.NewDesc("bankbook_part_up",
		"1 while a background part is running, 0 otherwise.", []string{"part"}, nil)
	descPartReady = prometheus.NewDesc("bankbook_part_ready",
		"1 while a background part is ready (as /readyz shows it: running and caught up, or a condition such as the embedded server's stream writes holding), 0 otherwise.", []string{"part"}, nil)
	descPartRestarts = prometheus.NewDesc("bankbook_part_restarts_total",
		"Times the supervisor restarted a background part.", []string{"part"}, nil)
	descNotifications = prometheus.NewDesc("bankbook_notifications",
		"Notifications by status: pending (waiting or retried), sent, dead (given up on; bankbook notify redrive).", []string{"status"}, nil)
	descPartWork = prometheus.NewDesc("bankbook_part_work_total",
		"Units of work a worker part settled, by outcome (processed, retried, deferred, dead_lettered, panics).", []string{"part", "outcome"}, nil)
	descGroupCommit = prometheus.NewDesc("bankbook_group_commit_total",
		"With --group-commit: writes made durable, waits (writes and readers) that needed a sync, and syncs of the store's file system run; waits per sync is how many shared one.", []string{"count"}, nil)
	descRateLimit = prometheus.NewDesc("bankbook_ratelimit_total",
		"What the shared notification rate limiter did: slots reserved, answers to wait (not_yet), pauses written, compare-and-set writes lost (conflicts), calls that failed (failures: the limiter was unavailable and notifications waited), clock round trips (calibrations), clock resets, schedules restarted, the bucket created again (revived).", []string{"count"}, nil)
)

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	c.m.sourceErrors.Describe(ch)
	for _, d := range []*prometheus.Desc{descProjectionLag, descConsumerPending, descTimersPending,
		descDeadLetters, descStoreAccounts, descConnections, descWatermarkAge, descPartUp, descPartReady, descPartRestarts, descPartWork, descGroupCommit, descRateLimit, descNotifications, descReconcileAge, descReconcileFindings} {
		ch <- d
	}
}

// sourceRead reads one source into metrics.
type sourceRead struct {
	name string
	read func(ctx context.Context) ([]prometheus.Metric, error)
}

type sourceResult struct {
	name    string
	metrics []prometheus.Metric
	err     error
}

// Collect reads every source, at most Metrics' timeout each, then the
// counts of failed sources: a scrape counts its own failures.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.m.sourceErrors.Collect(ch)
	s := c.m.sources.Load()
	if s == nil {
		return
	}
	reads := c.reads(s)
	ctx, cancel := context.WithTimeout(context.Background(), c.m.timeout)
	defer cancel()
	results := make(chan sourceResult, len(reads)) // buffered: a late source never blocks
	for _, r := range reads {
		go func() {
			res := sourceResult{name: r.name}
			defer func() {
				if p := recover(); p != nil {
					res.metrics, res.err = nil, fmt.Errorf("panic: %v", p)
				}
				results <- res
			}()
			res.metrics, res.err = r.read(ctx)
		}()
	}
	pending := make(map[string]bool, len(reads))
	for _, r := range reads {
		pending[r.name] = true
	}
	for len(pending) > 0 {
		select {
		case res := <-results:
			delete(pending, res.name)
			if res.err != nil {
				c.failed(res.name, res.err)
				continue
			}
			for _, m := range res.metrics {
				ch <- m
			}
		case <-ctx.Done():
			for name := range pending {
				c.failed(name, fmt.Errorf("no answer within %s", c.m.timeout))
			}
			return
		}
	}
}

func (c *sourceCollector) failed(source string, err error) {
	c.m.sourceErrors.WithLabelValues(source).Inc()
	c.m.log.Warn().Err(err).Str("source", source).Msg("metrics: source failed; its series are left out of this scrape")
}

func (c *sourceCollector) reads(s *Sources) []sourceRead {
	var rs []sourceRead
	gauge := func(name string, d *prometheus.Desc, f func(context.Context) (uint64, error)) {
		if f == nil {
			return
		}
		rs = append(rs, sourceRead{name, func(ctx context.Context) ([]prometheus.Metric, error) {
			v, err := f(ctx)
			if err != nil {
				return nil, err
			}
			m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(v))
			return []prometheus.Metric{m}, err
		}})
	}
	gauge(sourceProjectionLag, descProjectionLag, s.ProjectionLag)
	gauge(sourceTimersPending, descTimersPending, s.TimersPending)
	gauge(sourceDeadLetters, descDeadLetters, s.DeadLetters)
	gauge(sourceStoreAccounts, descStoreAccounts, s.StoreAccountsRemaining)
	// counters is a counter per pair of label values.
	counters := func(name string, d *prometheus.Desc, f func(context.Context) (map[string]map[string]uint64, error)) {
		if f == nil {
			return
		}
		rs = append(rs, sourceRead{name, func(ctx context.Context) ([]prometheus.Metric, error) {
			counts, err := f(ctx)
			if err != nil {
				return nil, err
			}
			var ms []prometheus.Metric
			for a, bs := range counts {
				for b, n := range bs {
					m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(n), a, b)
					if err != nil {
						return nil, fmt.Errorf("%q: %w", a, err)
					}
					ms = append(ms, m)
				}
			}
			return ms, nil
		}})
	}
	counters(sourcePartWork, descPartWork, s.PartWork)
	// labelled is a metric of type t per label value.
	labelled := func(name string, d *prometheus.Desc, t prometheus.ValueType, f func(context.Context) (map[string]uint64, error)) {
		if f == nil {
			return
		}
		rs = append(rs, sourceRead{name, func(ctx context.Context) ([]prometheus.Metric, error) {
			values, err := f(ctx)
			if err != nil {
				return nil, err
			}
			var ms []prometheus.Metric
			for label, n := range values {
				m, err := prometheus.NewConstMetric(d, t, float64(n), label)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", label, err)
				}
				ms = append(ms, m)
			}
			return ms, nil
		}})
	}
	labelled(sourceConsumerPending, descConsumerPending, prometheus.GaugeValue, s.ConsumerPending)
	labelled(sourceNotifications, descNotifications, prometheus.GaugeValue, s.Notifications)
	labelled(sourceGroupCommit, descGroupCommit, prometheus.CounterValue, s.GroupCommit)
	labelled(sourceRateLimit, descRateLimit, prometheus.CounterValue, s.RateLimit)
	labelled(sourceConnections, descConnections, prometheus.GaugeValue, s.Connections)
	if f := s.Reconciliations; f != nil {
		rs = append(rs, sourceRead{sourceReconciliations, func(ctx context.Context) ([]prometheus.Metric, error) {
			runs, err := f(ctx)
			if err != nil {
				return nil, err
			}
			now := c.m.now()
			var ms []prometheus.Metric
			for kind, r := range runs {
				age, err := prometheus.NewConstMetric(descReconcileAge, prometheus.GaugeValue, now.Sub(r.At).Seconds(), kind)
				if err != nil {
					return nil, fmt.Errorf("kind %q: %w", kind, err)
				}
				found, err := prometheus.NewConstMetric(descReconcileFindings, prometheus.GaugeValue, float64(r.Findings), kind)
				if err != nil {
					return nil, fmt.Errorf("kind %q: %w", kind, err)
				}
				ms = append(ms, age, found)
			}
			return ms, nil
		}})
	}
	if f := s.ScanWatermarks; f != nil {
		rs = append(rs, sourceRead{sourceScanWatermarks, func(ctx context.Context) ([]prometheus.Metric, error) {
			marks, err := f(ctx)
			if err != nil {
				return nil, err
			}
			now := c.m.now()
			var ms []prometheus.Metric
			for account, t := range marks {
				if t.IsZero() {
					continue
				}
				m, err := prometheus.NewConstMetric(descWatermarkAge, prometheus.GaugeValue, now.Sub(t).Seconds(), account)
				if err != nil {
					return nil, fmt.Errorf("account %q: %w", account, err)
				}
				ms = append(ms, m)
			}
			return ms, nil
		}})
	}
	if p := s.Parts; p != nil {
		rs = append(rs, sourceRead{sourceParts, func(ctx context.Context) ([]prometheus.Metric, error) {
			parts, err := p.Ready(ctx)
			if err != nil {
				return nil, err
			}
			seen := make(map[string]bool, len(parts))
			var ms []prometheus.Metric
			for _, ps := range parts {
				if seen[ps.Name] {
					continue // a duplicate series would fail the whole scrape
				}
				seen[ps.Name] = true
				up := 0.0
				if ps.State == StateRunning {
					up = 1
				}
				m1, err := prometheus.NewConstMetric(descPartUp, prometheus.GaugeValue, up, ps.Name)
				if err != nil {
					return nil, fmt.Errorf("part %q: %w", ps.Name, err)
				}
				ready := 0.0
				if ps.Ready {
					ready = 1
				}
				m2, err := prometheus.NewConstMetric(descPartReady, prometheus.GaugeValue, ready, ps.Name)
				if err != nil {
					return nil, fmt.Errorf("part %q: %w", ps.Name, err)
				}
				m3, err := prometheus.NewConstMetric(descPartRestarts, prometheus.CounterValue, float64(ps.Restarts), ps.Name)
				if err != nil {
					return nil, fmt.Errorf("part %q: %w", ps.Name, err)
				}
				ms = append(ms, m1, m2, m3)
			}
			return ms, nil
		}})
	}
	return rs
}
