package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
)

// `payment export` writes every payment a distributor received (or a store
// made) as CSV, for the distributor's ERP to take in: the counterpart of
// `bill import`. It follows the list's cursors to the end, oldest first.

// paymentColumns is the header of an export; each line is one payment in
// these columns (bill_id empty for an unbilled payment).
var paymentColumns = []string{"deposit_id", "distributor_id", "store_id", "bill_id", "amount", "fee", "net", "paid_at", "settlement_date"}

// exportPageSize is how many payments each request of an export asks for
// (tests make it smaller).
var exportPageSize = 500

// exportTotals sums what an export wrote.
type exportTotals struct {
	payments        int
	gross, fee, net int64
}

// exportPayments writes the header and every payment ep lists for q to w,
// page after page (cursor sets the next page's cursor on q): from the
// engine, or with offline from the read models 'bankbook replay' rebuilt
// there.
func exportPayments[Req any](ctx context.Context, cf *clientFlags, offline string, w io.Writer, ep api.Endpoint[Req, api.PaymentsReply], q Req, cursor func(*Req, string)) (exportTotals, error) {
	var sum exportTotals
	var page func(Req) (api.PaymentsReply, error)
	if offline != "" {
		answer, done, err := pageOffline(ep, offline)
		if err != nil {
			return sum, err
		}
		defer done()
		page = func(q Req) (api.PaymentsReply, error) {
			rep, err := answer(q)
			var ae *api.Error
			if errors.As(err, &ae) {
				err = requestFailed(ae)
			}
			return rep, err
		}
	} else {
		c, err := cf.connect()
		if err != nil {
			return sum, err
		}
		defer c.Close()
		page = func(q Req) (api.PaymentsReply, error) {
			rctx, cancel := context.WithTimeout(ctx, cf.timeout)
			defer cancel()
			rep, _, err := client.Do(rctx, c, ep, q, nil)
			if err != nil {
				return rep, requestFailed(err)
			}
			return rep, nil
		}
	}
	out := csv.NewWriter(w)
	if err := out.Write(paymentColumns); err != nil {
		return sum, err
	}
	for {
		rep, err := page(q)
		if err != nil {
			return sum, err
		}
		for _, p := range rep.Payments {
			line := []string{p.DepositID, p.DistributorID, p.StoreID, p.BillID, strconv.FormatInt(p.Amount, 10),
				strconv.FormatInt(p.Fee, 10), strconv.FormatInt(p.Net, 10), p.PaidAt, p.SettlementDate}
			if err := out.Write(line); err != nil {
				return sum, err
			}
			sum.payments++
			sum.gross, sum.fee, sum.net = sum.gross+p.Amount, sum.fee+p.Fee, sum.net+p.Net
		}
		if rep.NextCursor == "" {
			break
		}
		cursor(&q, rep.NextCursor)
	}
	out.Flush()
	return sum, out.Error()
}

// writeExport runs export into the file path ("" or "-": stdout). A file
// is written whole or not at all: into a temporary file beside it, renamed
// over it once complete. It gets the mode of the file it replaces, or that
// of a file the shell's > would create (0666 less the umask). A symbolic
// link's target is what is replaced (the link stays), and what is neither
// a regular file nor a directory (a named pipe, /dev/null, /dev/stdout) is
// written to as > would: renaming over it would put a file in its place.
// A directory is refused before export runs.
func writeExport[T any](path string, stdout io.Writer, export func(io.Writer) (T, error)) (T, error) {
	var none T
	if path == "" || path == "-" {
		return export(stdout)
	}
	if fi, err := os.Stat(path); err == nil {
		switch {
		case fi.IsDir():
			return none, fmt.Errorf("%s is a directory", path)
		case !fi.Mode().IsRegular():
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return none, err
			}
			sum, err := export(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return sum, err
		}
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return none, err
		}
	}
	tmp, err := createBeside(path)
	if err != nil {
		return none, err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	sum, err := export(tmp)
	if fi, serr := os.Stat(path); err == nil && serr == nil && fi.Mode().IsRegular() {
		err = tmp.Chmod(fi.Mode().Perm())
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return sum, err
}

// exportSummary is the line an export prints on stderr.
func exportSummary(sum exportTotals, path string) string {
	where := ""
	if path != "" && path != "-" {
		where = " to " + path
	}
	return fmt.Sprintf("%s%s: gross %s, fee %s, net %s\n", counted(sum.payments, "payment"), where, itoa(sum.gross), itoa(sum.fee), itoa(sum.net))
}

// createBeside creates a new file of mode 0666 (less the umask) beside
// path, named after it with a dot before and a random suffix: unlike
// os.CreateTemp's, of mode 0600, what is renamed over path is readable by
// whoever may read what the shell would have written.
func createBeside(path string) (*os.File, error) {
	dir, base := filepath.Dir(path), "."+filepath.Base(path)+"."
	for {
		f, err := os.OpenFile(filepath.Join(dir, base+strconv.FormatUint(rand.Uint64(), 36)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}
