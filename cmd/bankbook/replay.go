package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
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
// compares the result with the live engine's read models.
func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("replay", stderr)
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
	nc, err := cf.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	codec := domain.Events()
	es, err := eventstore.Bind(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		return err
	}
	start := time.Now()
	seq, hash, err := projections.Replay(ctx, es, filepath.Join(*out, "readmodels.db"), &projections.Options{Codec: codec})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed sequences 1..%d into %s in %s\ncontent hash %s\n", seq, filepath.Join(*out, "readmodels.db"), time.Since(start).Round(time.Millisecond), hash)
	if !*compare {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	live, _, err := client.Do(ctx, client.New(nc), api.ProjectionStatus, api.ProjectionStatusRequest{Hash: true}, nil)
	if err != nil {
		return requestFailed(fmt.Errorf("live read models: %w", err))
	}
	switch {
	case live.HashAtSeq != api.Seq(seq):
		fmt.Fprintf(stdout, "live read models are at seq %d, not %d: not compared (run again when the engine is idle)\n", live.HashAtSeq, seq)
	case live.Hash == hash:
		fmt.Fprintf(stdout, "live read models at seq %d: same content hash\n", seq)
	default:
		fmt.Fprintf(stdout, "live read models at seq %d: DIFFERENT content hash %s\n", seq, live.Hash)
		return &exitError{code: exitFailed, err: errors.New("the rebuilt read models differ from the live ones")}
	}
	return nil
}
