package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/eventstore"
)

func auditUsage() string {
	return "usage: bankbook audit history TYPE ID [--limit N] [--cursor C | --all] [--min-seq N] [--json]\n" +
		"       bankbook audit digest [--at N | --check N:HEX] [--json]\n" +
		"       bankbook audit verify [--data-dir DIR] [--digest N:HEX] [--stopped] [--json]\n" +
		"  TYPE is one of " + strings.Join(api.AggregateTypes(), ", ")
}

// audit reads what the event stream says happened: `audit history` lists an
// aggregate's events with their envelopes and commit hashes
// (bankbook.q.audit.history; operator and auditor identities); `audit
// digest` computes the stream digest at a sequence, or checks it against
// one the auditor trusts (ADR 0009).
func audit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, auditUsage())
	}
	if args[0] == "verify" {
		return auditVerify(ctx, args[1:], stdout, stderr)
	}
	fs, cf := newClientFlagSet("audit "+args[0], stderr)
	switch args[0] {
	case "history":
		var q api.AuditHistoryRequest
		wholeFlags(fs, &q.PageRequest, "events")
		minSeqFlag(fs, &q.ReadAfter)
		all := fs.Bool("all", false, "every page, one after the other (with --json: one reply holding every event)")
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 2 {
			return usageError("%s", auditUsage())
		}
		q.AggregateType, q.AggregateID = pos[0], pos[1]
		if *all && q.Cursor != "" {
			return usageError("--all reads from the first page: it takes no --cursor")
		}
		if err := q.Validate(); err != nil {
			return usageError("%v", err)
		}
		if *all {
			return historyAll(ctx, cf, stdout, q)
		}
		return call(ctx, cf, stdout, api.AuditHistory, q, nil, func(r api.AuditHistoryReply) string {
			return formatHistory(r, true) + nextPage(r.NextCursor)
		})
	case "digest":
		return auditDigest(ctx, fs, cf, args[1:], stdout)
	}
	return usageError("unknown audit command %q (history, digest, verify)", args[0])
}

// digestResult is `audit digest`'s --json output: the stream digest at
// seq, and with --check what it was compared with.
type digestResult struct {
	Seq     uint64 `json:"seq"`
	Digest  string `json:"digest,omitempty"`
	Commits int    `json:"commits"`
	// Expected is the digest --check gave; Match whether the stream's
	// digest at Seq equals it; Problem why there is none (the stream ends
	// before Seq, or Missing: messages are missing from inside it).
	Expected string       `json:"expected,omitempty"`
	Match    *bool        `json:"match,omitempty"`
	Problem  string       `json:"problem,omitempty"`
	Missing  *missingSeqs `json:"missing,omitempty"`
}

// missingSeqs are the first run of sequences missing from inside the
// stream.
type missingSeqs struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// auditDigest is `audit digest`: the stream digest (eventstore.Digest) at
// --at N (default: the last sequence), read with direct gets as the
// auditor; with --check N:HEX, exit 1 unless the stream's digest at N is
// HEX (a rewritten or truncated stream). Like replay and the other audit
// checks it exits 2 when it could not run.
func auditDigest(ctx context.Context, fs *flag.FlagSet, cf *clientFlags, args []string, stdout io.Writer) error {
	cf.role = auth.Auditor // reading the event stream is the auditor's
	at := fs.Uint64("at", 0, "the sequence to digest up to (default: the stream's last)")
	check := fs.String("check", "", "N:HEX: compare the stream's digest at sequence N with HEX, a digest you trust; exit 1 if they differ")
	if err := parse(fs, args); err != nil {
		return err
	}
	given := givenFlags(fs)
	var until eventstore.Seq
	var want string
	switch {
	case given["at"] && given["check"]:
		return usageError("audit digest: give --at or --check, not both")
	case given["at"]:
		if *at == 0 {
			return usageError("audit digest: --at must be a stream sequence, 1 or more")
		}
		until = eventstore.Seq(*at)
	case given["check"]:
		d, err := parseTrustedDigest(*check)
		if err != nil {
			return usageError("audit digest: --check %v", err)
		}
		until, want = d.Seq, d.Digest
	}
	res, err := computeDigest(ctx, cf, until)
	var (
		out     digestResult
		missing *eventstore.MissingError
	)
	switch {
	case err == nil:
		out = digestResult{Seq: uint64(res.Seq), Digest: res.Digest, Commits: res.Commits}
	case errors.As(err, &missing):
		// Commits removed from inside the log: a finding, never a digest
		// that would vouch for what is left.
		out = digestResult{Seq: uint64(until), Problem: err.Error(), Missing: &missingSeqs{From: uint64(missing.From), To: uint64(missing.To)}}
		if want != "" {
			out.Expected, out.Match = want, new(false)
		}
		if err := printDigest(stdout, cf.json, out); err != nil {
			return err
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("the event stream has messages missing from inside it (seq %d..%d): no digest covers it past seq %d", missing.From, missing.To, missing.From-1)}
	case want != "" && errors.Is(err, eventstore.ErrNoMessage):
		out = digestResult{Seq: uint64(until), Problem: err.Error()}
	case errors.Is(err, eventstore.ErrNoMessage):
		return &exitError{code: exitUsage, err: fmt.Errorf("audit digest: %w", err)}
	default:
		return &exitError{code: exitUsage, err: fmt.Errorf("audit digest could not run: %w", err)}
	}
	if want != "" {
		match := out.Digest == want
		out.Expected, out.Match = want, &match
	}
	if err := printDigest(stdout, cf.json, out); err != nil {
		return err
	}
	if out.Match != nil && !*out.Match {
		if out.Problem != "" {
			return &exitError{code: exitFailed, err: fmt.Errorf("the stream has no digest at seq %d: it was truncated, or the sequence is not the one the digest was taken at", out.Seq)}
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("the stream's digest at seq %d differs from the one given: the stream was rewritten", out.Seq)}
	}
	return nil
}

// printDigest writes out as JSON or as text.
func printDigest(w io.Writer, asJSON bool, out digestResult) error {
	if asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	_, err := fmt.Fprint(w, out.text())
	return err
}

// computeDigest connects as the auditor and digests the stream up to until.
func computeDigest(ctx context.Context, cf *clientFlags, until eventstore.Seq) (_ eventstore.DigestResult, err error) {
	c, err := cf.connect()
	if err != nil {
		return eventstore.DigestResult{}, err
	}
	defer c.Close()
	defer func() { err = explainRefusal(err, c) }()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return eventstore.DigestResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, max(cf.timeout, 10*time.Minute))
	defer cancel()
	d, err := eventstore.Digest(ctx, eventstore.NewReader(js, eventstore.Config{Timeout: cf.streamTimeout()}), until)
	if err != nil {
		return eventstore.DigestResult{}, connError(err, c.Conn())
	}
	return d, nil
}

// parseTrustedDigest parses N:HEX, a stream sequence (1 or more) and a
// digest of 64 hex digits (any case).
func parseTrustedDigest(s string) (eventstore.DigestResult, error) {
	n, hex, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(n, 10, 64)
	hex = strings.ToLower(hex)
	if !ok || err != nil || seq == 0 || !isDigestHex(hex) {
		return eventstore.DigestResult{}, fmt.Errorf("takes N:HEX, a sequence and a digest of 64 hex digits (%q)", s)
	}
	return eventstore.DigestResult{Seq: eventstore.Seq(seq), Digest: hex}, nil
}

func isDigestHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// text is `audit digest`'s human output.
func (r digestResult) text() string {
	var b strings.Builder
	switch {
	case r.Missing != nil:
		fmt.Fprintf(&b, "NO DIGEST: %s\nmessages %d..%d are gone from the event stream: a digest at seq %d or before still works; restore the stream (docs/operations.md, \"A damaged event log\")\n", r.Problem, r.Missing.From, r.Missing.To, r.Missing.From-1)
		if r.Match != nil {
			fmt.Fprintf(&b, "DIFFERENT from the digest given %s at seq %d: the stream was rewritten\n", r.Expected, r.Seq)
		}
		return b.String()
	case r.Problem != "":
		fmt.Fprintf(&b, "NO DIGEST at seq %d: %s\nthe stream ends before the trusted digest's sequence: it was truncated (or that is not the sequence the digest was taken at)\n", r.Seq, r.Problem)
		return b.String()
	case r.Seq == 0:
		fmt.Fprintf(&b, "the event stream is empty; digest %s\n", r.Digest)
	default:
		fmt.Fprintf(&b, "digest at seq %d (%d messages): %s\n", r.Seq, r.Commits, r.Digest)
	}
	switch {
	case r.Match == nil:
	case *r.Match:
		b.WriteString("matches the digest given\n")
	default:
		fmt.Fprintf(&b, "DIFFERENT from the digest given %s: the stream up to seq %d was rewritten\n", r.Expected, r.Seq)
	}
	return b.String()
}

// historyAll follows the cursors to the end of the history: human output
// page after page, or with --json one reply holding every event.
func historyAll(ctx context.Context, cf *clientFlags, stdout io.Writer, q api.AuditHistoryRequest) error {
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	merged := api.AuditHistoryReply{AggregateType: q.AggregateType, AggregateID: q.AggregateID, Events: []api.AuditEvent{}}
	for first := true; ; first = false {
		rctx, cancel := context.WithTimeout(ctx, cf.timeout)
		rep, raw, err := client.Do(rctx, c, api.AuditHistory, q, nil)
		cancel()
		if err != nil {
			if cf.json && first {
				printErrorBody(stdout, raw.Data)
			}
			return requestFailed(err)
		}
		if cf.json {
			merged.Events = append(merged.Events, rep.Events...)
		} else {
			fmt.Fprint(stdout, formatHistory(rep, first))
		}
		if rep.NextCursor == "" {
			break
		}
		q.Cursor = rep.NextCursor
	}
	if cf.json {
		b, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}

// formatHistory is the human form of a page: one block per event, with
// the heading first on the first page.
func formatHistory(r api.AuditHistoryReply, heading bool) string {
	var b strings.Builder
	if heading {
		fmt.Fprintf(&b, "%s %s\n", r.AggregateType, r.AggregateID)
	}
	for _, e := range r.Events {
		if d := e.Damaged; d != nil {
			fmt.Fprintf(&b, "seq %d  DAMAGED: not a commit this engine reads (stored %s)\n    problem: %s\n", e.Seq, e.RecordedAt, d.Problem)
			if sa := d.SetAside; sa != nil {
				fmt.Fprintf(&b, "    set aside by %s at %s: %s\n", orDash(sa.Actor), sa.At, sa.Reason)
			} else {
				b.WriteString("    not set aside: commands on this aggregate are refused (bankbook event set-aside)\n")
			}
			fmt.Fprintf(&b, "    commit %s\n", e.CommitHash)
			continue
		}
		fmt.Fprintf(&b, "seq %d  v%d  %s (schema %d)  by %s\n", e.Seq, e.Version, e.EventType, e.SchemaVersion, orDash(e.Actor))
		fmt.Fprintf(&b, "    occurred %s  recorded %s\n", e.OccurredAt, e.RecordedAt)
		fmt.Fprintf(&b, "    event %s  correlation %s", e.EventID, orDash(e.CorrelationID))
		if e.CausationID != "" {
			fmt.Fprintf(&b, "  caused by %s", e.CausationID)
		}
		if e.IdempotencyKey != "" {
			fmt.Fprintf(&b, "  idempotency key %s", e.IdempotencyKey)
		}
		fmt.Fprintf(&b, "\n    commit %s\n    data %s\n", e.CommitHash, e.Data)
	}
	if len(r.Events) == 0 && heading {
		b.WriteString("no events\n")
	}
	return b.String()
}
