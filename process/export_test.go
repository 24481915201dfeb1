package process

import (
	"context"

	"github.com/bankbook/bankbook/eventstore"
)

// ReactToPayout is what the two payout parts do with commit c between them:
// SendPayouts, then ReturnFailedPayouts.
func (m *Managers) ReactToPayout(ctx context.Context, c eventstore.Commit) error {
	if err := m.SendPayouts(ctx, c); err != nil {
		return err
	}
	return m.ReturnFailedPayouts(ctx, c)
}
