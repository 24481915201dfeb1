package console

import (
	"net/http"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

type reconcileRunsData struct {
	Runs  []api.ReconcileRunSummary
	Pager pager
}

// reconcileRuns lists reconciliation runs (대사), newest as the API orders them.
func (c *Console) reconcileRuns(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	cursor := q.Get("cursor")
	rep, _, err := call(c, r, s, api.ReconcileList, api.ReconcileListRequest{PageRequest: api.PageRequest{Limit: pageLimit(r, 25), Cursor: cursor}}, "")
	v := view{Title: "Reconciliation 대사", Nav: "reconcile", Err: apiError(err)}
	v.Data = reconcileRunsData{Runs: rep.Runs, Pager: newPager(Prefix+"reconcile", q, cursor, rep.NextCursor)}
	c.render(w, r, s, statusOf(v.Err), "reconcile", v)
}

// category is one category of a run's items; Open marks the findings an
// operator must clear.
type category struct {
	Name  string
	Open  bool
	Count int
	Items []domain.ReconcileItem
}

type reconcileRunData struct {
	Run        api.ReconcileReply
	Categories []category
}

// reconcileRun shows one run's items, open ones (findings) first and highlighted.
func (c *Console) reconcileRun(w http.ResponseWriter, r *http.Request, s *session) {
	rep, _, err := call(c, r, s, api.ReconcileGet, api.ReconcileGetRequest{RunID: r.PathValue("run")}, "")
	v := view{Title: "Reconciliation run 대사 " + r.PathValue("run"), Nav: "reconcile", Err: apiError(err)}
	if err == nil {
		n := rep.Counts
		v.Data = reconcileRunData{Run: rep, Categories: []category{
			{"missing_in_ledger", true, n.MissingInLedger, rep.MissingInLedger},
			{"missing_at_bank", true, n.MissingAtBank, rep.MissingAtBank},
			{"amount_mismatch", true, n.AmountMismatch, rep.AmountMismatch},
			{"duplicate", true, n.Duplicate, rep.Duplicate},
			{"timing_difference", false, n.TimingDifference, rep.TimingDifference},
			{"matched", false, n.Matched, rep.Matched},
		}}
	}
	c.render(w, r, s, statusOf(v.Err), "reconcile_run", v)
}
