package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/engineproc"
)

// Replay compares 'bankbook replay' of the engine's event stream, run as a
// client process over TCP, with a raw JetStream ordered-consumer read of
// the same stream from this process, round by round (raw, replay, raw,
// replay, ...). Rates count commits (stream messages).
type Replay struct {
	Commits uint64 `json:"commits"`
	// PerSec and RawPerSec are the medians of the rounds' rates, Ratio the
	// median of the rounds' ratios.
	PerSec    float64 `json:"replay_commits_per_s"`
	RawPerSec float64 `json:"raw_read_commits_per_s"`
	Ratio     float64 `json:"ratio"`
	Rounds    int     `json:"rounds"`
}

// replayResult is what 'bankbook replay --json' prints that the bench
// reads.
type replayResult struct {
	LastSeq  uint64 `json:"last_seq"`
	Duration string `json:"duration"`
	Compared bool   `json:"compared"`
	Same     bool   `json:"same"`
}

// replayRounds measures Replay on the idle engine eng, whose event stream
// js (the engine identity's) reads, into directories under dir.
func replayRounds(ctx context.Context, cfg Config, eng *engineproc.Proc, js jetstream.JetStream, dir string) (*Replay, error) {
	stream, err := js.Stream(ctx, eventstore.Config{}.StreamConfig().Name)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	if last == 0 {
		return nil, fmt.Errorf("%w: replay: the event stream is empty", ErrRequest)
	}
	r := &Replay{Commits: last, Rounds: cfg.Rounds}
	var rates, raws, ratios []float64
	for i := range cfg.Rounds {
		raw, err := rawRead(ctx, stream, last)
		if err != nil {
			return nil, err
		}
		took, err := replayOnce(ctx, cfg.Binary, eng, filepath.Join(dir, "replay-"+strconv.Itoa(i)), last)
		if err != nil {
			return nil, err
		}
		rate, rawRate := float64(last)/took.Seconds(), float64(last)/raw.Seconds()
		rates, raws, ratios = append(rates, rate), append(raws, rawRate), append(ratios, safeDiv(rate, rawRate))
	}
	r.PerSec, r.RawPerSec, r.Ratio = median(rates), median(raws), median(ratios)
	return r, nil
}

// rawReadLimit bounds one raw read of the stream.
const rawReadLimit = 5 * time.Minute

// rawRead reads the stream's first last messages with an ordered consumer
// and returns how long that took.
func rawRead(ctx context.Context, stream jetstream.Stream, last uint64) (time.Duration, error) {
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("%w: raw read: %w", ErrRequest, err)
	}
	start := time.Now()
	it, err := c.Messages()
	if err != nil {
		return 0, fmt.Errorf("%w: raw read: %w", ErrRequest, err)
	}
	defer it.Stop()
	// Next has no deadline: a stalled read ends with ctx, or after
	// rawReadLimit.
	ctx, cancel := context.WithTimeout(ctx, rawReadLimit)
	defer cancel()
	defer context.AfterFunc(ctx, it.Stop)()
	for {
		m, err := it.Next()
		if err != nil {
			return 0, fmt.Errorf("%w: raw read: %w", ErrRequest, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, fmt.Errorf("%w: raw read: %w", ErrRequest, err)
		}
		if md.Sequence.Stream >= last {
			return time.Since(start), nil
		}
	}
}

// replayOnce runs 'bankbook replay' of the whole stream into out as the
// auditor, checks that it rebuilt up to last and that its content hash is
// the live engine's, and returns the duration the command reports (the
// replay itself, without process start or the comparison).
func replayOnce(ctx context.Context, bin string, eng *engineproc.Proc, out string, last uint64) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, "replay", "--out", out, "--json", "--nats-url", eng.URL(), "--nkey", eng.Seed(auth.Auditor))
	cmd.Env = engineproc.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%w: replay: %v: %s%s", ErrRequest, err, stdout.Bytes(), stderr.Bytes())
	}
	var res replayResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return 0, fmt.Errorf("%w: replay output %q: %v", ErrRequest, stdout.Bytes(), err)
	}
	if res.LastSeq != last || !res.Compared || !res.Same {
		return 0, fmt.Errorf("%w: replay rebuilt up to seq %d of %d, compared with the live read models %v, same %v", ErrRequest, res.LastSeq, last, res.Compared, res.Same)
	}
	d, err := time.ParseDuration(res.Duration)
	if err != nil {
		return 0, fmt.Errorf("%w: replay duration %q", ErrRequest, res.Duration)
	}
	return max(d, time.Millisecond), nil // reported to the millisecond
}
