package console

import (
	"net/http"
	"strings"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// orderStatuses are the statuses the order search offers.
var orderStatuses = []string{string(domain.StatusAwaitingDeposit), string(domain.StatusPaid), string(domain.StatusCancelReserved),
	string(domain.StatusCancelled), string(domain.StatusExpired)}

type ordersData struct {
	OrderID, DepositorName, BuyerName, Status string
	Statuses                                  []string
	Searched                                  bool
	Orders                                    []api.OrderView
	Pager                                     pager
}

// orders searches orders by id, depositor name (입금자명), buyer name
// (구매자) and status.
func (c *Console) orders(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := ordersData{OrderID: strings.TrimSpace(q.Get("order_id")), DepositorName: strings.TrimSpace(q.Get("depositor_name")),
		BuyerName: strings.TrimSpace(q.Get("buyer_name")), Status: q.Get("status"), Statuses: orderStatuses}
	v := view{Title: "Orders 주문", Nav: "orders"}
	if d.OrderID != "" || d.DepositorName != "" || d.BuyerName != "" || d.Status != "" || q.Has("search") {
		d.Searched = true
		cursor := q.Get("cursor")
		rep, _, err := call(c, r, s, api.OrderSearch, api.OrderSearchRequest{OrderID: d.OrderID,
			DepositorName: d.DepositorName, BuyerName: d.BuyerName, Status: d.Status, PageRequest: api.PageRequest{Limit: pageLimit(r, 25), Cursor: cursor}}, "")
		v.Err = apiError(err)
		d.Orders = rep.Orders
		d.Pager = newPager(Prefix+"orders", q, cursor, rep.NextCursor)
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "orders", v)
}

// order shows one order.
func (c *Console) order(w http.ResponseWriter, r *http.Request, s *session) {
	ov, _, err := call(c, r, s, api.OrderGet, api.GetOrderRequest{OrderID: r.PathValue("order")}, "")
	v := view{Title: "Order 주문 " + r.PathValue("order"), Nav: "orders", Err: apiError(err)}
	if err == nil {
		v.Data = ov
	}
	c.render(w, r, s, statusOf(v.Err), "order", v)
}
