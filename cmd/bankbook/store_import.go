package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/csvtab"
)

// `store import` links the stores of a distributor's ERP file through
// bankbook.cmd.store.link and writes each store's dedicated account as CSV,
// for the distributor to print on its invoices: the onboarding counterpart
// of `bill import`. The file is the bill file's dialect with other columns
// (docs/operations.md, "The store file").

// The columns of a store file besides store_id.
const (
	colStoreName       = "store_name"
	colDistributorName = "distributor_name"
)

// storeImportColumns is the header of the CSV `store import` writes.
var storeImportColumns = []string{"store_id", "store_name", "distributor_name", "link_id", "bank", "account_number", "holder", "status", "note"}

// storeImportParallel is how many links an import has in flight at once.
const storeImportParallel = 16

// csvStore is one store of a file with the line it came from.
type csvStore struct {
	Line int
	api.LinkStoreRequest
}

// parseStoreCSV reads a distributor's store file in the dialect of
// parseBillCSV: a header naming store_id and store_name, and optionally
// distributor_name, in any order, case-insensitive, nothing else; cells
// trimmed. An empty distributor_name is distName (the --distributor-name
// flag, possibly none). A store is named on one row only: a store is
// linked once, and two rows may give it two names.
//
// It is all or nothing: when anything is wrong it returns the errors.Join
// of one *billLineError per problem of the whole file, in file order.
func parseStoreCSV(r io.Reader, dist, distName string) ([]csvStore, error) {
	t, err := openStoreFile(r, colStoreName, colDistributorName)
	if err != nil {
		return nil, err
	}
	var stores []csvStore
	err = storeRows(t, "the name 쌀집, 본점", `"쌀집, 본점"`, "a store is linked once, so name it on one line only",
		func(row csvtab.Row) []error {
			s, errs := storeRow(row, dist, distName)
			if len(errs) == 0 {
				stores = append(stores, s)
			}
			return errs
		})
	if err != nil {
		return nil, err
	}
	if len(stores) == 0 {
		return nil, &billLineError{Line: 2, Reason: "the file holds no stores: a header and no rows"}
	}
	return stores, nil
}

// storeRow converts one record; its errors come in column order of the
// dialect (store_id, store_name, distributor_name).
func storeRow(row csvtab.Row, dist, distName string) (csvStore, []error) {
	var errs []error
	fail := func(col string, err error) {
		errs = append(errs, &billLineError{Line: row.LineOf(col), Column: col, Reason: reasonOf(err, col)})
	}
	s := csvStore{Line: row.Line, LinkStoreRequest: api.LinkStoreRequest{
		DistributorID: dist, StoreID: row.Field(colStoreID), StoreName: row.Field(colStoreName), DistributorName: distName,
	}}
	if err := domain.ValidateID(colStoreID, s.StoreID); err != nil {
		fail(colStoreID, err)
	}
	if err := domain.ValidateText(colStoreName, s.StoreName, domain.MaxStoreNameLength); err != nil {
		fail(colStoreName, err)
	}
	if name := row.Field(colDistributorName); name != "" {
		s.DistributorName = name
		if err := domain.ValidateText(colDistributorName, name, domain.MaxDistributorNameLength); err != nil {
			fail(colDistributorName, err)
		}
	}
	return s, errs
}

// importedStore is the outcome of one line of a store file: the link, or
// the engine's refusal of the line.
type importedStore struct {
	csvStore
	rep     api.LinkStoreReply
	refused *api.Error
}

// record is the line of the output CSV.
func (s importedStore) record() []string {
	if s.refused != nil {
		return []string{s.StoreID, s.StoreName, s.DistributorName, "", "", "", "", "refused", s.refused.Code + ": " + s.refused.Message}
	}
	r := s.rep
	var before []string
	if r.StoreName != s.StoreName {
		before = append(before, "as "+r.StoreName)
	}
	switch {
	case s.DistributorName == "" || s.DistributorName == r.DistributorName:
	case r.DistributorName == "":
		before = append(before, "without a distributor name")
	default:
		before = append(before, "with distributor name "+r.DistributorName)
	}
	note := ""
	if len(before) > 0 {
		note = "linked before " + strings.Join(before, " ") + "; store rename changes it"
	}
	a := r.DedicatedAccount
	return []string{r.StoreID, r.StoreName, r.DistributorName, r.LinkID, a.Bank, a.Number, a.Holder, "linked", note}
}

// lineRefusal reports whether the engine's error ae refuses a line for
// the line's own sake (a bad name, no account number left, a damaged
// link), so that the other lines go on. Anything else (the engine
// unavailable, the caller not allowed to link, too many requests, a
// request meeting a concurrent change) would be the same for the lines
// after it, and stops the import.
func lineRefusal(ae *api.Error) bool {
	switch {
	case ae.Status >= 500, ae.Status == 401, ae.Status == 403, ae.Status == 429:
		return false
	case ae.Code == "conflict":
		return false
	}
	return true
}

// linkStore links one store of a file. It sends no Idempotency-Key:
// store.link is idempotent per distributor and store (linking again writes
// nothing and answers the link with its names now, a rename since
// included), and a line refused for a cause since fixed (no account number
// left) is tried again when the file is run again.
func linkStore(ctx context.Context, c *client.Client, cf *clientFlags, q api.LinkStoreRequest) (api.LinkStoreReply, error) {
	rctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	rep, _, err := client.Do(rctx, c, api.StoreLink, q, nil)
	return rep, err
}

// linkStores links every store, storeImportParallel at a time, and returns
// the outcomes in file order. The first failure that is not a line's own
// stops the import: no line after it is sent, the ones in flight finish,
// and the error says how many lines are linked.
func linkStores(ctx context.Context, cf *clientFlags, path string, stores []csvStore) ([]importedStore, error) {
	c, err := cf.connect()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var (
		results = make([]importedStore, len(stores))
		done    = make([]bool, len(stores))
		mu      sync.Mutex
		next    int
		stop    error
		stopAt  csvStore
		wg      sync.WaitGroup
	)
	for range min(storeImportParallel, len(stores)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if stop != nil || next == len(stores) {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				s := stores[i]
				rep, err := linkStore(ctx, c, cf, s.LinkStoreRequest)
				var ae *api.Error
				mu.Lock()
				switch {
				case err == nil:
					results[i], done[i] = importedStore{csvStore: s, rep: rep}, true
				case errors.As(err, &ae) && lineRefusal(ae):
					results[i], done[i] = importedStore{csvStore: s, refused: ae}, true
				case stop == nil:
					stop, stopAt = err, s
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stop == nil {
		return results, nil
	}
	linked := 0
	for i, d := range done {
		if d && results[i].refused == nil {
			linked++
		}
	}
	advice := "run the same import again to finish (the stores linked are answered again, not linked twice)"
	var ae *api.Error
	if errors.As(stop, &ae) && ae.Status < 500 && ae.Code != "conflict" {
		advice = "fix the cause, then run the same import again to finish"
	}
	err = requestFailed(fmt.Errorf("%s: line %d (store %s): %w; the import stopped with %d of %d lines answered as linked (a line in flight may be linked too), nothing written; %s",
		path, stopAt.Line, stopAt.StoreID, explainRefusal(stop, c), linked, len(stores), advice))
	if exitCode(err) == exitFailed {
		err = unavailable(err) // the connection failed
	}
	return nil, err
}

// importStores links every store of a store file and writes their
// accounts to outPath (stdout for ""). The file is checked completely
// first; if any line is bad, every bad line is reported and nothing is
// sent. The CSV is written once every line has an answer: a stopped
// import writes nothing (and leaves the file outPath names as it was).
func importStores(ctx context.Context, cf *clientFlags, dist, distName, path, outPath string, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	stores, err := parseStoreCSV(f, dist, distName)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: nothing imported:\n%w", path, err)
	}
	var linked bool
	results, err := writeExport(outPath, stdout, func(w io.Writer) ([]importedStore, error) {
		results, err := linkStores(ctx, cf, path, stores)
		if err != nil {
			return nil, err
		}
		linked = true
		out := csv.NewWriter(w)
		_ = out.Write(storeImportColumns)
		for _, r := range results {
			_ = out.Write(r.record())
		}
		out.Flush()
		return results, out.Error()
	})
	if err != nil {
		if linked {
			return fmt.Errorf("%s: every line has its answer, but writing them failed: %w; running the same import again writes them (the stores linked are answered again, not linked twice)", path, err)
		}
		return err
	}
	var refused []int
	for _, r := range results {
		if r.refused != nil {
			refused = append(refused, r.Line)
		}
	}
	where := ""
	if outPath != "" && outPath != "-" {
		where = " to " + outPath
	}
	fmt.Fprintf(stderr, "%s: %d linked, %d refused%s\n", counted(len(results), "line"), len(results)-len(refused), len(refused), where)
	if len(refused) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s: %d of %d lines refused by the engine (%s); the others are linked. Once the cause is fixed, running this file again links them (the stores linked are answered again, not linked twice)",
			path, len(refused), len(results), lineList(refused))}
	}
	return nil
}
