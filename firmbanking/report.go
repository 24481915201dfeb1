package firmbanking

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
)

// Reporter is a provider that reports the transfers it finished.
type Reporter interface {
	// Report returns the provider's report of the transfers that became
	// final (settled or failed) in [from, to): a CSV file of
	// api.PayoutReportColumns (the dialect `bankbook reconcile payouts
	// --report` reads), with its header row.
	Report(ctx context.Context, from, to time.Time) ([]byte, error)
}

// Report implements Reporter: GET {BaseURL}/reports/transfers?from=&to=
// (RFC 3339), retried on transient failures like Status. An answer over
// 16 MiB is refused (ErrPermanent) rather than read in part.
func (c *Client) Report(ctx context.Context, from, to time.Time) ([]byte, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: report from %s to %s: an empty period", ErrInvalidConfig, from, to)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := c.withDefaults()
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	var data []byte
	_, err := cfg.do(ctx, request{
		op:     "report",
		id:     from.UTC().Format(time.RFC3339) + "/" + to.UTC().Format(time.RFC3339),
		method: http.MethodGet,
		path:   "/reports/transfers?" + q.Encode(),
		ok:     []int{http.StatusOK},
		raw:    &data,
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// report answers GET /reports/transfers: the transfers final on the
// fake's clock whose final time (accepted + SettleAfter) is in [from, to),
// in acceptance order.
func (s *FakeService) report(r *http.Request) reply {
	from, ferr := time.Parse(time.RFC3339Nano, r.URL.Query().Get("from"))
	to, terr := time.Parse(time.RFC3339Nano, r.URL.Query().Get("to"))
	if ferr != nil || terr != nil || !from.Before(to) {
		return errReply(http.StatusBadRequest, "bad_request", "from and to must be RFC 3339 times, from before to")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []api.PayoutReportLine
	for _, id := range s.order {
		ft := s.transfers[id]
		res := s.resultLocked(ft)
		at := ft.accepted.Add(s.opts.SettleAfter)
		if !res.Status.Final() || at.Before(from) || !at.Before(to) {
			continue
		}
		lines = append(lines, api.PayoutReportLine{PayoutID: id, Status: string(res.Status), Amount: ft.t.Amount, Fee: res.Fee, SettledAt: at})
	}
	var b strings.Builder
	if err := api.WritePayoutReport(&b, lines); err != nil {
		return errReply(http.StatusInternalServerError, "internal", "%v", err)
	}
	return reply{status: http.StatusOK, header: http.Header{"Content-Type": {"text/csv; charset=utf-8"}}, body: rawBody(b.String())}
}

// rawBody is a reply body written as it is, not as JSON.
type rawBody string
