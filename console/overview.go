package console

import (
	"context"
	"net/http"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/ops"
)

// countCap is how many items the overview counts at most per figure
// (two pages of 500); beyond it the figure reads "1000+".
const countCap = 1000

// count is one figure of the overview.
type count struct {
	Label  string
	Korean string
	TestID string
	N      int
	More   bool
	Link   string
	Err    *errView
	// Alert highlights a figure that should be zero.
	Alert bool
}

// Text is the figure as shown.
func (c count) Text() string {
	if c.More {
		return domain.GroupThousands(int64(c.N)) + "+"
	}
	return domain.GroupThousands(int64(c.N))
}

type overviewData struct {
	Counts []count
	Health ops.ReadyReport
}

// countPages counts the items of a paged list, up to countCap.
func countPages(page func(cursor string) (n int, next string, err error)) (int, bool, error) {
	total, cursor := 0, ""
	for total < countCap {
		n, next, err := page(cursor)
		if err != nil {
			return total, false, err
		}
		total += n
		if next == "" {
			return total, false, nil
		}
		cursor = next
	}
	return total, true, nil
}

// overview shows the counts an operator watches and the health of every
// part, as /readyz reports it.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	var counts []count
	add := func(label, korean, testID, link string, alert bool, page func(cursor string) (int, string, error)) {
		n, more, err := countPages(page)
		counts = append(counts, count{Label: label, Korean: korean, TestID: testID, N: n, More: more, Link: link, Err: apiError(err), Alert: alert && (n > 0 || more)})
	}
	add("Orphan deposits", "미아 입금", "count-orphans", Prefix+"orphans", true, func(cur string) (int, string, error) {
		rep, _, err := call(c, r, s, api.DepositOrphans, api.PageRequest{Limit: 500, Cursor: cur}, "")
		return len(rep.Deposits), rep.NextCursor, err
	})
	add("Pending payouts", "지급 대기", "count-payouts-requested", Prefix+"payouts?status=requested", false, func(cur string) (int, string, error) {
		rep, _, err := call(c, r, s, api.PayoutList, api.PayoutListRequest{Status: "requested", PageRequest: api.PageRequest{Limit: 500, Cursor: cur}}, "")
		return len(rep.Payouts), rep.NextCursor, err
	})
	for _, st := range []string{api.NotificationPending, api.NotificationSent, api.NotificationDead} {
		add("Notifications "+st, "알림", "count-notifications-"+st, Prefix+"notifications?status="+st, st == api.NotificationDead, func(cur string) (int, string, error) {
			rep, _, err := call(c, r, s, api.NotifyList, api.NotifyListRequest{Status: st, PageRequest: api.PageRequest{Limit: 500, Cursor: cur}}, "")
			return len(rep.Notifications), rep.NextCursor, err
		})
	}
	add("Dead letters", "처리 실패", "count-deadletters", Prefix+"deadletters", true, func(cur string) (int, string, error) {
		rep, _, err := call(c, r, s, api.DeadLetterList, api.DeadLettersRequest{PageRequest: api.PageRequest{Limit: 500, Cursor: cur}}, "")
		return len(rep.DeadLetters), rep.NextCursor, err
	})
	health := c.health(r.Context())
	c.render(w, r, s, http.StatusOK, "overview", view{Title: "Overview 개요", Nav: "overview",
		Data: overviewData{Counts: counts, Health: health}})
}

// health asks the readiness source in-process, as /readyz does.
func (c *Console) health(ctx context.Context) ops.ReadyReport {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	return ops.Check(ctx, c.cfg.Readiness)
}
