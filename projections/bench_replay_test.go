package projections_test

// BenchmarkReplay (docs/performance.md conventions): a whole-stream replay
// into a fresh bbolt file, beside a raw JetStream ordered-consumer read of
// the same stream in the same run, on the same embedded server:
//
//	go test -run '^$' -bench BenchmarkReplay -benchtime 1x ./projections/
//	BANKBOOK_REPLAY_EVENTS=1000000 go test -run '^$' -bench BenchmarkReplay -benchtime 1x -timeout 60m ./projections/
//
// The server is a real embedded nats-server (testenv.Start: durability
// "fast", file storage). Nothing is timed in tests.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchstream"
	"github.com/bankbook/bankbook/projections"
)

// BenchmarkReplay replays the whole stream into a fresh bbolt file
// (projections.ReplayWith through eventstore.Reader, as `bankbook replay`
// does), beside a raw ordered-consumer read of the same stream. Metrics:
// events/s (replay), base_events/s and base_MB/s (raw read), x_raw =
// replay events/s ÷ raw events/s (issue 11's target: 0.5 or more).
// BANKBOOK_REPLAY_EVENTS sets the stream size (default 100000).
func BenchmarkReplay(b *testing.B) {
	events := benchstream.Size(b, "BANKBOOK_REPLAY_EVENTS", 100_000)
	js, es := benchstream.Prefill(b, events)
	codec := domain.Events()
	dir := b.TempDir()
	var (
		replayDur, rawDur time.Duration
		replayed, rawMsgs int
		rawBytes          int64
		iter              int
	)
	for b.Loop() {
		// The raw read first, then the replay: both find the stream's
		// blocks equally warm after the prefill.
		b.StopTimer()
		n, by, d := benchstream.RawRead(b, js, es.Config().Stream)
		rawMsgs, rawBytes, rawDur = rawMsgs+n, rawBytes+by, rawDur+d
		iter++
		path := filepath.Join(dir, fmt.Sprintf("replay-%d.db", iter))
		b.StartTimer()

		start := time.Now()
		res, err := projections.ReplayWith(context.Background(), eventstore.NewReader(js, eventstore.Config{Upcaster: codec}), path, &projections.Options{Codec: codec}, nil)
		if err != nil {
			b.Fatal(err)
		}
		replayDur += time.Since(start)
		replayed += res.Events

		b.StopTimer()
		_ = os.Remove(path)
		b.StartTimer()
	}
	if replayed != rawMsgs {
		b.Fatalf("replay applied %d events, the raw read got %d messages", replayed, rawMsgs)
	}
	rate := float64(replayed) / replayDur.Seconds()
	base := float64(rawMsgs) / rawDur.Seconds()
	b.ReportMetric(float64(replayDur.Nanoseconds())/float64(replayed), "ns/event")
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(base, "base_events/s")
	b.ReportMetric(float64(rawBytes)/(1<<20)/rawDur.Seconds(), "base_MB/s")
	b.ReportMetric(rate/base, "x_raw")
}
