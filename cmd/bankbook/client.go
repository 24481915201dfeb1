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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/server"
)

const defaultNATSURL = "nats://127.0.0.1:4222"

// clientFlags are shared by every command that talks to a running engine.
type clientFlags struct {
	natsURL string
	json    bool
	timeout time.Duration
}

func newClientFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{}
	url := os.Getenv("BANKBOOK_NATS_URL")
	if url == "" {
		url = defaultNATSURL
	}
	fs.StringVar(&cf.natsURL, "nats-url", url, "NATS URL of the engine")
	fs.BoolVar(&cf.json, "json", false, "print the raw JSON reply")
	fs.DurationVar(&cf.timeout, "timeout", 15*time.Second, "request timeout")
	return fs, cf
}

func (cf *clientFlags) connect() (*nats.Conn, error) {
	nc, err := nats.Connect(cf.natsURL, nats.Name("bankbook-cli"))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is 'bankbook serve' running?)", cf.natsURL, err)
	}
	return nc, nil
}

// call connects, sends one request and prints the reply: raw JSON with
// --json, otherwise through human.
func (cf *clientFlags) call(ctx context.Context, stdout io.Writer, subject string, req any, header nats.Header, human func(raw []byte) string) error {
	nc, err := cf.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	rep, err := client.New(nc).Request(ctx, subject, req, header)
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) && cf.json {
			fmt.Fprintln(stdout, string(rep.Data))
		}
		return err
	}
	if cf.json {
		fmt.Fprintln(stdout, string(rep.Data))
		return nil
	}
	out := human(rep.Data)
	if rep.Replayed {
		out += "(replayed: this Idempotency-Key was seen before; nothing new happened)\n"
	}
	fmt.Fprint(stdout, out)
	return nil
}

func order(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: bankbook order submit|cancel|get [flags]")
	}
	fs, cf := newClientFlagSet("order "+args[0], stderr)
	switch args[0] {
	case "submit":
		var req commands.SubmitOrderRequest
		fs.StringVar(&req.BuyerID, "buyer-id", "", "buyer's user ID (required)")
		fs.StringVar(&req.BuyerName, "buyer-name", "", "buyer's name; the depositor name is built from it (required)")
		fs.Int64Var(&req.Amount, "amount", 0, "amount in minor units (KRW: won) (required)")
		fs.StringVar(&req.Currency, "currency", "", "currency (default KRW)")
		fs.StringVar(&req.OrderID, "order-id", "", "order ID (default: generated)")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return cf.call(ctx, stdout, "bankbook.cmd.order.submit", req, client.WithIdempotencyKey(*key), func(raw []byte) string {
			var r commands.SubmitOrderReply
			_ = json.Unmarshal(raw, &r)
			return fmt.Sprintf("order %s  %s\n  transfer %s %s to %s %s (%s)\n  depositor name: %s\n  submitted at %s\n",
				r.OrderID, r.Status, itoa(r.Amount), r.Currency, r.CollectAccount.Bank, r.CollectAccount.Number, r.CollectAccount.Holder,
				r.DepositorName, r.SubmittedAt)
		})
	case "cancel":
		var req commands.CancelOrderRequest
		fs.StringVar(&req.OrderID, "order-id", "", "order to cancel (required)")
		deposited := fs.Bool("deposited", false, "the buyer says the money was already transferred")
		fs.StringVar(&req.Reason, "reason", "", "why")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		req.Deposited = deposited
		return cf.call(ctx, stdout, "bankbook.cmd.order.cancel", req, client.WithIdempotencyKey(*key), func(raw []byte) string {
			var r commands.CancelOrderReply
			_ = json.Unmarshal(raw, &r)
			s := fmt.Sprintf("order %s  %s\n", r.OrderID, r.Status)
			if r.CancelAt != "" {
				s += "  cancellation final at " + r.CancelAt + "\n"
			}
			return s
		})
	case "get":
		var req server.GetOrderRequest
		fs.StringVar(&req.OrderID, "order-id", "", "order to show (required)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return cf.call(ctx, stdout, "bankbook.q.order.get", req, nil, func(raw []byte) string {
			var v projections.OrderView
			_ = json.Unmarshal(raw, &v)
			var b strings.Builder
			fmt.Fprintf(&b, "order %s  %s\n", v.OrderID, v.Status)
			fmt.Fprintf(&b, "  buyer %s (%s)  amount %s %s  paid %s\n", v.BuyerID, v.BuyerName, itoa(v.Amount), v.Currency, itoa(v.PaidAmount))
			fmt.Fprintf(&b, "  depositor name %s  account %s %s\n", v.DepositorName, v.CollectAccount.Bank, v.CollectAccount.Number)
			fmt.Fprintf(&b, "  submitted %s  updated %s\n", v.SubmittedAt, v.UpdatedAt)
			if v.CancelReason != "" {
				fmt.Fprintf(&b, "  cancel reason: %s\n", v.CancelReason)
			}
			return b.String()
		})
	}
	return fmt.Errorf("unknown order command %q (submit, cancel, get)", args[0])
}

func projectionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		return errors.New("usage: bankbook projections status [--hash]")
	}
	fs, cf := newClientFlagSet("projections status", stderr)
	hash := fs.Bool("hash", false, "compute the read models' content hash")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return cf.call(ctx, stdout, "bankbook.q.projection.status", server.ProjectionStatusRequest{Hash: *hash}, nil, func(raw []byte) string {
		var r server.ProjectionStatusReply
		_ = json.Unmarshal(raw, &r)
		s := fmt.Sprintf("checkpoint %d  stream last seq %d  lag %d\n", r.Checkpoint, r.StreamLastSeq, r.Lag)
		if r.Hash != "" {
			s += fmt.Sprintf("content hash %s at seq %d\n", r.Hash, r.HashAtSeq)
		}
		return s
	})
}

// replay rebuilds the read models from sequence 0 into a fresh directory and
// compares the result with the live engine's read models.
func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("replay", stderr)
	out := fs.String("out", "", "fresh directory to write the rebuilt read models to (required)")
	compare := fs.Bool("compare", true, "compare the content hash with the live engine's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("replay: --out DIR is required")
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
	seq, hash, err := projections.Replay(ctx, es, codec, filepath.Join(*out, "readmodels.db"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed sequences 1..%d into %s in %s\ncontent hash %s\n", seq, filepath.Join(*out, "readmodels.db"), time.Since(start).Round(time.Millisecond), hash)
	if !*compare {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	var live server.ProjectionStatusReply
	if _, err := client.New(nc).Call(ctx, "bankbook.q.projection.status", server.ProjectionStatusRequest{Hash: true}, &live, nil); err != nil {
		return fmt.Errorf("live read models: %w", err)
	}
	switch {
	case live.HashAtSeq != seq:
		fmt.Fprintf(stdout, "live read models are at seq %d, not %d: not compared (run again when the engine is idle)\n", live.HashAtSeq, seq)
	case live.Hash == hash:
		fmt.Fprintf(stdout, "live read models at seq %d: same content hash\n", seq)
	default:
		fmt.Fprintf(stdout, "live read models at seq %d: DIFFERENT content hash %s\n", seq, live.Hash)
		return exitError(3)
	}
	return nil
}
