package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
)

// notifyCmd lists notifications, redrives a dead one and shows the shared
// rate limit.
func notifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, "usage: bankbook notify list|redrive|limiter [flags]")
	}
	fs, cf := newClientFlagSet("notify "+args[0], stderr)
	switch args[0] {
	case "list":
		var q api.NotifyListRequest
		fs.StringVar(&q.Status, "status", "", "only this status: pending, sent or dead")
		fs.StringVar(&q.Recipient, "recipient", "", "only this recipient: store:ID, distributor:ID or user:ID")
		pageFlags(fs, &q.PageRequest, "notifications")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.NotifyList, q, nil, func(r api.NotifyListReply) string {
			var b strings.Builder
			for _, n := range r.Notifications {
				fmt.Fprintf(&b, "%s  %-7s %-16s %-24s attempts %d  created %s", n.NotificationID, n.Status, n.Kind, n.Recipient, n.Attempts, n.CreatedAt)
				if n.SentAt != "" {
					fmt.Fprintf(&b, "  sent %s", n.SentAt)
				}
				if n.RetryAt != "" {
					fmt.Fprintf(&b, "  retry %s", n.RetryAt)
				}
				b.WriteString("\n")
				if n.LastError != "" {
					fmt.Fprintf(&b, "    last error: %s\n", n.LastError)
				}
			}
			if len(r.Notifications) == 0 {
				b.WriteString("no notifications\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "redrive":
		var req api.NotifyRedriveRequest
		fs.StringVar(&req.NotificationID, "notification-id", "", "the dead notification")
		fs.StringVar(&req.Reason, "reason", "", "why it is tried again")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args[1:], required("notification-id")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.NotifyRedrive, req, client.WithIdempotencyKey(*key), func(r api.NotifyRedriveReply) string {
			return fmt.Sprintf("notification %s  %s  (seq %d)\n", r.NotificationID, r.Status, r.Seq)
		})
	case "limiter":
		var q api.EmptyRequest
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.NotifyLimiter, q, nil, func(r api.NotifyLimiterReply) string {
			s := fmt.Sprintf("scope %s: %g per second, burst %d; %d notifications pending\n", r.Scope, r.RatePerS, r.Burst, r.Pending)
			if r.PausedUntil != "" {
				s += "paused by the provider until " + r.PausedUntil + "\n"
			}
			return s
		})
	}
	return usageError("unknown notify command %q (list, redrive, limiter)", args[0])
}

// chatSim shows what the fake chat provider accepted (serve --chat-sim).
func chatSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, "usage: bankbook chat-sim messages [--channel C] [--limit N | --from N [--limit N]]")
	}
	if args[0] != "messages" {
		return usageError("unknown chat-sim command %q (messages)", args[0])
	}
	fs, cf := newClientFlagSet("chat-sim messages", stderr)
	var q api.SimChatMessagesRequest
	fs.StringVar(&q.Channel, "channel", "", "only this channel (the recipient: store:ID, distributor:ID, user:ID)")
	fs.IntVar(&q.Limit, "limit", 0, "only the latest N messages (at most 1000; 0: every one, read 1000 at a time)")
	fs.IntVar(&q.From, "from", 0, "from the N-th message (1: the oldest), at most --limit of them (0: 1000)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if q.Limit == 0 && q.From == 0 {
		return simServedBy("--chat-sim", chatSimAll(ctx, cf, stdout, q))
	}
	return simServedBy("--chat-sim", call(ctx, cf, stdout, api.SimChatMessages, q, nil, chatSimText(q.Channel)))
}

// simServedBy adds to the failure of a simulator's request the serve flag
// that runs the simulator: an engine with no simulator has the NATS server
// refuse the request (403 forbidden), one with only the other simulator
// answers it with no responder.
func simServedBy(serveFlag string, err error) error {
	var ae *api.Error
	if errors.Is(err, nats.ErrNoResponders) || errors.As(err, &ae) && ae.Code == api.CodeForbidden {
		return &exitError{code: exitCode(err), err: fmt.Errorf("%w (the engine serves it only when run with 'bankbook serve %s')", err, serveFlag)}
	}
	return err
}

// chatSimPage is how many messages chatSimAll asks for at a time.
var chatSimPage = api.MaxSimChatMessages

// chatSimAll reads every message, chatSimPage at a time from the oldest,
// and shows them as one reply.
func chatSimAll(ctx context.Context, cf *clientFlags, stdout io.Writer, q api.SimChatMessagesRequest) error {
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	all := api.SimChatMessagesReply{Messages: []api.SimChatMessage{}}
	for q.From, q.Limit = 1, chatSimPage; ; {
		r, raw, err := client.Do(ctx, c, api.SimChatMessages, q, nil)
		if err != nil {
			if cf.json { // nothing is printed before the last page
				printErrorBody(stdout, raw.Data)
			}
			return requestFailed(err)
		}
		all.Messages, all.Total, all.Refused = append(all.Messages, r.Messages...), r.Total, r.Refused
		q.From += len(r.Messages)
		if len(r.Messages) == 0 || q.From > r.Total {
			break
		}
	}
	if cf.json {
		b, err := json.Marshal(all)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprint(stdout, chatSimText(q.Channel)(all))
	return nil
}

// chatSimText prints a reply for channel ("": every channel): the accepted
// messages counted are the channel's, the refused requests every channel's.
func chatSimText(channel string) func(api.SimChatMessagesReply) string {
	return func(r api.SimChatMessagesReply) string {
		var b strings.Builder
		for _, m := range r.Messages {
			fmt.Fprintf(&b, "%s  %-24s %-16s %s\n", m.ReceivedAt, m.Channel, m.CustomType, m.Message)
		}
		on := ""
		if channel != "" {
			on = " on " + channel
		}
		shown := ""
		if len(r.Messages) < r.Total {
			shown = fmt.Sprintf(" (%d shown)", len(r.Messages))
		}
		fmt.Fprintf(&b, "%s accepted%s%s, %s refused with 429 (on every channel)\n", counted(r.Total, "message"), on, shown, counted(r.Refused, "request"))
		return b.String()
	}
}
