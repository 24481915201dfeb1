package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
)

func auditUsage() string {
	return "usage: bankbook audit history TYPE ID [--limit N] [--cursor C | --all] [--min-seq N] [--json]\n" +
		"  TYPE is one of " + strings.Join(api.AggregateTypes(), ", ")
}

// audit reads what the event stream says happened: `audit history` lists an
// aggregate's events with their envelopes and commit hashes
// (bankbook.q.audit.history; operator and auditor identities).
func audit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, auditUsage())
	}
	fs, cf := newClientFlagSet("audit "+args[0], stderr)
	switch args[0] {
	case "history":
		var q api.AuditHistoryRequest
		pageFlags(fs, &q.PageRequest, "events")
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
	}
	return usageError("unknown audit command %q (history)", args[0])
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
				fmt.Fprintln(stdout, string(raw.Data))
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
