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
	"time"

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

// replay rebuilds the read models from sequence 1 into a fresh directory and
// compares the result with the live engine's read models. Like the audit
// commands (API.md), it exits 0 when clean, 1 on findings (the rebuilt read
// models differ from the live ones) and 2 when it could not run.
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
	// Compared says the live read models were at the same sequence and
	// their hash was compared; Same is the outcome.
	Compared bool   `json:"compared"`
	Same     bool   `json:"same,omitempty"`
	LiveSeq  uint64 `json:"live_seq,omitempty"`
	LiveHash string `json:"live_hash,omitempty"`
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("replay", stderr)
	cf.role = auth.Auditor // reading the event stream is the auditor's
	out := fs.String("out", "", "fresh directory to write the rebuilt read models to (required)")
	compare := fs.Bool("compare", true, "compare the content hash with the live engine's")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError("replay: --out DIR is required")
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return err
	}
	codec := domain.Events()
	start := time.Now()
	path := filepath.Join(*out, "readmodels.db")
	seq, hash, err := projections.Replay(ctx, eventstore.NewReader(js, eventstore.Config{Upcaster: codec}), path, &projections.Options{Codec: codec})
	if err != nil {
		return err
	}
	res := replayResult{Out: path, LastSeq: uint64(seq), ContentHash: hash, DurationS: time.Since(start).Round(time.Millisecond).String()}
	if *compare {
		ctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		live, _, err := client.Do(ctx, c, api.ProjectionStatus, api.ProjectionStatusRequest{Hash: true}, nil)
		if err != nil {
			return fmt.Errorf("live read models: %w", err)
		}
		res.LiveSeq, res.LiveHash = uint64(live.HashAtSeq), live.Hash
		if live.HashAtSeq == api.Seq(seq) {
			res.Compared, res.Same = true, live.Hash == hash
		}
	}
	if cf.json {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "replayed sequences 1..%d into %s in %s\ncontent hash %s\n", res.LastSeq, res.Out, res.DurationS, res.ContentHash)
		switch {
		case !*compare:
		case !res.Compared:
			fmt.Fprintf(stdout, "live read models are at seq %d, not %d: not compared (run again when the engine is idle)\n", res.LiveSeq, res.LastSeq)
		case res.Same:
			fmt.Fprintf(stdout, "live read models at seq %d: same content hash\n", res.LastSeq)
		default:
			fmt.Fprintf(stdout, "live read models at seq %d: DIFFERENT content hash %s\n", res.LastSeq, res.LiveHash)
		}
	}
	if res.Compared && !res.Same {
		return &exitError{code: exitFailed, err: errors.New("the rebuilt read models differ from the live ones")}
	}
	return nil
}
