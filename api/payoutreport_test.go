package api_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
)

// FuzzParsePayoutReport: any bytes either parse into a request that passes
// validation, with one line per data row, or are refused; never a panic.
func FuzzParsePayoutReport(f *testing.F) {
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	f.Add([]byte("payout_id,status,amount,fee,settled_at\npo-1,settled,5000,500," + at + "\n"))
	f.Add([]byte("\uFEFFfee,settled_at,status,payout_id,amount\n0," + at + ",failed,po-2,1\n0," + at + ",failed,po-2,1\n"))
	f.Add([]byte("payout_id,status,amount,fee,settled_at\npo-1,settled,-5,500," + at + "\n"))
	f.Add([]byte("payout_id,status\n\"po-1,settled\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := api.ParsePayoutReport(data)
		if err != nil {
			return
		}
		if verr := req.Validate(); verr != nil {
			t.Fatalf("parsed a request that does not validate: %v", verr)
		}
		if len(req.FileSHA256) != 64 {
			t.Fatalf("file_sha256 %q", req.FileSHA256)
		}
	})
}

// WritePayoutReport writes what ParsePayoutReport reads back, line for
// line; a report of more lines than one request holds is refused whole
// by ParsePayoutReport, and read whole by ParsePayoutReportLines.
func TestWritePayoutReportReadsBack(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Microsecond).In(time.FixedZone("KST", 9*3600))
	lines := make([]api.PayoutReportLine, api.MaxReconcileLines+1)
	for i := range lines {
		lines[i] = api.PayoutReportLine{PayoutID: fmt.Sprintf("po-%d", i), Status: "settled", Amount: int64(1000 + i), Fee: 500, SettledAt: at.Add(time.Duration(i) * time.Nanosecond)}
	}
	lines[1].Status, lines[1].Fee = "failed", 0
	var b bytes.Buffer
	if err := api.WritePayoutReport(&b, lines); err != nil {
		t.Fatal(err)
	}
	got, err := api.ParsePayoutReportLines(b.Bytes())
	if err != nil || len(got) != len(lines) {
		t.Fatalf("read %d lines, %v; want %d", len(got), err, len(lines))
	}
	for i, l := range got {
		if l != (api.PayoutReportLine{PayoutID: lines[i].PayoutID, Status: lines[i].Status, Amount: lines[i].Amount, Fee: lines[i].Fee, SettledAt: lines[i].SettledAt.UTC()}) {
			t.Fatalf("line %d read back as %+v, written %+v", i, l, lines[i])
		}
	}
	if _, err := api.ParsePayoutReport(b.Bytes()); err == nil {
		t.Fatalf("a report of %d lines parsed as one request", len(lines))
	}
	b.Reset()
	if err := api.WritePayoutReport(&b, lines[:2]); err != nil {
		t.Fatal(err)
	}
	if req, err := api.ParsePayoutReport(b.Bytes()); err != nil || len(req.Lines) != 2 {
		t.Fatalf("a report of 2 lines: %+v, %v", req, err)
	}
}
