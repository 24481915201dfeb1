package console

import (
	"net/http"
	"strings"

	"github.com/bankbook/bankbook/api"
)

type walletData struct {
	UserID string
	Wallet *api.WalletView
	Pager  pager
}

// wallet looks a user's wallet (지갑) up, one page of movements at a time.
func (c *Console) wallet(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := walletData{UserID: strings.TrimSpace(q.Get("user_id"))}
	v := view{Title: "Wallets 지갑", Nav: "wallets"}
	if d.UserID != "" {
		cursor := q.Get("cursor")
		wv, _, err := call(c, r, s, api.WalletGet, api.WalletRequest{UserID: d.UserID, PageRequest: api.PageRequest{Limit: pageLimit(r, 50), Cursor: cursor}}, "")
		v.Err = apiError(err)
		if err == nil {
			d.Wallet = &wv
			d.Pager = newPager(Prefix+"wallets", q, cursor, wv.NextCursor)
		}
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "wallets", v)
}

// payoutStatuses are the statuses the payout list offers.
var payoutStatuses = []string{"requested", "settled", "failed"}

type payoutsData struct {
	Status   string
	Statuses []string
	Payouts  []api.PayoutView
	Pager    pager
}

// payouts lists payouts (지급), of one status when asked.
func (c *Console) payouts(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	cursor := q.Get("cursor")
	d := payoutsData{Status: q.Get("status"), Statuses: payoutStatuses}
	rep, _, err := call(c, r, s, api.PayoutList, api.PayoutListRequest{Status: d.Status, PageRequest: api.PageRequest{Limit: pageLimit(r, 25), Cursor: cursor}}, "")
	v := view{Title: "Payouts 지급", Nav: "payouts", Err: apiError(err)}
	d.Payouts, d.Pager = rep.Payouts, newPager(Prefix+"payouts", q, cursor, rep.NextCursor)
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "payouts", v)
}

// payout shows one payout: status, provider reference, failure, fee.
func (c *Console) payout(w http.ResponseWriter, r *http.Request, s *session) {
	pv, _, err := call(c, r, s, api.PayoutGet, api.PayoutRequest{PayoutID: r.PathValue("payout")}, "")
	v := view{Title: "Payout 지급 " + r.PathValue("payout"), Nav: "payouts", Err: apiError(err)}
	if err == nil {
		v.Data = pv
	}
	c.render(w, r, s, statusOf(v.Err), "payout", v)
}
