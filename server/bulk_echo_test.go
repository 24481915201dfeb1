package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/bankbook/bankbook/api"
)

// A bill.issue_bulk reply repeats each line's store_id (and an unsupported
// currency in its message). Bad lines a client sends must not make the reply
// larger than a NATS message: '<' is one byte in the request and six
// (\u003c) in the reply, so 999 bad lines of 700 of them in a 730 KB body
// would answer over 4 MB. The reply must still carry the good line's bill
// and each bad line's error, not a 500 reply_too_large claiming the command
// was carried out.
func TestBulkBadLinesDoNotBlowUpTheReply(t *testing.T) {
	e := startEngine(t)
	var link api.LinkStoreReply
	e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1", StoreName: "한울식당"}, &link, nil)
	for _, bad := range []struct{ what, line string }{
		{"store_id", `{"store_id":"` + strings.Repeat("<", 700) + `","amount":5}`},
		{"currency", `{"store_id":"s-2","amount":5,"currency":"` + strings.Repeat("<", 700) + `"}`},
	} {
		t.Run(bad.what, func(t *testing.T) {
			lines := []string{`{"store_id":"s-1","amount":5000}`}
			for range 999 {
				lines = append(lines, bad.line)
			}
			body := `{"distributor_id":"d-1","bills":[` + strings.Join(lines, ",") + `]}`
			if len(body) > 768<<10 {
				t.Fatalf("body of %d bytes is over the endpoint's limit", len(body))
			}
			resp, err := e.nc.Request(api.BillIssueBulk.Subject, []byte(body), 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
				t.Fatalf("bad lines answered %s %.300s; want each line's result", code, resp.Data)
			}
			var rep api.IssueBulkReply
			if err := json.Unmarshal(resp.Data, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Issued != 1 || rep.Failed != 999 || rep.Results[0].BillID == "" || rep.Results[1].Error == nil {
				t.Fatalf("issued %d failed %d, first %+v", rep.Issued, rep.Failed, rep.Results[0])
			}
			t.Logf("reply of %d bytes", len(resp.Data))
		})
	}
}
