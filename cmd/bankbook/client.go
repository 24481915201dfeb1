package main

import (
	"cmp"
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
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
)

const defaultNATSURL = "nats://127.0.0.1:4222"

// clientFlags are shared by every command that talks to a running engine.
type clientFlags struct {
	natsURL string
	json    bool
	timeout time.Duration
	creds   auth.Credentials
	// role is whose generated seed under ./data/auth is used when no
	// credentials are given (operator, or auditor for replay).
	role auth.Role
}

// defaultAuthDir is where `make run` (bankbook serve --data-dir ./data)
// keeps the generated seeds.
const defaultAuthDir = "./data/auth"

func newClientFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{}
	url := os.Getenv("BANKBOOK_NATS_URL")
	if url == "" {
		url = defaultNATSURL
	}
	fs.StringVar(&cf.natsURL, "nats-url", url, "NATS URL of the engine (env BANKBOOK_NATS_URL)")
	fs.BoolVar(&cf.json, "json", false, "print the raw JSON reply")
	fs.DurationVar(&cf.timeout, "timeout", 15*time.Second, "request timeout")
	cf.role = auth.Operator
	credentialFlags(fs, &cf.creds, "nkey", os.Getenv)
	return fs, cf
}

// credentialFlags binds the NATS credential flags; nkeyFlag names the seed
// file flag ("nkey" for client commands, "nats-nkey" for serve). Each also
// reads BANKBOOK_<FLAG>. Secrets are only ever read from files.
func credentialFlags(fs *flag.FlagSet, c *auth.Credentials, nkeyFlag string, getenv func(string) string) {
	str := func(p *string, name, usage string) {
		fs.StringVar(p, name, cmp.Or(*p, getenv(envName(name))), usage+" (env "+envName(name)+")")
	}
	str(&c.NKey, nkeyFlag, "NKey seed file to authenticate with")
	str(&c.Creds, "nats-creds", "NATS .creds file (JWT) to authenticate with")
	str(&c.User, "nats-user", "NATS user name (with --nats-password-file)")
	str(&c.PasswordFile, "nats-password-file", "file holding the NATS user's password")
	str(&c.CA, "nats-ca", "CA certificate file for TLS")
	str(&c.Cert, "nats-cert", "client certificate file for TLS")
	str(&c.Key, "nats-key", "client key file for TLS")
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

// connect connects with the credentials given or, when none are, with
// ./data/auth/<role>.nk if it exists (what `make run` generates).
func (cf *clientFlags) connect() (*client.Client, error) {
	if err := auth.CheckURL(cf.natsURL, "nkey"); err != nil {
		return nil, usageError("%v", err)
	}
	if cf.timeout <= 0 {
		return nil, usageError("--timeout must be above 0, got %v", cf.timeout)
	}
	creds := cf.creds
	if creds.Empty() {
		if seed := auth.SeedFile(defaultAuthDir, cf.role); fileExists(seed) {
			creds.NKey = seed
		}
	}
	opts, err := creds.Options()
	if err != nil {
		return nil, usageError("%v", err)
	}
	c, err := client.Connect(cf.natsURL, append(opts, nats.Name("bankbook-cli"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
	if err != nil {
		err = fmt.Errorf("connect to %s: %w", auth.Redact(cf.natsURL), err)
		if errors.Is(err, nats.ErrAuthorization) {
			// Refused for good: trying again with the same credentials
			// cannot help.
			var hint string
			switch {
			case creds.NKey != "":
				hint = "the server does not know the key in " + creds.NKey + ": give --nkey with a seed it knows (the data/auth/ seeds of the engine at this URL, or a user of its --auth-file)"
			case creds.Empty():
				hint = "give credentials: --nkey FILE, or run where ./data/auth/" + string(cf.role) + ".nk exists"
			default:
				hint = "the server refused these credentials"
			}
			return nil, &exitError{code: exitRefused, err: fmt.Errorf("%w (%s)", err, hint)}
		}
		return nil, unavailable(fmt.Errorf("%w (is 'bankbook serve' running?)", err))
	}
	return c, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// explainRefusal adds to err, when the NATS server refused c something for
// lack of permission, what it refused and whose seed reads the event
// stream. A JetStream request the identity may not make gets no answer (the
// server tells only the connection), so it fails as a timeout, and the
// reason would be lost.
func explainRefusal(err error, c *client.Client) error {
	if err == nil || c == nil {
		return err
	}
	if le := c.Conn().LastError(); errors.Is(le, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w (the NATS server refused this identity: %v; reading the event stream takes the auditor's seed, data/auth/auditor.nk, or a user of the auditor role)", err, le)
	}
	return err
}

// call connects, sends req to ep and prints the reply: the raw JSON with
// --json, otherwise what human makes of it, followed by the replay note.
func call[Req, Rep any](ctx context.Context, cf *clientFlags, stdout io.Writer, ep api.Endpoint[Req, Rep], req Req, header nats.Header, human func(Rep) string) error {
	return callConn(ctx, cf, stdout, ep, req, header, func(_ context.Context, _ *client.Client, rep Rep) string { return human(rep) })
}

// callConn is call with a human that may ask the engine more on the same
// connection (within the command's --timeout).
func callConn[Req, Rep any](ctx context.Context, cf *clientFlags, stdout io.Writer, ep api.Endpoint[Req, Rep], req Req, header nats.Header, human func(context.Context, *client.Client, Rep) string) error {
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	rep, raw, err := client.Do(ctx, c, ep, req, header)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && cf.json {
			printErrorBody(stdout, raw.Data)
		}
		return requestFailed(err)
	}
	if cf.json {
		fmt.Fprintln(stdout, string(raw.Data))
		return nil
	}
	out := human(ctx, c, rep)
	if raw.Replayed {
		out += "(replayed: this Idempotency-Key was seen before; nothing new happened)\n"
	}
	fmt.Fprint(stdout, out)
	return nil
}

// pageFlags binds --limit and --cursor of a paginated query; what counts
// as one item says what (deposits, movements, entries).
func pageFlags(fs *flag.FlagSet, p *api.PageRequest, what string) {
	fs.IntVar(&p.Limit, "limit", 50, what+" per page")
	fs.StringVar(&p.Cursor, "cursor", "", "page cursor from the previous page")
}

// wholeFlags binds --limit and --cursor of a list that answers whole
// without a limit (api.PageRequest.WholeLimit).
func wholeFlags(fs *flag.FlagSet, p *api.PageRequest, what string) {
	fs.IntVar(&p.Limit, "limit", 0, what+" per page (0: all that one reply carries)")
	fs.StringVar(&p.Cursor, "cursor", "", "page cursor from the previous page")
}

// nextPage is the line that tells how to get the next page ("" on the last).
func nextPage(cursor string) string {
	if cursor == "" {
		return ""
	}
	return "more: --cursor " + cursor + "\n"
}

// connError adds to err what the NATS server last reported on nc: a
// request the identity may not make is dropped without an answer, and the
// only sign of why is this asynchronous permissions violation.
func connError(err error, nc *nats.Conn) error {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return err // answered: the reason is in err
	}
	if last := nc.LastError(); last != nil && !errors.Is(err, last) {
		return fmt.Errorf("%w (the NATS server reported: %v)", err, last)
	}
	return err
}

// streamTimeout bounds each direct batch get of a stream read (replay,
// audit): --timeout, but at least a second, since a batch carries up to
// 4 MiB.
func (cf *clientFlags) streamTimeout() time.Duration { return max(cf.timeout, time.Second) }
