package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

func projectionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		return groupUsage(args, stdout, "usage: bankbook projections status [--hash] [--min-seq N]")
	}
	fs, cf := newClientFlagSet("projections status", stderr)
	var q api.ProjectionStatusRequest
	fs.BoolVar(&q.Hash, "hash", false, "compute the read models' content hash")
	minSeqFlag(fs, &q.ReadAfter)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	return call(ctx, cf, stdout, api.ProjectionStatus, q, nil, func(r api.ProjectionStatusReply) string {
		s := fmt.Sprintf("checkpoint %d  stream last seq %d  lag %d\n", r.Checkpoint, r.StreamLastSeq, r.Lag)
		if r.Hash != "" {
			s += fmt.Sprintf("content hash %s at seq %d\n", r.Hash, r.HashAtSeq)
		}
		return s
	})
}

// replay rebuilds the read models from sequence 1 into a fresh directory,
// up to the stream's last sequence or to the point --until-seq or
// --until-time names, and, for a whole-stream replay, compares the result
// with the live engine's read models. Like the audit commands (API.md), it
// exits 0 when clean, 1 on findings (the rebuilt read models differ from
// the live ones) and 2 when it could not run. The rebuilt directory answers
// queries offline (offline.go).
func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := runReplay(ctx, args, stdout, stderr)
	var ee *exitError
	if err == nil || errors.Is(err, flag.ErrHelp) || (errors.As(err, &ee) && ee.code == exitFailed) {
		return err
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("replay could not run: %w", err)}
}

// replayResult is replay's --json output.
type replayResult struct {
	Out         string `json:"out"`
	LastSeq     uint64 `json:"last_seq"`
	ContentHash string `json:"content_hash"`
	DurationS   string `json:"duration"`
	// Events is how many events the replay applied.
	Events int `json:"events"`
	// UntilSeq and UntilTime echo --until-seq and --until-time;
	// LastRecordedAt is when the last commit replayed was recorded.
	UntilSeq       uint64 `json:"until_seq,omitempty"`
	UntilTime      string `json:"until_time,omitempty"`
	LastRecordedAt string `json:"last_recorded_at,omitempty"`
	// Compared says the live read models were at the same sequence and
	// their hash was compared; Same is the outcome. NotCompared says why
	// they were not.
	Compared    bool   `json:"compared"`
	Same        bool   `json:"same,omitempty"`
	LiveSeq     uint64 `json:"live_seq,omitempty"`
	LiveHash    string `json:"live_hash,omitempty"`
	NotCompared string `json:"not_compared,omitempty"`
}

// notComparedPointInTime is why a replay with --until-seq or --until-time
// that ended short of the live read models is not compared.
const notComparedPointInTime = "point-in-time replay: the live read models have no state at an earlier point to compare with"

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs, cf := newClientFlagSet("replay", stderr)
	cf.role = auth.Auditor // reading the event stream is the auditor's
	out := fs.String("out", "", "fresh directory to write the rebuilt read models to")
	compare := fs.Bool("compare", true, "compare the content hash with the live engine's (a replay that ends where the live read models are)")
	untilSeq := fs.Uint64("until-seq", 0, "end the replay with the commit at this stream sequence (1 or more; at most the stream's last)")
	untilTime := fs.String("until-time", "", "end the replay with the last commit recorded at or before this RFC 3339 time (the commits' recorded_at)")
	if err := parse(fs, args, required("out")); err != nil {
		return err
	}
	var ro projections.ReplayOptions
	given := givenFlags(fs)
	if given["until-seq"] && given["until-time"] {
		return usageError("replay: give --until-seq or --until-time, not both")
	}
	if given["until-seq"] {
		if *untilSeq == 0 {
			return usageError("replay: --until-seq must be a stream sequence, 1 or more")
		}
		ro.UntilSeq = eventstore.Seq(*untilSeq)
	}
	if given["until-time"] {
		t, err := time.Parse(time.RFC3339Nano, *untilTime)
		if err != nil || t.IsZero() {
			return usageError("replay: --until-time must be an RFC 3339 time such as 2026-11-30T18:00:00+09:00 (%q)", *untilTime)
		}
		ro.UntilTime = t
		if fractionDigits(*untilTime) == 6 {
			// Written to the microsecond, as audit history and every reply
			// write times: the whole microsecond, whose commits were
			// recorded at it as far as those show.
			ro.UntilTime = t.Add(time.Microsecond - time.Nanosecond)
		}
	}
	pointInTime := ro.UntilSeq != 0 || !ro.UntilTime.IsZero()
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { err = explainRefusal(err, c) }()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return err
	}

	bar := newProgressBar(stderr)
	if bar != nil || ro.UntilSeq != 0 {
		// The stream's last sequence from the engine, if one answers: the
		// bar's total, and an early refusal of a sequence beyond it. The
		// replay checks the end itself anyway, from the stream.
		if last, ok := streamLastSeq(ctx, cf, c); ok {
			if ro.UntilSeq > last {
				return fmt.Errorf("%w: until seq %d, but the stream's last sequence is %d", projections.ErrBeyondEnd, ro.UntilSeq, last)
			}
			bar.setTotal(uint64(last))
		}
		if ro.UntilSeq != 0 {
			bar.setTotal(uint64(ro.UntilSeq))
		}
	}
	ro.Progress = bar.update

	_, statErr := os.Stat(*out)
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	codec := domain.Events()
	start := time.Now()
	bar.begin(start)
	path := filepath.Join(*out, readModelsFile)
	rep, err := projections.ReplayWith(ctx, eventstore.NewReader(js, eventstore.Config{Upcaster: codec, Timeout: cf.streamTimeout()}), path, &projections.Options{Codec: codec}, &ro)
	bar.finish(err == nil)
	if err != nil {
		if errors.Is(statErr, os.ErrNotExist) && !errors.Is(err, projections.ErrLocked) {
			// Made for this replay, and empty (a failed replay removes its
			// file); not when another replay, which made it too, writes there.
			_ = os.Remove(*out)
		}
		return connError(err, c.Conn())
	}
	res := replayResult{Out: path, LastSeq: uint64(rep.Checkpoint), ContentHash: rep.Hash, Events: rep.Events,
		DurationS: time.Since(start).Round(time.Millisecond).String(), UntilSeq: uint64(ro.UntilSeq)}
	if !ro.UntilTime.IsZero() {
		res.UntilTime = *untilTime
	}
	if !rep.LastRecordedAt.IsZero() {
		res.LastRecordedAt = recordedAtText(rep.LastRecordedAt)
	}
	switch {
	case !*compare:
		res.NotCompared = "--compare=false"
	default:
		// A point-in-time replay that ended where the live read models
		// are (the stream's end, say) is compared too.
		ctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		live, _, err := client.Do(ctx, c, api.ProjectionStatus, api.ProjectionStatusRequest{Hash: true}, nil)
		switch {
		case err != nil && pointInTime:
			res.NotCompared = fmt.Sprintf("point-in-time replay, and the live read models could not be asked where they are (%v)", err)
		case err != nil:
			return fmt.Errorf("live read models: %w", err)
		case live.HashAtSeq == api.Seq(rep.Checkpoint):
			res.LiveSeq, res.LiveHash = uint64(live.HashAtSeq), live.Hash
			res.Compared, res.Same = true, live.Hash == rep.Hash
		case pointInTime:
			res.NotCompared = notComparedPointInTime
		default:
			res.LiveSeq, res.LiveHash = uint64(live.HashAtSeq), live.Hash
			res.NotCompared = fmt.Sprintf("the live read models are at seq %d, not %d", res.LiveSeq, res.LastSeq)
		}
	}
	if cf.json {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprint(stdout, res.text())
	}
	if res.Compared && !res.Same {
		return &exitError{code: exitFailed, err: errors.New("the rebuilt read models differ from the live ones")}
	}
	return nil
}

// text is replay's human output.
func (r replayResult) text() string {
	var b strings.Builder
	switch {
	case r.LastSeq == 0 && r.UntilTime != "":
		fmt.Fprintf(&b, "replayed nothing into %s: no commit was recorded at or before %s\n", r.Out, r.UntilTime)
	case r.LastSeq == 0:
		fmt.Fprintf(&b, "replayed nothing into %s: the event stream is empty\n", r.Out)
	default:
		fmt.Fprintf(&b, "replayed sequences 1..%d (%d events) into %s in %s\n", r.LastSeq, r.Events, r.Out, r.DurationS)
	}
	if r.UntilSeq != 0 && r.LastSeq < r.UntilSeq {
		fmt.Fprintf(&b, "the stream has no message at seq %d: the read models are as of seq %d, the commit before it ('bankbook audit verify' names a message missing inside the log)\n", r.UntilSeq, r.LastSeq)
	}
	if r.LastRecordedAt != "" {
		fmt.Fprintf(&b, "last commit recorded at %s\n", r.LastRecordedAt)
	}
	fmt.Fprintf(&b, "content hash %s\n", r.ContentHash)
	switch {
	case r.NotCompared == notComparedPointInTime:
		b.WriteString("not compared: " + r.NotCompared + "\n")
	case r.NotCompared == "--compare=false":
	case !r.Compared:
		fmt.Fprintf(&b, "live read models are at seq %d, not %d: not compared (run again when the engine is idle)\n", r.LiveSeq, r.LastSeq)
	case r.Same:
		fmt.Fprintf(&b, "live read models at seq %d: same content hash\n", r.LastSeq)
	default:
		fmt.Fprintf(&b, "live read models at seq %d: DIFFERENT content hash %s\n", r.LastSeq, r.LiveHash)
	}
	fmt.Fprintf(&b, "query it offline: bankbook ledger trial-balance --offline %s\n", filepath.Dir(r.Out))
	return b.String()
}

// streamLastSeq asks the engine for the event stream's last sequence; ok is
// false when no engine answers.
func streamLastSeq(ctx context.Context, cf *clientFlags, c *client.Client) (eventstore.Seq, bool) {
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	st, _, err := client.Do(ctx, c, api.ProjectionStatus, api.ProjectionStatusRequest{}, nil)
	if err != nil {
		return 0, false
	}
	return eventstore.Seq(st.StreamLastSeq), true
}

// progressBar draws a replay's progress on a terminal, on one line redrawn
// in place at most every progressEvery: a bar and percentage when the end
// is known, the sequence reached, the events applied and events per second.
// A nil *progressBar draws nothing.
type progressBar struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	total uint64 // the sequence the replay ends at, at most; 0: unknown
	drawn time.Time
	last  projections.ReplayProgress
}

const (
	progressEvery = 100 * time.Millisecond
	progressWidth = 30
)

// newProgressBar returns a bar drawing on stderr if it is a terminal, and
// nil otherwise (a pipe, a file, a test's buffer).
func newProgressBar(stderr io.Writer) *progressBar {
	f, ok := stderr.(*os.File)
	if !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return nil
	}
	return &progressBar{w: stderr, now: time.Now}
}

// begin starts the clock of events/s.
func (p *progressBar) begin(t time.Time) {
	if p != nil {
		p.start = t
	}
}

func (p *progressBar) setTotal(total uint64) {
	if p != nil {
		p.total = total
	}
}

// update is the replay's ReplayOptions.Progress.
func (p *progressBar) update(pr projections.ReplayProgress) {
	if p == nil {
		return
	}
	p.last = pr
	if now := p.now(); now.Sub(p.drawn) >= progressEvery {
		p.drawn = now
		fmt.Fprint(p.w, "\r"+p.line(now)+"\x1b[K")
	}
}

// finish draws the final state and ends the line (ok), or erases the bar so
// that the error is printed on a clean line.
func (p *progressBar) finish(ok bool) {
	if p == nil {
		return
	}
	if !ok {
		fmt.Fprint(p.w, "\r\x1b[K")
		return
	}
	p.total = uint64(p.last.Seq) // it ended here: 100%
	fmt.Fprint(p.w, "\r"+p.line(p.now())+"\x1b[K\n")
}

// line is the bar as of now.
func (p *progressBar) line(now time.Time) string {
	var b strings.Builder
	seq := uint64(p.last.Seq)
	if p.total > 0 {
		done := min(seq, p.total)
		filled := int(done * progressWidth / p.total)
		fmt.Fprintf(&b, "[%s%s] %3d%%  seq %s/%s", strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled), done*100/p.total, itoa(int64(seq)), itoa(int64(p.total)))
	} else {
		fmt.Fprintf(&b, "seq %s", itoa(int64(seq)))
	}
	rate := 0.0
	if s := now.Sub(p.start).Seconds(); s > 0 {
		rate = float64(p.last.Events) / s
	}
	fmt.Fprintf(&b, "  %s events  %s events/s", itoa(int64(p.last.Events)), itoa(int64(rate)))
	return b.String()
}

// recordedAtText writes a commit's recorded_at to the nanosecond, always
// with nine digits: usable as --until-time, which reads six as the whole
// microsecond (time.RFC3339Nano drops trailing zeros, and would write
// .940993000 as .940993).
func recordedAtText(t time.Time) string {
	return t.UTC().Format(toTheNanosecond)
}

// toTheNanosecond is RFC 3339 with all nine fraction digits.
const toTheNanosecond = "2006-01-02T15:04:05.000000000Z07:00"

// fractionDigits counts the digits of an RFC 3339 time's fraction of a
// second (0 when it has none).
func fractionDigits(rfc3339 string) int {
	i := strings.IndexByte(rfc3339, '.')
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range rfc3339[i+1:] {
		if c < '0' || c > '9' {
			break
		}
		n++
	}
	return n
}
