package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/notify"
	"github.com/bankbook/bankbook/ratelimit"
	"github.com/bankbook/bankbook/worker"
)

// The notification parts: react-notify records the notifications events
// call for; notify sends them.
const (
	partReactNotify = "react-notify"
	partNotify      = "notify"
)

// notifyScope is the limiter key every instance's dispatchers share: one
// provider, one limit.
const notifyScope = "chat"

// notifyMargin stretches the interval between sends by 7 % (5 per second
// become one every 214 ms): a provider that allows 5 in any rolling second
// then tolerates 70 ms of lateness between two sends five apart, 20 of
// them spent waking up for the slot (notify.Config.MaxLateness), the rest
// on the request's way to the provider. Every instance must use the same.
const notifyMargin = 0.07

// notifyMaxAckPending leaves room for every pending notification to wait
// for its slot or its retry unacknowledged.
const notifyMaxAckPending = 100_000

// notifyHandlerTimeout bounds one dispatch: an in-doubt check (10 s at
// most), a reservation (2 s) and the wait for its slot (2 s), a send (10 s)
// and three appends.
const notifyHandlerTimeout = 30 * time.Second

// notifyAckWait is how soon another instance takes over the notifications
// of a dispatcher that died (the loop signals progress every third of it).
const notifyAckWait = 10 * time.Second

// warnOtherLimit logs a warning when the shared limiter's key was last
// written by an instance with another limit: each instance spaces its own
// reservations by its own rate, so a faster one raises the rate every
// instance shares, without an error anywhere.
func (e *Engine) warnOtherLimit(ctx context.Context, cfg Config) {
	st, err := e.Limiter.State(ctx)
	if err != nil || st.Revision == 0 || st.RatePerS == cfg.NotifyRate && st.Burst == cfg.NotifyBurst {
		return // unavailable now: the notify part says so once it asks
	}
	e.log.Warn().Float64("notify_rate", cfg.NotifyRate).Int("notify_burst", cfg.NotifyBurst).
		Float64("shared_rate", st.RatePerS).Int("shared_burst", st.Burst).
		Msg("the shared notification limit was last written with another --notify-rate or --notify-burst (by another instance, or by this one before a restart): give every instance the same, or the faster one raises the rate they share")
}

// chatSimToken is the API token of the in-process fake chat provider.
const chatSimToken = "sim"

// startNotifications opens the limiter, the provider and the notification
// parts' loops: react-notify, and notify where there is a provider.
func (e *Engine) startNotifications(ctx context.Context, cfg Config, js jetstream.JetStream, codec *domain.Codec, h *commands.Notifications) ([]*worker.Loop, error) {
	limits, err := ratelimit.Open(ctx, js, ratelimit.Config{Replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	e.streams.spareBucket(ratelimit.DefaultBucket) // the limiter creates it again on its next use
	if e.Limiter, err = limits.Limiter(notifyScope, ratelimit.Limit{Rate: cfg.NotifyRate, Burst: cfg.NotifyBurst, Margin: notifyMargin}); err != nil {
		return nil, err
	}
	e.warnOtherLimit(ctx, cfg)
	provider, err := e.chatProvider(cfg)
	if err != nil {
		return nil, err
	}
	n, err := notify.New(notify.Config{Codec: codec, Notifications: h, Provider: provider, Limiter: e.Limiter, MaxAttempts: cfg.NotifyMaxAttempts, Log: e.log,
		AheadPace: time.Duration(float64(time.Second) / cfg.NotifyRate), Ahead: e.notificationAhead, Recorded: e.notificationsRecorded})
	if err != nil {
		return nil, err
	}
	start, err := notifyStart(ctx, js, e.Events, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	e.streams.advise(kvStreamPrefix+notifyBucket, fmt.Sprintf(
		"put start_seq %d back before the engine restarts (nothing uses it until then): a restart without it stores a new start, which react-notify refuses (docs/notifications.md, where notifications begin)", start))
	record, err := e.Events.Reactor(ctx, eventstore.ReactOptions{
		Durable: partReactNotify, Types: notify.SourceTypes, Dead: e.DeadLetters, Logger: e.log,
		Concurrency: cfg.PartConcurrency.Of(partReactNotify), StartSeq: start,
	}, n.Record)
	if err != nil {
		return nil, err
	}
	if provider == nil {
		// Nothing to send with: the notifications' commits stay on the
		// shared consumer, unread, for the instances that have a
		// provider. A dispatcher here would only hand each one back a
		// minute later, over and over, the whole backlog every minute.
		return []*worker.Loop{record}, nil
	}
	dispatch, err := e.Events.Reactor(ctx, eventstore.ReactOptions{
		Durable: partNotify, Types: []string{domain.AggregateNotification}, Dead: e.DeadLetters, Logger: e.log,
		Concurrency: cfg.PartConcurrency.Of(partNotify), MaxAckPending: notifyMaxAckPending, HandlerTimeout: notifyHandlerTimeout,
		// A dispatch may wait seconds for its slot: commits pulled ahead
		// of the dispatchers beyond two each could wait in the client
		// longer than the ack wait, and go to another instance meanwhile.
		Prefetch: 2 * cfg.PartConcurrency.Of(partNotify),
		// A crashed dispatcher's notifications go to another soon.
		AckWait: notifyAckWait,
		// The notification's own attempts decide when it is dead (and
		// it stays redrivable); the loop never dead-letters its commit.
		MaxAttempts: -1,
	}, e.durableFirst(n.Dispatch))
	if err != nil {
		return nil, err
	}
	return []*worker.Loop{record, dispatch}, nil
}

// chatProvider is the provider notifications are sent through: a
// Sendbird-compatible chat API, a webhook, the fake chat provider, or none
// (notifications are recorded and wait for an instance that has one).
func (e *Engine) chatProvider(cfg Config) (chat.Provider, error) {
	if cfg.ChatSim {
		if err := e.startChatSim(cfg); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.ChatURL != "":
		token, err := secret(cfg.ChatToken, cfg.ChatTokenFile)
		if err != nil {
			return nil, fmt.Errorf("chat-token-file: %w", err)
		}
		sb := chat.SendbirdConfig{URL: cfg.ChatURL, Token: token, SenderID: cfg.ChatSender}
		if cfg.ChatSafeChannels {
			sb.ChannelURL = chat.SafeChannelURL
		}
		return chat.NewSendbird(sb)
	case cfg.NotifyWebhookURL != "":
		token, err := secret(cfg.NotifyWebhookToken, cfg.NotifyWebhookTokenFile)
		if err != nil {
			return nil, fmt.Errorf("notify-webhook-token-file: %w", err)
		}
		return chat.NewWebhook(chat.WebhookConfig{URL: cfg.NotifyWebhookURL, Token: token})
	case e.ChatSim != nil:
		return chat.NewSendbird(chat.SendbirdConfig{URL: e.chatSimURL, Token: chatSimToken})
	}
	e.log.Warn().Msg("no chat provider: this instance runs no notify part; notifications are recorded and sent once an instance with a provider (--chat-url, --notify-webhook-url, --chat-sim) runs")
	return nil, nil
}

// startChatSim serves the fake chat provider on cfg.ChatSimListen.
func (e *Engine) startChatSim(cfg Config) error {
	e.ChatSim = cfg.ChatSimInstance
	if e.ChatSim == nil {
		sim, err := chat.NewSim(chat.SimConfig{Rate: cfg.ChatSimRate, Token: chatSimToken, Log: e.log})
		if err != nil {
			return err
		}
		e.ChatSim = sim
	}
	ln, err := net.Listen("tcp", cfg.ChatSimListen)
	if err != nil {
		return fmt.Errorf("chat-sim-listen: %w", err)
	}
	srv := &http.Server{Handler: e.ChatSim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.closers = append(e.closers, srv.Close)
	e.chatSimURL = "http://" + ln.Addr().String()
	e.log.Info().Str("url", e.chatSimURL).Int("rate", cfg.ChatSimRate).Str("api_token", chatSimToken).
		Msg("fake chat provider: accepts that many messages in any rolling second, answers the rest 429")
	return nil
}

// ChatSimURL is the fake chat provider's address ("" without --chat-sim).
func (e *Engine) ChatSimURL() string { return e.chatSimURL }

// limiterState adapts the limiter to bankbook.q.notify.limiter.
type limiterState struct{ l *ratelimit.Limiter }

func (s limiterState) State(ctx context.Context) (api.NotifyLimiterReply, error) {
	st, err := s.l.State(ctx)
	if err != nil {
		return api.NotifyLimiterReply{}, err
	}
	rep := api.NotifyLimiterReply{Scope: notifyScope, RatePerS: st.RatePerS, Burst: st.Burst}
	if st.PausedUntil != nil {
		rep.PausedUntil = domain.FormatTime(*st.PausedUntil)
	}
	return rep, nil
}

// chatSimMessages adapts the fake chat provider to bankbook.sim.chat.messages.
type chatSimMessages struct{ sim *chat.Sim }

func (s chatSimMessages) Messages(channel string) ([]api.SimChatMessage, int) {
	var out []api.SimChatMessage
	for _, m := range s.sim.Messages(channel) {
		out = append(out, api.SimChatMessage{Channel: m.Channel, CustomType: m.CustomType, Message: m.Message, Data: m.Data, ReceivedAt: domain.FormatTime(m.ReceivedAt)})
	}
	return out, s.sim.Refused()
}

// notifyBucket keeps where notifications begin in the event stream.
const notifyBucket = "bankbook_notify"

// notifyStart is the stream sequence react-notify starts at: the stream's
// end when an engine first recorded notifications. A deployment that had
// history before then sends no message about its past; a new one starts
// at 1. It is kept in KV, so every instance and every recreated consumer
// agree on it.
func notifyStart(ctx context.Context, js jetstream.JetStream, events *eventstore.Store, replicas int) (eventstore.Seq, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: notifyBucket, Replicas: replicas,
		Description: "bankbook: where notifications begin in the event stream"})
	if err != nil {
		return 0, fmt.Errorf("open KV bucket %s: %w", notifyBucket, err)
	}
	const key = "start_seq"
	last, err := events.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	_, err = kv.Create(ctx, key, []byte(strconv.FormatUint(uint64(last)+1, 10)))
	if err != nil && !kvcas.Conflict(err) {
		return 0, fmt.Errorf("record where notifications begin: %w", err)
	}
	entry, err := kv.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read where notifications begin: %w", err)
	}
	seq, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s/%s holds %q: %w", notifyBucket, key, entry.Value(), err)
	}
	return eventstore.Seq(seq), nil
}

// notificationAhead is notify.Config.Ahead: the read models' queue of
// notifications (projections.Runner.PendingAhead).
func (e *Engine) notificationAhead(ctx context.Context, id domain.NotificationID, seq eventstore.Seq) (notify.Queue, error) {
	q, err := e.Runner.PendingAhead(ctx, string(id), seq)
	return notify.Queue{Ahead: domain.NotificationID(q.Ahead), Queued: q.Queued, SourceSeq: q.SourceSeq}, err
}

// notificationsRecorded is notify.Config.Recorded: how far react-notify,
// on every instance, has recorded the notifications events call for, and
// the stream's end after that, which holds them.
func (e *Engine) notificationsRecorded(ctx context.Context) (upTo, within eventstore.Seq, err error) {
	if upTo, err = e.Events.Handled(ctx, partReactNotify); err != nil {
		return 0, 0, err
	}
	within, err = e.Events.LastSeq(ctx)
	return upTo, within, err
}
