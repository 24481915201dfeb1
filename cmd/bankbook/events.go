package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bankbook/bankbook/api"
)

// event sets damaged commits of the event stream aside and lists those set
// aside.
func event(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, "usage: bankbook event set-aside|set-asides [flags]")
	}
	fs, cf := newClientFlagSet("event "+args[0], stderr)
	switch args[0] {
	case "set-aside":
		var req api.SetAsideRequest
		fs.Func("seq", "stream sequence of the damaged commit (/readyz, the logs and 'deadletter list' name it)", func(s string) error {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || n == 0 {
				return errors.New("must be a stream sequence: a whole number above 0")
			}
			req.Seq = api.Seq(n)
			return nil
		})
		fs.StringVar(&req.Reason, "reason", "", "why it is set aside (recorded with who and when)")
		if err := parse(fs, args[1:], required("seq", "reason")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.EventSetAside, req, nil, func(r api.SetAsideReply) string {
			sa := r.SetAside
			return fmt.Sprintf("seq %d (%s): %s\n    problem: %s\n    reason:  %s (%s at %s)\n    dead letters resolved: %v\n",
				sa.Seq, sa.Subject, r.Status, sa.Problem, sa.Reason, orDash(sa.Actor), sa.At, r.ResolvedDeadLetters)
		})
	case "set-asides":
		var q api.SetAsidesRequest
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.EventSetAsides, q, nil, func(r api.SetAsidesReply) string {
			var b strings.Builder
			for _, sa := range r.SetAsides {
				fmt.Fprintf(&b, "seq %d  %s  set aside by %s at %s\n    reason:  %s\n    problem: %s\n", sa.Seq, sa.Subject, orDash(sa.Actor), sa.At, sa.Reason, sa.Problem)
			}
			if len(r.SetAsides) == 0 {
				b.WriteString("nothing set aside\n")
			}
			return b.String()
		})
	}
	return usageError("unknown event command %q (set-aside, set-asides)", args[0])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
