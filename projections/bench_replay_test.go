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

	"github.com/rs/zerolog"

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
// On a shared machine other processes slow both unevenly, so the CPU time
// each step took (the process's, the embedded server's included) is
// reported too: cpu_us/event and base_cpu_us/event, and x_raw_cpu = raw
// CPU per event ÷ replay CPU per event. Then a Runner rebuilds a fresh read-model file from the same stream, as
// the engine does after its file was lost: rebuild_events/s and
// rebuild_x_raw. BANKBOOK_REPLAY_EVENTS sets the stream size (default
// 100000); BANKBOOK_REPLAY_CPUPROFILE=FILE profiles the replay alone.
func BenchmarkReplay(b *testing.B) {
	events := benchstream.Size(b, "BANKBOOK_REPLAY_EVENTS", 100_000)
	js, es := benchstream.Prefill(b, events)
	codec := domain.Events()
	dir := b.TempDir()
	var (
		replayDur, rawDur, rebuildDur time.Duration
		replayCPU, rawCPU, rebuildCPU time.Duration
		replayed, rawMsgs, rebuilt    int
		rawBytes                      int64
		iter                          int
	)
	for b.Loop() {
		// The raw read first, then the replay: both find the stream's
		// blocks equally warm after the prefill.
		b.StopTimer()
		n, by, d, cpu := benchstream.RawReadCPU(b, js, es.Config().Stream)
		rawMsgs, rawBytes, rawDur, rawCPU = rawMsgs+n, rawBytes+by, rawDur+d, rawCPU+cpu
		iter++
		path := filepath.Join(dir, fmt.Sprintf("replay-%d.db", iter))
		b.StartTimer()

		stopProfile := benchstream.CPUProfile(b, "BANKBOOK_REPLAY_CPUPROFILE")
		start, cpu0 := time.Now(), benchstream.CPUTime()
		res, err := projections.ReplayWith(context.Background(), eventstore.NewReader(js, eventstore.Config{Upcaster: codec}), path, &projections.Options{Codec: codec}, nil)
		stopProfile()
		if err != nil {
			b.Fatal(err)
		}
		replayDur += time.Since(start)
		replayCPU += benchstream.CPUTime() - cpu0
		replayed += res.Events

		b.StopTimer()
		_ = os.Remove(path)
		cpu0 = benchstream.CPUTime()
		d, hash := rebuild(b, es, filepath.Join(dir, fmt.Sprintf("rebuild-%d.db", iter)), codec, res.Checkpoint)
		if hash != res.Hash {
			b.Fatalf("the rebuilt read models hash to %s, the replay to %s", hash, res.Hash)
		}
		rebuildDur += d
		rebuildCPU += benchstream.CPUTime() - cpu0
		rebuilt += res.Events
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
	rebuildRate := float64(rebuilt) / rebuildDur.Seconds()
	b.ReportMetric(rebuildRate, "rebuild_events/s")
	b.ReportMetric(rebuildRate/base, "rebuild_x_raw")
	if rawCPU > 0 {
		perEvent := func(cpu time.Duration, n int) float64 { return float64(cpu.Microseconds()) / float64(n) }
		b.ReportMetric(perEvent(replayCPU, replayed), "cpu_us/event")
		b.ReportMetric(perEvent(rawCPU, rawMsgs), "base_cpu_us/event")
		b.ReportMetric(perEvent(rebuildCPU, rebuilt), "rebuild_cpu_us/event")
		b.ReportMetric(perEvent(rawCPU, rawMsgs)/perEvent(replayCPU, replayed), "x_raw_cpu")
	}
}

// rebuild runs a Runner on a new read-model file at path until it has
// applied the stream up to last, and returns how long that took and the
// file's hash.
func rebuild(b *testing.B, es *eventstore.Store, path string, codec *domain.Codec, last eventstore.Seq) (time.Duration, string) {
	b.Helper()
	st, err := projections.Open(path, &projections.Options{Codec: codec})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = st.Close()
		_ = os.Remove(path)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	r := projections.NewRunner(es, st, zerolog.Nop())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	wait, cancelWait := context.WithTimeout(ctx, 30*time.Minute)
	err = r.WaitFor(wait, last)
	d := time.Since(start)
	cancelWait()
	cancel()
	if rerr := <-done; rerr != nil {
		b.Fatalf("runner: %v", rerr)
	}
	if err != nil {
		b.Fatal(err)
	}
	hash, cp, err := st.Hash()
	if err != nil || cp != last {
		b.Fatalf("rebuilt read models at %d (%v), want %d", cp, err, last)
	}
	return d, hash
}
