package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/projections"
)

// Offline queries: `bankbook replay --out DIR` rebuilds the read models into
// DIR/readmodels.db, and the queries below answer from that file with
// --offline DIR, read-only and without NATS: the ledger's trial balance and
// accounts, orders, wallets, bills, and distributors' stores, current bills
// and payments (payment export included), as the engine answered at the
// sequence the replay ended at. The output is the online commands' (the
// same reply types, --json the same bytes). Only this file imports
// projections for the client commands; they name the flag with offlineFlag
// and answer with query (or pageOffline).

// readModelsFile is the file replay writes in its --out directory.
const readModelsFile = "readmodels.db"

// offlineFlag adds --offline DIR to a query that rebuilt read models can
// answer.
func offlineFlag(fs *flag.FlagSet) *string {
	return fs.String("offline", "", "answer from the read models 'bankbook replay --out DIR' rebuilt in DIR (or a readmodels.db file), read-only, without NATS")
}

// offlineAnswers answers each query endpoint that takes --offline from a
// read-model Store, as the engine's route for it does (server/).
var offlineAnswers = map[string]any{
	api.OrderGet.Subject: func(st *projections.Store, q api.GetOrderRequest) (api.OrderView, error) {
		v, ok, err := st.Order(q.OrderID)
		if err == nil && !ok {
			err = domain.ErrOrderNotFound.With("", map[string]any{"order_id": q.OrderID})
		}
		return v, err
	},
	api.WalletGet.Subject: func(st *projections.Store, q api.WalletRequest) (api.WalletView, error) {
		return st.Wallet(q.UserID, q.PageLimit(), q.Cursor)
	},
	api.BillGet.Subject: func(st *projections.Store, q api.GetBillRequest) (api.BillView, error) {
		v, ok, err := st.Bill(q.BillID)
		if err == nil && !ok {
			err = domain.ErrBillNotFound.With("", map[string]any{"bill_id": q.BillID})
		}
		return v, err
	},
	api.BillActive.Subject: func(st *projections.Store, q api.ActiveBillsRequest) (api.ActiveBillsReply, error) {
		return st.ActiveBills(q.DistributorID, q.WholeLimit(), q.Cursor)
	},
	api.BillList.Subject: func(st *projections.Store, q api.BillListRequest) (api.BillListReply, error) {
		rep, linked, err := st.StoreBills(q.DistributorID, q.StoreID, q.PageLimit(), q.Cursor)
		if err == nil && !linked {
			err = domain.StoreNotLinked(q.DistributorID, q.StoreID)
		}
		return rep, err
	},
	api.StoreGet.Subject: func(st *projections.Store, q api.GetStoreRequest) (api.StoreView, error) {
		v, ok, err := st.StoreLink(q.DistributorID, q.StoreID)
		if err == nil && !ok {
			err = domain.StoreNotLinked(q.DistributorID, q.StoreID)
		}
		return v, err
	},
	api.StoreList.Subject: func(st *projections.Store, q api.StoreListRequest) (api.StoreListReply, error) {
		return st.StoreLinks(q.DistributorID, q.PageLimit(), q.Cursor)
	},
	api.PaymentsByDistributor.Subject: func(st *projections.Store, q api.PaymentsByDistributorRequest) (api.PaymentsReply, error) {
		return st.PaymentsByDistributor(q.DistributorID, q.From, q.To, q.WholeLimit(), q.Cursor)
	},
	api.PaymentsByStore.Subject: func(st *projections.Store, q api.PaymentsByStoreRequest) (api.PaymentsReply, error) {
		return st.PaymentsByStore(q.StoreID, q.WholeLimit(), q.Cursor)
	},
	api.LedgerTrialBalance.Subject: func(st *projections.Store, q api.TrialBalanceRequest) (api.TrialBalanceReply, error) {
		accounts, total, asOf, next, err := st.TrialBalance(q.PageLimit(), q.Cursor)
		return api.TrialBalanceReply{Accounts: accounts, Total: total, AsOfSeq: api.Seq(asOf), NextCursor: next}, err
	},
	api.LedgerAccount.Subject: func(st *projections.Store, q api.LedgerAccountRequest) (api.LedgerAccountReply, error) {
		bal, entries, next, err := st.Account(q.Account, q.PageLimit(), q.Cursor)
		return api.LedgerAccountReply{Account: q.Account, Balance: bal, Entries: entries, NextCursor: next}, err
	},
}

// query answers a read-model query: from the engine (call), or with
// --offline DIR (offline not "") from the read models in DIR.
func query[Req, Rep any](ctx context.Context, cf *clientFlags, offline string, stdout io.Writer, ep api.Endpoint[Req, Rep], req Req, human func(Rep) string) error {
	if offline == "" {
		return call(ctx, cf, stdout, ep, req, nil, human)
	}
	answer, ok := offlineAnswers[ep.Subject].(func(*projections.Store, Req) (Rep, error))
	if !ok {
		return usageError("%s cannot be answered offline", ep.Subject)
	}
	rep, err := answerOffline(offline, req, answer)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			if cf.json {
				fmt.Fprintln(stdout, string(ae.Body()))
			}
			return requestFailed(ae)
		}
		return err
	}
	if cf.json {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprint(stdout, human(rep))
	return nil
}

// answerOffline opens the read models at dir read-only and answers req
// from them as the engine would: the request validated (a bad one is a 400
// *api.Error), a missing aggregate a 404.
func answerOffline[Req, Rep any](dir string, req Req, answer func(*projections.Store, Req) (Rep, error)) (Rep, error) {
	var zero Rep
	req, err := checked(req) // a bad request is answered so before the file is looked for
	if err != nil {
		return zero, err
	}
	st, err := openOffline(dir)
	if err != nil {
		return zero, err
	}
	defer st.Close()
	return answerFrom(st, dir, req, answer)
}

// checked is req in its canonical form, validated as the engine validates
// it (a bad one is a 400 *api.Error).
func checked[Req any](req Req) (Req, error) {
	if c, ok := any(req).(interface{ Canonical() Req }); ok {
		req = c.Canonical()
	}
	if v, ok := any(req).(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return req, offlineError(err)
		}
	}
	return req, nil
}

// pageOffline opens the read models at dir read-only for the pages of one
// list: each call answers a request as answerOffline does, from the same
// file. done closes it.
func pageOffline[Req, Rep any](ep api.Endpoint[Req, Rep], dir string) (page func(Req) (Rep, error), done func(), err error) {
	answer, ok := offlineAnswers[ep.Subject].(func(*projections.Store, Req) (Rep, error))
	if !ok {
		return nil, nil, usageError("%s cannot be answered offline", ep.Subject)
	}
	st, err := openOffline(dir)
	if err != nil {
		return nil, nil, err
	}
	page = func(req Req) (Rep, error) {
		req, err := checked(req)
		if err != nil {
			var zero Rep
			return zero, err
		}
		return answerFrom(st, dir, req, answer)
	}
	return page, func() { st.Close() }, nil
}

// answerFrom answers req, checked, from the read models st (opened from
// dir).
func answerFrom[Req, Rep any](st *projections.Store, dir string, req Req, answer func(*projections.Store, Req) (Rep, error)) (Rep, error) {
	var zero Rep
	if ra, ok := any(req).(interface{ ReadAfterSeq() api.Seq }); ok && ra.ReadAfterSeq() > 0 {
		cp, err := st.Checkpoint()
		if err != nil {
			return zero, fmt.Errorf("--offline %s: %w", dir, err)
		}
		if uint64(ra.ReadAfterSeq()) > uint64(cp) {
			return zero, usageError("--min-seq %d: the read models in %s are at seq %d and never move (replay further to see it)", ra.ReadAfterSeq(), dir, cp)
		}
	}
	rep, err := answer(st, req)
	if err != nil {
		return zero, offlineError(err)
	}
	return rep, nil
}

// openOffline opens the read-model file in dir (or dir itself, if it is a
// file) read-only.
func openOffline(dir string) (*projections.Store, error) {
	path := dir
	info, err := os.Stat(dir)
	if err == nil && info.IsDir() {
		path = filepath.Join(dir, readModelsFile)
		_, err = os.Stat(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError("--offline %s: no read models at %s (rebuild them with 'bankbook replay --out %s')", dir, path, dir)
	}
	if err != nil {
		return nil, usageError("--offline %s: %v", dir, err)
	}
	st, err := projections.OpenReadOnly(path, &projections.Options{Codec: domain.Events()})
	var damaged *projections.DamagedError
	switch {
	case errors.Is(err, projections.ErrLocked):
		return nil, unavailable(fmt.Errorf("--offline %s: %w (an engine has it open: stop it, or query the engine instead)", dir, err))
	case errors.Is(err, projections.ErrStale):
		return nil, fmt.Errorf("--offline %s: %w (another version of bankbook built it: replay again with this one)", dir, err)
	case errors.As(err, &damaged):
		return nil, fmt.Errorf("--offline %s: %s is not whole read models (%s): replay again with 'bankbook replay --out DIR'", dir, damaged.Path, damaged.Reason)
	case err != nil:
		return nil, fmt.Errorf("--offline %s: %w", dir, err)
	}
	return st, nil
}

// offlineError is the API error the engine would have answered for err
// (server/errors.go maps the same kinds), or err itself.
func offlineError(err error) error {
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		status, ok := map[domain.Kind]int{domain.KindInvalid: 400, domain.KindNotFound: 404, domain.KindConflict: 409, domain.KindRule: 422}[de.Kind]
		if !ok {
			status = 500
		}
		return &api.Error{Status: status, Code: de.Code, Message: de.Message, Details: de.Details}
	case errors.Is(err, projections.ErrBadCursor):
		return &api.Error{Status: 400, Code: api.CodeInvalidInput, Message: "cursor: not a cursor this query handed out", Details: map[string]any{"field": "cursor"}}
	}
	return err
}
