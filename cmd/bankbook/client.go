package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
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

// minSeqFlag adds --min-seq to a query's flags: answer only once the read
// models have applied that sequence (the seq of an earlier command reply).
func minSeqFlag(fs *flag.FlagSet, r *api.ReadAfter) {
	fs.Func("min-seq", "answer only once the read models have applied this stream sequence (a command reply's seq)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("must be a stream sequence: a whole number, 0 or more")
		}
		r.MinSeq = api.Seq(n)
		return nil
	})
}

func (cf *clientFlags) connect() (*nats.Conn, error) {
	nc, err := nats.Connect(cf.natsURL, nats.Name("bankbook-cli"))
	if err != nil {
		return nil, unavailable(fmt.Errorf("connect to %s: %w (is 'bankbook serve' running?)", cf.natsURL, err))
	}
	return nc, nil
}

// call connects, sends req to ep and prints the reply: the raw JSON with
// --json, otherwise what human makes of it, followed by the replay note.
func call[Req, Rep any](ctx context.Context, cf *clientFlags, stdout io.Writer, ep api.Endpoint[Req, Rep], req Req, header nats.Header, human func(Rep) string) error {
	nc, err := cf.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	rep, raw, err := client.Do(ctx, client.New(nc), ep, req, header)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && cf.json {
			fmt.Fprintln(stdout, string(raw.Data))
		}
		return requestFailed(err)
	}
	if cf.json {
		fmt.Fprintln(stdout, string(raw.Data))
		return nil
	}
	out := human(rep)
	if raw.Replayed {
		out += "(replayed: this Idempotency-Key was seen before; nothing new happened)\n"
	}
	fmt.Fprint(stdout, out)
	return nil
}
