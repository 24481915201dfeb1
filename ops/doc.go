// Package ops serves bankbook's operations endpoints over HTTP, for load
// balancers, orchestrators and Prometheus:
//
//	GET /healthz        200 {"status":"alive",...} while the process serves at all
//	GET /readyz         200 when every part is ready, else 503 naming each part that is not and why
//	GET /metrics        Prometheus text format (OpenMetrics when asked for)
//	GET /debug/pprof/   net/http/pprof, only with Config.EnablePprof
//	    /console/       the ops console (package console), only with Config.Console
//
// A GET route also answers HEAD; any other method on these paths is answered
// 405 (pprof's symbol lookup also takes POST, as go tool pprof expects).
// Anything else is 404. The console answers its own paths, GET and POST,
// and keeps its own headers, sessions and CSRF checks (docs/console.md).
//
// # Default address
//
// DefaultListen is 127.0.0.1:8080. Loopback, because metrics and profiles
// describe the system's internals and pprof costs CPU: exposing them is an
// explicit choice (--http-listen 0.0.0.0:8080). Port 8080 because it is the
// conventional side HTTP port and clashes with none of the ports a bankbook
// host is likely to run as well: NATS uses 4222 (clients), 6222 (cluster) and
// 8222 (its own monitoring), and Prometheus itself listens on 9090.
//
// # Readiness
//
// /readyz asks Config.Readiness, bounded by Config.ReadyTimeout, for the
// status of every part: supervised background parts, and conditions such as
// "read models caught up" expressed as a part of their own. It answers 200
// only when the source answered without an error and every part it listed
// is Ready (an empty list is ready: nothing is waited for). Otherwise it
// answers 503 with a ReadyReport: not_ready names each part that is not
// ready, and that part's entry says why (reason, state, since, restarts,
// last_error). /readyz logs only when readiness changes, not on every probe.
//
// # Metrics
//
// Metrics owns its prometheus.Registry; nothing is registered with the
// global default registry and the package has no init. It holds the Go
// runtime and process collectors, promhttp's own handler counters, and:
//
//	bankbook_requests_total{endpoint,code}          counter, ObserveRequest (code 200 for success)
//	bankbook_request_duration_seconds{endpoint}     histogram, 100µs..10s, ObserveRequest
//	bankbook_projection_lag_events                  gauge, Sources.ProjectionLag
//	bankbook_consumer_pending{consumer}             gauge, Sources.ConsumerPending
//	bankbook_timers_pending                         gauge, Sources.TimersPending
//	bankbook_dead_letters                           gauge, Sources.DeadLetters
//	bankbook_store_accounts_remaining               gauge, Sources.StoreAccountsRemaining
//	bankbook_scan_watermark_age_seconds{account}    gauge, Sources.ScanWatermarks
//	bankbook_part_up{part}                          gauge, 1 while State is "running", Sources.Parts
//	bankbook_part_ready{part}                       gauge, 1 while Ready (as /readyz), Sources.Parts
//	bankbook_part_restarts_total{part}              counter, Sources.Parts
//	bankbook_part_work_total{part,outcome}          counter, Sources.PartWork
//	bankbook_group_commit_total{count}              counter, Sources.GroupCommit
//	bankbook_ratelimit_total{count}                 counter, Sources.RateLimit
//	bankbook_metrics_source_errors_total{source}    counter, scrapes in which a source failed
//
// The gauges are read at scrape time from Sources, concurrently, each bounded
// by MetricsOptions.SourceTimeout. A source that fails, panics or does not
// answer in time is logged and counted, and only its own series are missing
// from that scrape: a scrape never fails because of a source.
//
// # Lifecycle
//
// Server.Run serves until its context ends, then shuts down gracefully
// within Config.ShutdownTimeout and returns nil; it may be run again after
// it returns, so it can be a supervised part. Signals are main's business.
package ops
