package audit_test

// BenchmarkAuditVerify (docs/performance.md conventions): audit.Verify of a
// whole stream, with the live read models to compare, beside a raw
// JetStream ordered-consumer read of the same stream in the same run, on the
// same embedded server:
//
//	go test -run '^$' -bench BenchmarkAuditVerify -benchtime 1x ./audit/
//	BANKBOOK_VERIFY_EVENTS=1000000 go test -run '^$' -bench BenchmarkAuditVerify -benchtime 1x -timeout 60m ./audit/
//
// The server is a real embedded nats-server (testenv.Start: durability
// "fast", file storage). Nothing is timed in tests.

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchstream"
	"github.com/bankbook/bankbook/projections"
)

// BenchmarkAuditVerify times audit.Verify of the whole stream (the fold of
// every check, the fresh replay into TempDir and its comparison with the
// live read models, a file built by projections.Replay before the timer
// starts), beside a raw ordered-consumer read of the same stream. Metrics:
// verify_s (seconds per verification), events/s, base_events/s and
// base_MB/s (raw read), x_raw = verify events/s ÷ raw events/s, live_replay_s
// (the setup's replay, for scale) and findings (0 on this clean stream).
// BANKBOOK_VERIFY_EVENTS sets the stream size (default 100000).
func BenchmarkAuditVerify(b *testing.B) {
	events := benchstream.Size(b, "BANKBOOK_VERIFY_EVENTS", 100_000)
	js, es := benchstream.Prefill(b, events)
	codec := domain.Events()
	ctx := context.Background()
	reader := func() *eventstore.Reader { return eventstore.NewReader(js, eventstore.Config{Upcaster: codec}) }

	livePath := filepath.Join(b.TempDir(), "readmodels.db")
	liveStart := time.Now()
	if _, _, err := projections.Replay(ctx, reader(), livePath, &projections.Options{Codec: codec}); err != nil {
		b.Fatalf("live read models: %v", err)
	}
	liveDur := time.Since(liveStart)

	var (
		verifyDur, rawDur time.Duration
		verified, rawMsgs int
		rawBytes          int64
		findings          int
	)
	for b.Loop() {
		b.StopTimer()
		n, by, d := benchstream.RawRead(b, js, es.Config().Stream)
		rawMsgs, rawBytes, rawDur = rawMsgs+n, rawBytes+by, rawDur+d
		tmp := b.TempDir()
		b.StartTimer()

		start := time.Now()
		rep, err := audit.Verify(ctx, audit.Options{Reader: reader(), Codec: codec, ReadModels: livePath, TempDir: tmp})
		if err != nil {
			b.Fatal(err)
		}
		verifyDur += time.Since(start)
		verified += rep.Checked.Events
		findings += len(rep.Findings)
		if rep.Checked.ReadModels != "file" {
			b.Fatalf("read models not compared: %q", rep.Checked.ReadModels)
		}
	}
	if verified != rawMsgs {
		b.Fatalf("verify checked %d events, the raw read got %d messages", verified, rawMsgs)
	}
	iters := float64(b.N)
	rate := float64(verified) / verifyDur.Seconds()
	base := float64(rawMsgs) / rawDur.Seconds()
	b.ReportMetric(verifyDur.Seconds()/iters, "verify_s")
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(base, "base_events/s")
	b.ReportMetric(float64(rawBytes)/(1<<20)/rawDur.Seconds(), "base_MB/s")
	b.ReportMetric(rate/base, "x_raw")
	b.ReportMetric(liveDur.Seconds(), "live_replay_s")
	b.ReportMetric(float64(findings)/iters, "findings")
}
