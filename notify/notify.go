package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/httpretry"
	"github.com/bankbook/bankbook/internal/logsample"
	"github.com/bankbook/bankbook/process"
	"github.com/bankbook/bankbook/ratelimit"
	"github.com/bankbook/bankbook/supervisor"
	"github.com/bankbook/bankbook/worker"
)

// Config configures the notification parts.
type Config struct {
	// Codec decodes the events of the commits handled. Required.
	Codec *domain.Codec
	// Notifications records notifications and their attempts. Required.
	Notifications *commands.Notifications
	// Provider sends the messages. Optional: without it the Notifier only
	// records them (Record), and its instance runs no Dispatch: the
	// notifications wait for an instance that has a provider.
	Provider chat.Provider
	// Limiter is the shared limit every dispatcher keeps to. Required with a
	// Provider.
	Limiter *ratelimit.Limiter
	// MaxAttempts is how many failed sends since the last redrive
	// dead-letter a notification. Default 10: with the default backoff, a
	// provider down for less than about 8½ minutes dead-letters nothing.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait after a failed send: it
	// doubles from MinBackoff with each failure, up to MaxBackoff, half of
	// it random ("equal jitter"). Defaults 2s and 10m.
	MinBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one call of the provider. Default 10s.
	SendTimeout time.Duration
	// MaxSlotWait is how long a dispatcher sleeps for its limiter slot;
	// further slots are waited for with the commit given back. Default 2s.
	MaxSlotWait time.Duration
	// AttemptLease is how long after recording an attempt a dispatcher
	// may still start sending it. Another dispatcher takes an attempt left
	// in doubt over only after AttemptLease + SendTimeout + ClockSkew, so
	// the two never both send. More than MaxSlotWait. Default 3s.
	AttemptLease time.Duration
	// ClockSkew is how far apart the clocks of engine hosts may be.
	// Default 2s.
	ClockSkew time.Duration
	// MaxLateness is how late after its slot a send may still start; a
	// later one takes a new slot. It must leave part of the limiter's
	// margin for the request's own way to the provider. Default 20ms.
	MaxLateness time.Duration
	// LimiterRetry is how long a notification waits when the limiter cannot
	// be asked (KV unavailable: fail closed). Default 1s.
	LimiterRetry time.Duration
	// UnknownEventRetry is how long a commit with an event type this engine
	// does not know waits for an instance that knows it. Default 30s.
	UnknownEventRetry time.Duration
	// Ahead, if not nil, returns where notification id stands among those
	// to send, once it knows the commit at seq, which made id pending, and
	// every commit before (projections.Runner.PendingAhead). A notification
	// never tried waits for the one ahead of it, so that one recipient's
	// messages arrive in the order of the events that called for them, for
	// up to MaxAheadWait after its creation. Without it, or when it fails,
	// notifications go in any order.
	Ahead func(ctx context.Context, id domain.NotificationID, seq eventstore.Seq) (Queue, error)
	// Recorded, if not nil, returns how far notifications are recorded:
	// every event up to stream sequence upTo has its notifications in
	// commits up to within (react-notify's acknowledged commits, then the
	// stream's end). Where several instances record notifications, one for
	// an earlier event may not be recorded yet when a later one is: with
	// Recorded, a notification never tried also waits, for up to 10 s
	// after its creation, until every event before its own is recorded,
	// then looks again.
	Recorded func(ctx context.Context) (upTo, within eventstore.Seq, err error)
	// AheadWait is how long a notification waiting for the one ahead of it
	// gives its commit back before it looks again, at least: with queued
	// notifications before it, queued × AheadPace (the time their slots
	// take), up to 30 s. Defaults 200ms and 200ms (5 a second).
	AheadWait, AheadPace time.Duration
	// MaxAheadWait bounds how long after its creation a notification still
	// waits for one ahead of it (one that nothing sends, such as one whose
	// commit this engine cannot read, holds up no other for longer).
	// Default 10m.
	MaxAheadWait time.Duration
	// Log receives a line per result and per wait worth knowing.
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 2 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Minute
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 10 * time.Second
	}
	if c.MaxSlotWait == 0 {
		c.MaxSlotWait = 2 * time.Second
	}
	if c.AttemptLease == 0 {
		c.AttemptLease = 3 * time.Second
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 2 * time.Second
	}
	if c.MaxLateness == 0 {
		c.MaxLateness = 20 * time.Millisecond
	}
	if c.LimiterRetry == 0 {
		c.LimiterRetry = time.Second
	}
	if c.UnknownEventRetry == 0 {
		c.UnknownEventRetry = 30 * time.Second
	}
	if c.AheadWait == 0 {
		c.AheadWait = 200 * time.Millisecond
	}
	if c.AheadPace == 0 {
		c.AheadPace = 200 * time.Millisecond
	}
	if c.MaxAheadWait == 0 {
		c.MaxAheadWait = 10 * time.Minute
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Codec == nil || c.Notifications == nil {
		errs = append(errs, errors.New("a codec and the notifications handler are required"))
	}
	if c.Provider != nil && c.Limiter == nil {
		errs = append(errs, errors.New("a provider needs a limiter"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("max attempts must be at least 1"))
	}
	if c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, errors.New("backoff must satisfy 0 <= min <= max"))
	}
	if c.AttemptLease <= c.MaxSlotWait {
		errs = append(errs, errors.New("the attempt lease must be longer than the slot wait"))
	}
	if c.SendTimeout < 0 || c.MaxSlotWait < 0 || c.MaxLateness < 0 || c.ClockSkew < 0 || c.LimiterRetry < 0 || c.UnknownEventRetry < 0 || c.AheadWait < 0 || c.AheadPace < 0 || c.MaxAheadWait < 0 {
		errs = append(errs, errors.New("timeouts and waits must not be negative"))
	}
	return errors.Join(errs...)
}

// Queue is where a notification stands among those to send (Config.Ahead).
type Queue struct {
	// Ahead is the notification to the same recipient that goes first (""
	// for none): called for by an earlier event, pending, and not waiting
	// for a retry after a failed send.
	Ahead domain.NotificationID
	// Queued counts, with one Ahead, the notifications to anyone pending
	// before this one: roughly how many slots of the shared limit go first.
	Queued int
	// SourceSeq is the sequence of the commit whose event called for the
	// notification (0: unknown).
	SourceSeq eventstore.Seq
}

// Notifier records and dispatches notifications. It is safe for concurrent
// use.
type Notifier struct {
	cfg Config
	// limiter is how the shared limiter has answered: reportLimiter.
	limiter limiterHealth
	// doubts are the in-doubt attempts whose check with the provider
	// failed: settleDoubt.
	doubts failedChecks
	// aheadLog logs Config.Ahead's failures, which a busy engine whose read
	// models lag repeats for every notification: sampled.
	aheadLog zerolog.Logger
	// checkTook is how long this dispatcher's last Limiter.Check took
	// (ns): checkLead.
	checkTook atomic.Int64
}

// failedChecks remembers, per notification in doubt (at the version it was
// judged on), when this dispatcher first failed to ask the provider about
// it, so that a doubt is dead-lettered only once the checks have failed
// for the outage allowance, not on one failed check made late (after the
// engine was stopped, say). It is memory only: after a restart the count
// begins again, which only delays the dead letter.
type failedChecks struct {
	mu    sync.Mutex
	first map[domain.NotificationID]failedCheck
}

type failedCheck struct {
	version int
	at      time.Time
}

// maxFailedChecks bounds failedChecks: past it, the entry failed longest
// ago is forgotten (its next failure counts from then).
const maxFailedChecks = 10_000

// since returns when the checks of note at its version began failing,
// now if this is the first failure seen.
func (f *failedChecks) since(note domain.Notification, now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.first[note.ID]; ok && e.version == note.Version {
		return e.at
	}
	if f.first == nil {
		f.first = map[domain.NotificationID]failedCheck{}
	}
	if len(f.first) >= maxFailedChecks {
		var oldest domain.NotificationID
		var at time.Time
		for id, e := range f.first {
			if oldest == "" || e.at.Before(at) {
				oldest, at = id, e.at
			}
		}
		delete(f.first, oldest)
	}
	f.first[note.ID] = failedCheck{version: note.Version, at: now}
	return now
}

// forget drops what was remembered of id: its doubt is settled.
func (f *failedChecks) forget(id domain.NotificationID) {
	f.mu.Lock()
	delete(f.first, id)
	f.mu.Unlock()
}

// limiterHealth is how the shared limiter has answered the part's calls.
// Its mutex orders each decision with the report it makes, so an answer
// racing a failure never leaves a stale "failing" behind it.
type limiterHealth struct {
	// trouble is set while failingSince or reported is: an answered call
	// takes the mutex only then.
	trouble atomic.Bool
	mu      sync.Mutex
	// failingSince is since when every call failed (zero: the last call
	// was answered); reported, whether the part was reported failing.
	failingSince time.Time
	reported     bool
}

// New returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("notify config: %w", err)
	}
	return &Notifier{cfg: cfg, aheadLog: logsample.Flood(cfg.Log)}, nil
}

// Config returns the configuration in use, defaults filled in.
func (n *Notifier) Config() Config { return n.cfg }

// actor is who the notification commands are recorded as: engine work, as
// for the other reactors.
const actor = "reactor"

func meta(command string, env eventstore.Envelope) commands.Meta {
	return commands.Meta{Command: command, CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: actor}
}

// decode decodes one event of c (process.Decode, with this notifier's wait).
func (n *Notifier) decode(c eventstore.Commit, env eventstore.Envelope) (domain.Event, error) {
	return process.Decode(n.cfg.Codec, c, env, n.cfg.UnknownEventRetry, n.cfg.Log)
}

// SourceTypes are the aggregate types whose events can call for a message:
// the ones Record reacts to.
var SourceTypes = []string{domain.AggregateLink, domain.AggregateOrder, domain.AggregateWallet, domain.AggregatePayout}

// Record records the notifications the events of c call for, each once.
func (n *Notifier) Record(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := n.decode(c, env)
		if err != nil {
			return err
		}
		for _, in := range domain.NotificationIntents(env.EventID, ev) {
			in.SourceSeq = uint64(c.Seq)
			if _, err := n.cfg.Notifications.Create(ctx, meta("reactor.notify", env), in); err != nil {
				return fmt.Errorf("record notification %s (%s to %s): %w", in.ID, in.Kind, in.Recipient, err)
			}
		}
	}
	return nil
}

// Dispatch drives the notification of c to sent or dead when c is the
// commit that made it pending (created or redriven); other commits need
// nothing. Until then it returns a wait (worker.RetryAfter with a nil
// error), so the commit stays with the dispatchers and is never
// dead-lettered by the worker loop: the notification's own attempts decide.
// It needs a Provider.
func (n *Notifier) Dispatch(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := n.decode(c, env)
		if err != nil {
			return err
		}
		var id domain.NotificationID
		switch e := ev.(type) {
		case domain.NotificationCreated:
			id = e.NotificationID
		case domain.NotificationRedriven:
			id = e.NotificationID
		default:
			continue
		}
		if err := n.deliver(ctx, meta("dispatcher.notify", env), id, c.Seq); err != nil {
			return err
		}
	}
	return nil
}

// deliver takes one step towards delivering notification id, which the
// commit at seq made pending; nil once it is sent or dead.
func (n *Notifier) deliver(ctx context.Context, m commands.Meta, id domain.NotificationID, seq eventstore.Seq) error {
	note, err := n.cfg.Notifications.Get(ctx, id)
	if err != nil {
		return err
	}
	if note.ID == "" || note.Status != domain.NotificationStatusPending {
		return nil
	}
	if n.cfg.Provider == nil {
		return errors.New("notify: Dispatch without a provider (run only Record where there is none)")
	}
	now := n.cfg.Notifications.Now()
	if wait := note.RetryAt.Sub(now); wait > 0 {
		return worker.RetryAfter(wait, nil)
	}
	msg := chat.Message{ID: string(note.ID), Kind: note.Kind, Recipient: note.Recipient, Text: note.Message, Data: note.Data}
	if note.InDoubt {
		// The dispatcher that recorded the attempt may still be sending
		// it: not before its lease and the send's timeout have run out
		// can the provider's answer be final.
		if wait := note.LastAttemptAt.Add(n.doubtWait()).Sub(now); wait > 0 {
			return worker.RetryAfter(wait, nil)
		}
		done, err := n.settleDoubt(ctx, m, note, msg)
		if done || err != nil {
			return err
		}
	}
	if wait := n.waitAhead(ctx, note, seq, now); wait > 0 {
		return worker.RetryAfter(wait, nil)
	}
	// The slot first, then the attempt is recorded while its time comes,
	// so that the send follows the slot as closely as it can.
	r, err := n.reserve(ctx, note)
	if err != nil {
		return err
	}
	reserved := time.Now()
	leased := reserved // the attempt's time is taken in Attempt, after this
	attempt, err := n.cfg.Notifications.Attempt(ctx, m, id, note.Attempts)
	if errors.Is(err, domain.ErrAttemptTaken) {
		// Another dispatcher got the commit too (a redelivery after a
		// stall, a redrive) and is at it: its attempt settles first.
		n.cfg.Log.Info().Str("notification_id", string(id)).Msg("another dispatcher is attempting the notification; waiting for its outcome")
		return worker.RetryAfter(n.doubtWait(), nil)
	}
	if err != nil {
		return err
	}
	for {
		// A pause set since the slot was claimed (another dispatcher's
		// send was answered 429) covers it: nothing is sent inside the
		// provider's retry-after. The last look for one is made ahead of
		// the slot, by about as long as a look takes, so that the send
		// still starts within MaxLateness of its slot when the limiter's
		// NATS is slow to answer (far away, or busy).
		if err := httpretry.Sleep(ctx, r.Delay-time.Since(reserved)-n.checkLead()); err != nil {
			return err
		}
		if late := time.Since(reserved) - r.Delay; late <= n.cfg.MaxLateness {
			// A slot claimed less than the lead before it (the schedule
			// idle, the limiter far) cannot be looked at ahead when a
			// look would end past MaxLateness: the reservation, which
			// read the schedule then and got no slot inside a pause, is
			// the last look. Otherwise every slot of a far limiter would
			// be missed, one after the other, until the attempt's lease
			// ran out.
			if late+time.Duration(n.checkTook.Load()) <= n.cfg.MaxLateness || r.Delay > n.checkLead() {
				looked := time.Now()
				cctx, cancel := context.WithTimeout(ctx, limiterTimeout)
				err := n.cfg.Limiter.Check(cctx, r)
				cancel()
				n.checkTook.Store(int64(time.Since(looked)))
				n.reportLimiter(ctx, err)
				if err != nil {
					return n.notSent(ctx, m, attempt, err)
				}
			}
			if err := httpretry.Sleep(ctx, r.Delay-time.Since(reserved)); err != nil {
				return err
			}
			if n.onTime(r, reserved) {
				break
			}
		}
		if time.Since(leased) > n.cfg.AttemptLease {
			break // not sent: the lease check below leaves it in doubt
		}
		// The process stalled past the slot: sending now could crowd the
		// slots after it, so take a new one. The attempt stays recorded,
		// and one send follows it; when no new slot comes within the
		// lease (a pause since, the schedule full, the limiter
		// unreachable) nothing is sent.
		r, err = n.reserve(ctx, note)
		if err == nil && time.Since(leased)+r.Delay > n.cfg.AttemptLease {
			err = worker.RetryAfter(r.Delay, nil)
		}
		if err != nil {
			return n.noNewSlot(ctx, m, attempt, err)
		}
		reserved = time.Now()
	}
	// Past its lease another dispatcher may take the attempt over (it
	// waits for the lease and the send's timeout, then asks the provider):
	// a send now could be a second one. It stays in doubt instead.
	if time.Since(leased) > n.cfg.AttemptLease {
		n.cfg.Log.Info().Str("notification_id", string(id)).Msg("attempt's lease ran out before its slot came (a stall?); not sending, the attempt stays in doubt")
		return worker.RetryAfter(n.doubtWait(), nil)
	}
	sctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	receipt, err := n.cfg.Provider.Send(sctx, msg)
	cancel()
	if err == nil {
		_, err = n.cfg.Notifications.Sent(ctx, m, id, receipt.Ref, false)
		if err == nil {
			n.cfg.Log.Debug().Str("notification_id", string(id)).Str("kind", note.Kind).Str("recipient", note.Recipient).Msg("notification sent")
		}
		return err
	}
	return n.failed(ctx, m, attempt, err)
}

// aheadTimeout bounds Config.Ahead's wait for the read models,
// maxAheadPoll how long a notification waiting for another's turn gives its
// commit back at most, and maxUnrecordedWait how long after its creation a
// notification waits for the events before its own to be recorded
// (Config.Recorded).
const (
	aheadTimeout      = 2 * time.Second
	maxAheadPoll      = 30 * time.Second
	maxUnrecordedWait = 10 * time.Second
)

// waitAhead returns how long note, never tried, made pending by the commit
// at seq, waits for a notification to its recipient that goes before it
// (Config.Ahead, Config.Recorded), at now; 0 for not at all: not past
// MaxAheadWait after its creation, and not when they cannot tell.
func (n *Notifier) waitAhead(ctx context.Context, note domain.Notification, seq eventstore.Seq, now time.Time) time.Duration {
	age := now.Sub(note.CreatedAt)
	if n.cfg.Ahead == nil || note.Attempts > 0 || age > n.cfg.MaxAheadWait {
		return 0
	}
	actx, cancel := context.WithTimeout(ctx, aheadTimeout)
	defer cancel()
	q, err := n.cfg.Ahead(actx, note.ID, seq)
	if err == nil && q.Ahead == "" && n.cfg.Recorded != nil && q.SourceSeq > 0 && age <= maxUnrecordedWait {
		// None ahead among the notifications recorded so far; but an event
		// before its own may call for one not recorded yet.
		var upTo, within eventstore.Seq
		if upTo, within, err = n.cfg.Recorded(actx); err == nil {
			if upTo < q.SourceSeq {
				n.cfg.Log.Debug().Str("notification_id", string(note.ID)).Uint64("source_seq", uint64(q.SourceSeq)).Uint64("recorded_up_to", uint64(upTo)).
					Msg("waiting for the notifications of the events before this one's to be recorded")
				// Looked at less often as it ages: a react-notify commit
				// that keeps failing holds every new notification up.
				return max(n.cfg.AheadWait, age/4)
			}
			q, err = n.cfg.Ahead(actx, note.ID, within)
		}
	}
	switch {
	case err != nil:
		n.aheadLog.Warn().Err(err).Str("notification_id", string(note.ID)).Msg("cannot tell whether a notification to the same recipient goes first; sending this one now")
		return 0
	case q.Ahead == "":
		return 0
	}
	wait := min(max(n.cfg.AheadWait, time.Duration(q.Queued)*n.cfg.AheadPace), maxAheadPoll)
	n.cfg.Log.Debug().Str("notification_id", string(note.ID)).Str("ahead", string(q.Ahead)).Int("queued", q.Queued).Dur("wait", wait).Msg("waiting for the recipient's earlier notification to be sent first")
	return wait
}

// maxCheckLead bounds how far ahead of its slot a dispatcher makes its
// last look for a pause: one set closer to the slot than that is not seen,
// and the send may be answered 429 (then paused and retried, uncounted).
const maxCheckLead = 500 * time.Millisecond

// checkLead is how far ahead of its slot a dispatcher makes its last look
// for a pause (Limiter.Check): twice as long as its last look took.
func (n *Notifier) checkLead() time.Duration {
	return min(2*time.Duration(n.checkTook.Load()), maxCheckLead)
}

// onTime reports whether the slot r, claimed at reserved, may still be
// used now: not later than MaxLateness after it, and within its margin.
func (n *Notifier) onTime(r ratelimit.Reservation, reserved time.Time) bool {
	return time.Since(reserved)-r.Delay <= n.cfg.MaxLateness && r.Valid(time.Now())
}

// notSent records an attempt that was not sent because its slot was
// forfeit (err from Limiter.Check): a pause covers it, or the limiter
// could not be asked (fail closed). Like a 429 it is not counted towards
// dead-lettering, and the notification is due again after the wait.
func (n *Notifier) notSent(ctx context.Context, m commands.Meta, note domain.Notification, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the attempt is settled by whoever takes it over
	}
	wait, reason := n.cfg.LimiterRetry, "not sent: the rate limiter could not be asked before sending"
	if w, ok := errors.AsType[*ratelimit.WaitError](err); ok {
		wait, reason = w.Wait, "not sent: the provider's retry-after pause began after this slot was claimed"
	} else {
		n.cfg.Log.Warn().Err(err).Str("notification_id", string(note.ID)).Msg("rate limiter unavailable before sending; the notification waits (fail closed)")
	}
	if _, err := n.cfg.Notifications.Throttled(ctx, m, note.ID, note.Attempts, reason, n.cfg.Notifications.Now().Add(wait)); err != nil {
		return err
	}
	n.cfg.Log.Info().Str("notification_id", string(note.ID)).Str("retry_in", wait.String()).Msg(reason)
	return worker.RetryAfter(wait, nil)
}

// noNewSlot records an attempt whose dispatcher woke past its slot and got
// no new one within the attempt's lease (err: the wait for a slot, or for
// the limiter) as not sent, like a forfeit slot: it is neither counted
// towards dead-lettering nor in doubt, and the notification is due again
// after the wait.
func (n *Notifier) noNewSlot(ctx context.Context, m commands.Meta, note domain.Notification, err error) error {
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	if !ok || ra.Err != nil || ctx.Err() != nil {
		return err // stopping: the attempt is settled by whoever takes it over
	}
	const reason = "not sent: the dispatcher woke past its slot and got no new one within the attempt's lease"
	if _, terr := n.cfg.Notifications.Throttled(ctx, m, note.ID, note.Attempts, reason, n.cfg.Notifications.Now().Add(ra.Delay)); terr != nil {
		return terr
	}
	n.cfg.Log.Info().Str("notification_id", string(note.ID)).Str("retry_in", ra.Delay.String()).Msg(reason)
	return err
}

// doubtWait is how long after an attempt was recorded its dispatcher may
// still be sending it: the lease, the send's timeout and the clock skew
// allowed between hosts. Only then is its outcome the provider's to tell.
func (n *Notifier) doubtWait() time.Duration {
	return n.cfg.AttemptLease + n.cfg.SendTimeout + n.cfg.ClockSkew
}

// outageTolerance is the least time failing sends take to dead-letter a
// notification: the MaxAttempts−1 waits between them, each at its shortest
// (half the backoff). With the defaults 511 s, about 8½ minutes. An
// in-doubt attempt the provider cannot be asked about for that long past
// doubtWait is dead-lettered the same way.
func (n *Notifier) outageTolerance() time.Duration {
	var d time.Duration
	for f := 1; f < n.cfg.MaxAttempts; f++ {
		d += httpretry.ExpDelay(n.cfg.MinBackoff, n.cfg.MaxBackoff, 2, f-1) / 2
	}
	return d
}

// settleDoubt asks the provider whether an in-doubt attempt arrived, and
// records it sent if it did (done). A provider that cannot tell gets the
// message again.
func (n *Notifier) settleDoubt(ctx context.Context, m commands.Meta, note domain.Notification, msg chat.Message) (done bool, _ error) {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	receipt, found, err := n.cfg.Provider.Delivered(cctx, msg, note.CreatedAt.Add(-deliveredSkew))
	cancel()
	switch {
	case errors.Is(err, chat.ErrCannotCheck):
		n.doubts.forget(note.ID)
		return false, nil
	case err != nil && ctx.Err() != nil:
		return true, ctx.Err() // stopping: the check was cut short, not failed
	case err != nil:
		now := n.cfg.Notifications.Now()
		age := now.Sub(note.LastAttemptAt)
		// How long the provider has failed to answer: from the doubt's
		// wait, or from the last redrive, which gives the doubt a new
		// allowance as it gives sends, and not before the first check
		// that failed, so that one failure after a long pause (the
		// engine stopped) is not taken for an outage that long.
		since := note.LastAttemptAt.Add(n.doubtWait())
		if note.RedrivenAt.After(since) {
			since = note.RedrivenAt
		}
		if first := n.doubts.since(note, now); first.After(since) {
			since = first
		}
		unsettled := max(now.Sub(since), 0)
		if unsettled >= n.outageTolerance() {
			// Failing as long as failing sends would have been to go dead
			// (a provider down behind a gateway answers the check 5xx too):
			// dead, for an operator to see and redrive once it is back.
			reason := fmt.Sprintf("in doubt for %s: cannot ask the provider whether the message arrived: %s",
				age.Round(time.Second), shorten(err.Error()))
			after, derr := n.cfg.Notifications.DoubtUnsettled(ctx, m, note.ID, note.Version, reason)
			if derr == nil {
				n.doubts.forget(note.ID)
			}
			switch {
			case derr != nil:
				return true, derr
			case after.Status == domain.NotificationStatusDead:
				n.cfg.Log.Warn().Str("notification_id", string(note.ID)).Str("kind", note.Kind).Str("recipient", note.Recipient).
					Int("attempts", after.Attempts).Str("last_error", reason).Msg("notification dead-lettered; bankbook notify redrive brings it back")
				return true, nil
			case after.Status == domain.NotificationStatusPending:
				// Nothing recorded: another dispatcher moved the
				// notification on meanwhile (a redelivery of this commit).
				// This commit is what keeps it pending: not acknowledged,
				// it comes back and the notification is looked at again.
				return true, worker.RetryAfter(n.cfg.MinBackoff, nil)
			}
			return true, nil
		}
		// Asked again later, and later the longer the checks have failed:
		// a quarter of that time, between the backoff's bounds, half of it
		// random. A provider that stays down is asked less and less often,
		// until the checks have failed for outageTolerance.
		d := min(max(unsettled/4, n.cfg.MinBackoff), n.cfg.MaxBackoff)
		d = d/2 + httpretry.FullJitter(d/2)
		n.cfg.Log.Info().Err(err).Str("notification_id", string(note.ID)).Str("retry_in", d.String()).
			Msg("cannot ask the provider whether an in-doubt message arrived; asking again later")
		return true, worker.RetryAfter(d, nil)
	case found:
		n.doubts.forget(note.ID)
		_, err := n.cfg.Notifications.Sent(ctx, m, note.ID, receipt.Ref, true)
		n.cfg.Log.Info().Str("notification_id", string(note.ID)).Msg("in-doubt message had arrived; recorded as sent, not sent again")
		return true, err
	}
	n.doubts.forget(note.ID)
	return false, nil
}

// reserve claims this dispatcher's slot of the shared limit when it is at
// most MaxSlotWait away, or returns the wait for one (a wait, never a
// failure). A limiter that cannot be asked fails closed: the notification
// waits.
func (n *Notifier) reserve(ctx context.Context, note domain.Notification) (ratelimit.Reservation, error) {
	rctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	r, err := n.cfg.Limiter.Reserve(rctx, n.cfg.MaxSlotWait)
	cancel()
	n.reportLimiter(ctx, err)
	if wait, ok := errors.AsType[*ratelimit.WaitError](err); ok {
		return r, worker.RetryAfter(wait.Wait, nil)
	}
	if err != nil && ctx.Err() == nil {
		n.cfg.Log.Warn().Err(err).Str("notification_id", string(note.ID)).Msg("rate limiter unavailable; the notification waits (fail closed)")
		return r, worker.RetryAfter(n.cfg.LimiterRetry, nil)
	}
	return r, err
}

// reportLimiter says how the limiter answered (err from Reserve or
// Check) to the part's supervisor: the part is failing, and so not ready,
// once every call of the limiter has failed for limiterFailingAfter (no
// notification is sent then), running again at its next answer, a wait
// included. A failure now and then under load (a slow turn, a contended
// key) does not make it flap.
func (n *Notifier) reportLimiter(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopping: the limiter was not asked to the end
	}
	if _, ok := errors.AsType[*ratelimit.WaitError](err); ok {
		err = nil
	}
	h := &n.limiter
	if err == nil && !h.trouble.Load() {
		return // only after failures: not on every slot
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if h.reported {
			supervisor.From(ctx).ReportFrom(sourceLimiter, nil)
		}
		h.failingSince, h.reported = time.Time{}, false
		h.trouble.Store(false)
		return
	}
	h.trouble.Store(true)
	now := time.Now()
	if h.failingSince.IsZero() {
		h.failingSince = now // failing from now
		return
	}
	if since := now.Sub(h.failingSince); since >= limiterFailingAfter {
		supervisor.From(ctx).ReportFrom(sourceLimiter, fmt.Errorf("rate limiter unavailable for %s, no notification is sent: %w", since.Truncate(time.Second), err))
		h.reported = true
	}
}

// limiterFailingAfter is how long the limiter must have failed every call
// before the notify part reports failing.
const limiterFailingAfter = 5 * time.Second

// sourceLimiter is the source of the notify part's failures that
// reportLimiter reports.
const sourceLimiter = "limiter"

// failed records a failed send: a 429 pauses every dispatcher and is not
// counted; a refusal dead-letters; anything else is retried after a
// backoff, a timeout or a 5xx with the attempt left in doubt.
func (n *Notifier) failed(ctx context.Context, m commands.Meta, note domain.Notification, sendErr error) error {
	now := n.cfg.Notifications.Now()
	reason := shorten(sendErr.Error())
	if errors.Is(sendErr, chat.ErrChannelCreated) && !channelCreatedLast(note) {
		// Not stored: the recipient's channel was missing and is there now.
		// Sent again in a slot of its own, not counted. Only once in a
		// row: a provider that says "not found" (Sendbird's 400201) again
		// once the channel is there means something else is missing (the
		// sender user, deleted), and sending again would loop for ever,
		// uncounted; that counts as a failure, and ends dead.
		if _, err := n.cfg.Notifications.Throttled(ctx, m, note.ID, note.Attempts, reason, now); err != nil {
			return err
		}
		return worker.RetryAfter(channelCreatedRetry, nil)
	}
	if limited, ok := errors.AsType[*chat.RateLimitedError](sendErr); ok {
		if err := n.cfg.Limiter.Pause(ctx, limited.RetryAfter); err != nil {
			n.cfg.Log.Warn().Err(err).Msg("could not share the provider's pause with the other dispatchers")
		}
		n.cfg.Log.Info().Str("notification_id", string(note.ID)).Str("retry_after", limited.RetryAfter.String()).Msg("provider throttled; every dispatcher pauses")
		if _, err := n.cfg.Notifications.Throttled(ctx, m, note.ID, note.Attempts, reason, now.Add(limited.RetryAfter)); err != nil {
			return err
		}
		return worker.RetryAfter(limited.RetryAfter, nil)
	}
	// A refusal is the message's own (a bad channel, say): dead at once.
	// A refused token is the deployment's, not the message's: retried like
	// an outage, so fixing the token needs no redrive of every message.
	rejected := errors.Is(sendErr, chat.ErrInvalidMessage)
	if r, ok := errors.AsType[*chat.RejectedError](sendErr); ok {
		rejected = !deploymentError(r)
	}
	unknown := chat.MayHaveStored(sendErr) || errors.Is(sendErr, context.DeadlineExceeded)
	delay := n.backoff(note.AttemptsSinceRedrive + 1)
	after, err := n.cfg.Notifications.Failed(ctx, m, note.ID, domain.SendFailure{
		Reason: reason, Permanent: rejected, Unknown: unknown, RetryAt: now.Add(delay), MaxAttempts: n.cfg.MaxAttempts, Attempt: note.Attempts,
	})
	if err != nil {
		return err
	}
	if after.Status == domain.NotificationStatusDead {
		n.cfg.Log.Warn().Str("notification_id", string(note.ID)).Str("kind", note.Kind).Str("recipient", note.Recipient).
			Int("attempts", after.Attempts).Str("last_error", reason).Msg("notification dead-lettered; bankbook notify redrive brings it back")
		return nil
	}
	// A warning: the provider, or the way to it, is failing (a refusal of
	// the message itself is dead at once, above), and nothing else says so
	// until the notification goes dead minutes later.
	n.cfg.Log.Warn().Str("notification_id", string(note.ID)).Str("error", reason).Str("retry_in", delay.String()).Msg("notification send failed; trying again later")
	return worker.RetryAfter(delay, nil)
}

// deploymentError reports whether a refusal is the deployment's fault, not
// the message's: a refused token (401, 403), a 404/405 without a provider
// error code (a wrong --chat-url path), or a redirect (3xx, never
// followed: an http:// URL moved to https://). Those are retried like an
// outage, so fixing the deployment needs no redrive of every message.
func deploymentError(r *chat.RejectedError) bool {
	switch r.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return r.Code == 0
	}
	return r.Status >= 300 && r.Status <= 399
}

// channelCreatedMark is how a failure recorded for chat.ErrChannelCreated
// reads (shorten keeps it).
var channelCreatedMark = strings.TrimPrefix(chat.ErrChannelCreated.Error(), "chat: ")

// channelCreatedLast reports whether the last failure recorded for the
// notification since its last redrive was a channel created: the last
// error of the attempts before a redrive is the operator's to read, not a
// reason to count the redriven notification's first channel creation.
func channelCreatedLast(note domain.Notification) bool {
	return note.LastFailedAttempt > note.AttemptsAtRedrive && strings.Contains(note.LastError, channelCreatedMark)
}

// channelCreatedRetry is how soon a message whose channel was just created
// is sent again (in a new slot).
const channelCreatedRetry = 100 * time.Millisecond

// backoff is the wait after the nth failure: doubling from MinBackoff up
// to MaxBackoff, half of it random.
func (n *Notifier) backoff(failures int) time.Duration {
	d := httpretry.ExpDelay(n.cfg.MinBackoff, n.cfg.MaxBackoff, 2, max(failures-1, 0))
	return d/2 + httpretry.FullJitter(d/2)
}

// maxReasonLen bounds the provider's words kept in a failure.
const maxReasonLen = 300

func shorten(msg string) string {
	// One line, whatever the provider answered (an HTML error page, say).
	msg = strings.Join(strings.Fields(strings.TrimPrefix(msg, "chat: ")), " ")
	if r := []rune(msg); len(r) > maxReasonLen {
		msg = string(r[:maxReasonLen]) + "…"
	}
	return msg
}

// limiterTimeout bounds one reservation: the limiter retries within its
// caller's deadline, and a dispatcher must not sit on a limiter that cannot
// answer (KV unavailable) for its whole handler time.
const limiterTimeout = 2 * time.Second

// deliveredSkew widens the in-doubt check's window before the
// notification's creation: the provider's clock may be behind ours.
const deliveredSkew = 5 * time.Minute
