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
	exitUsage       = 2 // bad command line, a required flag missing included (need)
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

// parse parses a command's flags; a bad flag, a stray argument or a
// required flag left out (needs) is a usage error.
func parse(fs *flag.FlagSet, args []string, needs ...need) error {
	markRequired(fs, needs)
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("%s takes no arguments, got %q", fs.Name(), fs.Args())
	}
	return checkNeeds(fs, needs)
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
func parseInterspersed(fs *flag.FlagSet, args []string, needs ...need) ([]string, error) {
	markRequired(fs, needs)
	var pos []string
	for {
		if err := parseWithArgs(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, checkNeeds(fs, needs)
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// A need is what a command line must give for the command to be sent: the
// fields its request requires (API.md, docs/api.md). A command names its
// needs where it parses the flags it declared (parse, parseInterspersed),
// which marks them "(required)" in its -h and, before anything is read or
// sent, reports every one missing as a usage error (exit 2) with the
// command's usage, as the flag package does for an unknown flag. A flag
// left out is missing, and so is a string flag given empty (--order-id=):
// the request would carry no value either way. Any other value is the
// engine's to judge (--amount 0 is its 400).
type need struct {
	names []string
	oneOf bool // exactly one of names; else each of them
}

// required needs each of the flags names.
func required(names ...string) need { return need{names: names} }

// oneOf needs exactly one of the flags names: a request that takes either
// field (payment list: --distributor-id or --store-id).
func oneOf(names ...string) need { return need{names: names, oneOf: true} }

// markRequired adds to the help of each needed flag that it is required
// (for oneOf, with the flags that can stand for it).
func markRequired(fs *flag.FlagSet, needs []need) {
	for _, n := range needs {
		for _, name := range n.names {
			f := fs.Lookup(name)
			if f == nil {
				panic("bankbook: " + fs.Name() + " needs --" + name + ", which it does not declare")
			}
			mark := " (required)"
			if n.oneOf {
				others := slices.DeleteFunc(slices.Clone(n.names), func(o string) bool { return o == name })
				mark = " (required: this or --" + strings.Join(others, " or --") + ")"
			}
			f.Usage += mark
		}
	}
}

// checkNeeds reports every need of fs the command line did not meet.
func checkNeeds(fs *flag.FlagSet, needs []need) error {
	given := givenFlags(fs)
	present := func(name string) bool {
		if !given[name] {
			return false
		}
		if g, ok := fs.Lookup(name).Value.(flag.Getter); ok {
			if s, ok := g.Get().(string); ok && s == "" {
				return false
			}
		}
		return true
	}
	var missing, several []string
	for _, n := range needs {
		var have []string
		for _, name := range n.names {
			if present(name) {
				have = append(have, name)
			} else if !n.oneOf {
				missing = append(missing, "--"+name)
			}
		}
		switch {
		case n.oneOf && len(have) == 0:
			missing = append(missing, "--"+strings.Join(n.names, " or --"))
		case n.oneOf && len(have) > 1:
			several = append(several, "give only one of --"+strings.Join(n.names, ", --"))
		}
	}
	if len(missing) == 0 && len(several) == 0 {
		return nil
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing "+strings.Join(missing, ", "))
	}
	problems = append(problems, several...)
	msg := strings.Join(problems, "; ")
	fmt.Fprintln(fs.Output(), msg)
	fs.Usage()
	return usageError("%s: %s", fs.Name(), msg)
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
