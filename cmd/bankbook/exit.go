package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
)

// Exit statuses of bankbook, for scripts (docs/operations.md lists them).
const (
	exitOK          = 0
	exitFailed      = 1 // anything else; for replay and audits: findings
	exitUsage       = 2 // bad command line
	exitNotFound    = 3 // the engine answered 404
	exitRefused     = 4 // the engine refused the request (400, 403, 409, 422, 429), or the NATS server the key
	exitUnavailable = 5 // no engine to answer, a timeout, or 500/503
)

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a bad command line.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func unavailable(err error) error { return &exitError{code: exitUnavailable, err: err} }

// requestFailed classifies the failure of a request to the engine.
func requestFailed(err error) error {
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && ae.Status == 404:
		return &exitError{code: exitNotFound, err: err}
	case errors.As(err, &ae) && ae.Status >= 500:
		return &exitError{code: exitUnavailable, err: err}
	case errors.As(err, &ae):
		return &exitError{code: exitRefused, err: err}
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &exitError{code: exitUnavailable, err: err}
	}
	return err
}

// exitCode is the exit status for what run returned.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	return exitFailed
}

// parse parses a command's flags; a bad flag or a stray argument is a
// usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("%s takes no arguments, got %q", fs.Name(), fs.Args())
	}
	return nil
}

// parseWithArgs parses a command's flags and leaves its arguments in fs.Args.
func parseWithArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// the command's arguments (`audit history order o-1 --limit 5`) and
// returns the arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseWithArgs(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// describe is how the CLI prints an error: an API error with its details.
func describe(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) && len(ae.Details) > 0 {
		keys := make([]string, 0, len(ae.Details))
		for k := range ae.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			v := ae.Details[k]
			if f, ok := v.(float64); ok {
				v = strconv.FormatFloat(f, 'f', -1, 64) // 5000000, not 5e+06
			}
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		return err.Error() + " (" + strings.TrimSpace(b.String()) + ")"
	}
	return err.Error()
}

// groupUsage answers a command group called without a subcommand or with
// -h: its usage, on stdout for -h (exit 0), else as a usage error.
func groupUsage(args []string, stdout io.Writer, usage string) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError("%s", usage)
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// givenFlags returns the names of the flags the command line set.
func givenFlags(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
}

// exitCodes name the exit statuses in a JSON error (jsonError).
var exitCodes = map[int]string{
	exitFailed:      "failed",
	exitUsage:       "not_run",
	exitNotFound:    "not_found",
	exitRefused:     "refused",
	exitUnavailable: "unavailable",
}

// jsonError is how a command run with --json reports an error it printed
// nothing for: the body of API.md's errors, {"error":{"code","message",
// "details"}}, the engine's own error where there is one, else one named
// after the exit status (not_run: a usage error, or a replay, audit or
// reconciliation that could not run; unavailable: no engine, a timeout…),
// with details.exit_status either way.
func jsonError(err error) *api.Error {
	status := exitCode(err)
	out := &api.Error{Code: exitCodes[status], Message: err.Error()}
	var ae *api.Error
	if errors.As(err, &ae) {
		out.Code, out.Message = ae.Code, ae.Message
		out.Details = maps.Clone(ae.Details)
	}
	if out.Details == nil {
		out.Details = map[string]any{}
	}
	out.Details["exit_status"] = status
	return out
}

// printErrorBody prints, for --json, the error body the engine sent as
// it sent it. An error made on this side has none (a request the NATS
// server refused, one too large to send): nothing is printed here, and
// run prints that error as jsonError.
func printErrorBody(stdout io.Writer, body []byte) {
	if json.Valid(body) {
		fmt.Fprintln(stdout, string(body))
	}
}

// wantsJSON reports whether a command line asks for --json: the last
// --json, as the flag package takes it (flags end at "--").
func wantsJSON(args []string) bool {
	want := false
	for _, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		b, err := strconv.ParseBool(value)
		want = !hasValue || (err == nil && b)
	}
	return want
}

// countingWriter counts what is written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
