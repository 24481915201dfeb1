package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/firmbanking"
)

// WebhookActor is the actor of the results recorded on a provider's
// webhook (a reserved name no identity can take).
const WebhookActor = "webhook"

// ResultNotified records the final result of the payout a provider's
// webhook tells of (firmbanking.WebhookReceiver's Notify), at once rather
// than at the payouts part's next poll, which may be PendingRetry away.
//
// The webhook is a prompt, not the record: what is recorded is what the
// provider's status answers, over this engine's own authenticated
// connection, so a leaked webhook secret can make the engine ask, never
// record a result the provider does not hold. The answer is nil once the
// result is recorded (also by someone else first, or an event repeated);
// it matches firmbanking.ErrUnknownTransfer for a payout this engine never
// requested, firmbanking.ErrPending while the status is not final yet (or
// not shown yet, or throttled: the provider delivers again), and
// firmbanking.ErrResultContradicts when the payout was recorded with the
// other result (an operator's payout.resolve), which the payouts part
// dead-letters too, for mending by hand. It logs nothing: its caller does.
func (m *Managers) ResultNotified(ctx context.Context, ev firmbanking.WebhookEvent) error {
	if m.cfg.Provider == nil {
		return errors.New("no firm-banking provider to confirm the result with")
	}
	id := domain.PayoutID(ev.Transfer.ID)
	p, err := m.cfg.Payouts.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("payout %s: %w", id, err)
	}
	if p.Version == 0 {
		return fmt.Errorf("payout %s: this engine never requested it: %w", id, firmbanking.ErrUnknownTransfer)
	}
	st, err := m.cfg.Provider.Status(ctx, string(id))
	switch {
	case errors.Is(err, firmbanking.ErrUnknownTransfer), errors.As(err, new(*firmbanking.ThrottledError)):
		return fmt.Errorf("payout %s: the provider's status does not show it yet: %w (%w)", id, firmbanking.ErrPending, err)
	case err != nil:
		return fmt.Errorf("payout %s: asking the provider for its status: %w", id, err)
	case !st.Status.Final():
		return fmt.Errorf("payout %s: the webhook says %s, the provider's status %s: %w", id, ev.Transfer.Status, st.Status, firmbanking.ErrPending)
	}
	if st.Status != ev.Transfer.Status {
		m.cfg.Log.Warn().Str("payout_id", string(id)).Str("event_id", ev.EventID).Str("webhook", string(ev.Transfer.Status)).Str("status", string(st.Status)).
			Msg("the provider's webhook and its status disagree: recording the status")
	}
	result := finalResult(p, st, m.cfg.Payouts.Now())
	meta := commands.Meta{Command: "webhook.firmbank", CorrelationID: ev.EventID, Actor: WebhookActor}
	if p, err = m.cfg.Payouts.RecordResult(ctx, meta, id, result); err != nil {
		return err
	}
	if err := contradiction(p, result); err != nil {
		return fmt.Errorf("%w: %w", firmbanking.ErrResultContradicts, err)
	}
	return nil
}
