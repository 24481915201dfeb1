package console

import (
	"net/http"
	"strings"

	"github.com/bankbook/bankbook/api"
)

// storesPageLimit is how many stores or bills one page of the bills page
// lists.
const storesPageLimit = 50

type billsData struct {
	DistributorID string
	StoreID       string
	// Stores are the distributor's linked stores (without a store ID).
	Stores []api.StoreView
	// Store and Bills are one store's link and its bills, newest first
	// (with a store ID).
	Store *api.StoreView
	Bills []api.BillView
	Pager pager
}

// bills shows a distributor's linked stores with their dedicated
// accounts (청구), or one store's link and every bill it was issued: what
// support answers a store or a distributor asking about an account or a
// bill.
func (c *Console) bills(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := billsData{DistributorID: strings.TrimSpace(q.Get("distributor_id")), StoreID: strings.TrimSpace(q.Get("store_id"))}
	v := view{Title: "Bills 청구", Nav: "bills"}
	cursor := q.Get("cursor")
	page := api.PageRequest{Limit: pageLimit(r, storesPageLimit), Cursor: cursor}
	switch {
	case d.DistributorID == "":
	case d.StoreID == "":
		rep, _, err := call(c, r, s, api.StoreList, api.StoreListRequest{DistributorID: d.DistributorID, PageRequest: page}, "")
		if v.Err = apiError(err); err == nil {
			d.Stores, d.Pager = rep.Stores, newPager(Prefix+"bills", q, cursor, rep.NextCursor)
		}
	default:
		link, _, err := call(c, r, s, api.StoreGet, api.GetStoreRequest{DistributorID: d.DistributorID, StoreID: d.StoreID}, "")
		if v.Err = apiError(err); err != nil {
			break
		}
		d.Store = &link
		rep, _, err := call(c, r, s, api.BillList, api.BillListRequest{DistributorID: d.DistributorID, StoreID: d.StoreID, PageRequest: page}, "")
		if v.Err = apiError(err); err == nil {
			d.Bills, d.Pager = rep.Bills, newPager(Prefix+"bills", q, cursor, rep.NextCursor)
		}
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "bills", v)
}
