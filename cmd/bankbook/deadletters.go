package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bankbook/bankbook/api"
)

// deadLetter lists, redrives and discards the work background parts gave up on.
func deadLetter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, "usage: bankbook deadletter list|redrive|discard [flags]")
	}
	fs, cf := newClientFlagSet("deadletter "+args[0], stderr)
	switch args[0] {
	case "list":
		var q api.DeadLettersRequest
		fs.StringVar(&q.Part, "part", "", "only this part's dead letters ("+strings.Join(api.DeadLetterParts, ", ")+")")
		pageFlags(fs, &q.PageRequest, "dead letters")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.DeadLetterList, q, nil, func(r api.DeadLettersReply) string {
			var b strings.Builder
			for _, d := range r.DeadLetters {
				fmt.Fprintf(&b, "%d  %s  %s seq %d (%s)  attempts %d  at %s\n    %s\n", d.ID, d.Part, d.Stream, d.Seq, d.Subject, d.Attempts, d.At, d.Error)
			}
			if len(r.DeadLetters) == 0 {
				b.WriteString("no dead letters\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "redrive", "discard":
		var req api.DeadLetterRequest
		fs.Uint64Var(&req.ID, "id", 0, "the dead letter")
		ep, needs := api.DeadLetterRedrive, required("id")
		if args[0] == "discard" {
			fs.StringVar(&req.Reason, "reason", "", "why the work is set aside")
			ep, needs = api.DeadLetterDiscard, required("id", "reason")
		}
		if err := parse(fs, args[1:], needs); err != nil {
			return err
		}
		return call(ctx, cf, stdout, ep, req, nil, func(r api.DeadLetterReply) string {
			return fmt.Sprintf("dead letter %d (%s, %s seq %d): %s\n", r.DeadLetter.ID, r.DeadLetter.Part, r.DeadLetter.Stream, r.DeadLetter.Seq, r.Status)
		})
	}
	return usageError("unknown deadletter command %q (list, redrive, discard)", args[0])
}
