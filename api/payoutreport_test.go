package api_test

import (
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
