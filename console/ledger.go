package console

import (
	"net/http"
	"strings"

	"github.com/bankbook/bankbook/api"
)

type ledgerData struct {
	Accounts []api.AccountBalance
	Total    int64
	AsOfSeq  api.Seq
	Pager    pager
	Charts   []chart
}

// ledger shows the trial balance (원장), one page at a time, and a chart
// of each suspense and clearing account's balance and oldest open item's age.
func (c *Console) ledger(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	cursor := q.Get("cursor")
	rep, _, err := call(c, r, s, api.LedgerTrialBalance, api.TrialBalanceRequest{Limit: pageLimit(r, 100), Cursor: cursor}, "")
	v := view{Title: "Ledger 원장", Nav: "ledger", Err: apiError(err)}
	d := ledgerData{Accounts: rep.Accounts, Total: rep.Total, AsOfSeq: rep.AsOfSeq, Pager: newPager(Prefix+"ledger", q, cursor, rep.NextCursor)}
	// The suspense and clearing accounts, which must drain
	// (api.SeriesAccounts: the accounts that hold open items).
	for _, a := range api.SeriesAccounts() {
		d.Charts = append(d.Charts, c.chartOf(r, s, a))
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "ledger", v)
}

// chartOf reads an account's series and draws it.
func (c *Console) chartOf(r *http.Request, s *session, account string) chart {
	rep, _, err := call(c, r, s, api.LedgerSeries, api.LedgerSeriesRequest{Account: account, Limit: 200}, "")
	ch := drawChart(account, rep.Points, c.now())
	ch.OpenItems, ch.OpenCount = rep.OpenItems, rep.OpenCount
	ch.Err = apiError(err)
	return ch
}

type ledgerAccountData struct {
	Account string
	Reply   *api.LedgerAccountReply
	Chart   *chart
	Pager   pager
}

// ledgerAccount drills into one account: its balance and entries, page by page.
func (c *Console) ledgerAccount(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	cursor := q.Get("cursor")
	d := ledgerAccountData{Account: strings.TrimSpace(q.Get("account"))}
	v := view{Title: "Ledger account 원장 계정", Nav: "ledger"}
	if d.Account != "" {
		rep, _, err := call(c, r, s, api.LedgerAccount, api.LedgerAccountRequest{Account: d.Account, PageRequest: api.PageRequest{Limit: pageLimit(r, 50), Cursor: cursor}}, "")
		v.Err = apiError(err)
		if err == nil {
			d.Reply = &rep
			d.Pager = newPager(Prefix+"ledger/account", q, cursor, rep.NextCursor)
		}
		if api.IsSeriesAccount(d.Account) && err == nil {
			ch := c.chartOf(r, s, d.Account)
			d.Chart = &ch
		}
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "ledger_account", v)
}
