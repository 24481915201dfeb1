package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

func (s *Server) recordDeposit(ctx context.Context, r *request) reply {
	return runCommand(s, ctx, r, commandSpec[commands.RecordDepositRequest, commands.RecordDepositReply]{
		subject: "bankbook.cmd.deposit.record",
		exec: func(ctx context.Context, meta commands.Meta, req commands.RecordDepositRequest) (commands.RecordDepositReply, eventstore.Seq, error) {
			rep, err := s.cfg.Commands.RecordDeposit(ctx, meta, req)
			return rep, rep.Seq, err
		},
	})
}

// PageRequest is a paginated query: at most Limit items (default 50, at
// most 500) after Cursor.
type PageRequest struct {
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// Validate checks the request.
func (p PageRequest) Validate() error {
	if p.Limit < 0 || p.Limit > 500 {
		return domain.Invalid("limit", "must be between 1 and 500")
	}
	return nil
}

func (p PageRequest) limit() int {
	if p.Limit == 0 {
		return 50
	}
	return p.Limit
}

// OrphansReply is the reply of bankbook.q.deposit.orphans.
type OrphansReply struct {
	Deposits   []projections.OrphanView `json:"deposits"`
	NextCursor string                   `json:"next_cursor,omitempty"`
}

func (s *Server) orphans(ctx context.Context, r *request) reply {
	return runQuery(s, ctx, r, func(q PageRequest) (any, error) {
		deps, next, err := s.cfg.ReadModels.Orphans(q.limit(), q.Cursor)
		return OrphansReply{Deposits: deps, NextCursor: next}, err
	})
}

// WalletRequest is the body of bankbook.q.wallet.get.
type WalletRequest struct {
	UserID string `json:"user_id"`
}

// Validate checks the request.
func (q WalletRequest) Validate() error { return domain.ValidateID("user_id", q.UserID) }

func (s *Server) getWallet(ctx context.Context, r *request) reply {
	return runQuery(s, ctx, r, func(q WalletRequest) (any, error) { return s.cfg.ReadModels.Wallet(q.UserID) })
}

// TrialBalanceReply is the reply of bankbook.q.ledger.trial_balance.
type TrialBalanceReply struct {
	Accounts []projections.AccountBalance `json:"accounts"`
	Total    int64                        `json:"total"`
	AsOfSeq  eventstore.Seq               `json:"as_of_seq"`
}

// EmptyRequest is the body of queries without parameters ({} or empty).
type EmptyRequest struct{}

// Validate accepts everything.
func (EmptyRequest) Validate() error { return nil }

func (s *Server) trialBalance(ctx context.Context, r *request) reply {
	return runQuery(s, ctx, r, func(EmptyRequest) (any, error) {
		accounts, total, asOf, err := s.cfg.ReadModels.TrialBalance()
		return TrialBalanceReply{Accounts: accounts, Total: total, AsOfSeq: asOf}, err
	})
}

// LedgerAccountRequest is the body of bankbook.q.ledger.account.
type LedgerAccountRequest struct {
	Account string `json:"account"`
	PageRequest
}

// Validate checks the request.
func (q LedgerAccountRequest) Validate() error {
	if q.Account == "" || len(q.Account) > 200 {
		return domain.Invalid("account", "is required (at most 200 characters)")
	}
	return q.PageRequest.Validate()
}

// LedgerAccountReply is the reply of bankbook.q.ledger.account.
type LedgerAccountReply struct {
	Account    string                    `json:"account"`
	Balance    int64                     `json:"balance"`
	Entries    []projections.LedgerEntry `json:"entries"`
	NextCursor string                    `json:"next_cursor,omitempty"`
}

func (s *Server) ledgerAccount(ctx context.Context, r *request) reply {
	return runQuery(s, ctx, r, func(q LedgerAccountRequest) (any, error) {
		bal, entries, next, err := s.cfg.ReadModels.Account(q.Account, q.limit(), q.Cursor)
		return LedgerAccountReply{Account: q.Account, Balance: bal, Entries: entries, NextCursor: next}, err
	})
}

// runQuery decodes and validates a query (an empty body is {}), waits for
// this instance's own writes to reach the read models, and answers.
func runQuery[Q validator](s *Server, ctx context.Context, r *request, answer func(Q) (any, error)) reply {
	var q Q
	data := r.data
	if len(data) == 0 {
		data = []byte("{}")
	}
	if err := decodeStrict(data, &q); err != nil {
		return reply{err: toAPIError(err)}
	}
	if err := q.Validate(); err != nil {
		return reply{err: toAPIError(err)}
	}
	s.awaitOwnWrites(ctx)
	v, err := answer(q)
	if err != nil {
		return reply{err: toAPIError(err)}
	}
	return okJSON(v)
}

// BankSim is the simulated bank (bankfeed.SimBank) behind bankbook.sim.bank.transfer.
type BankSim interface {
	Transfer(depositorName string, amount int64, account string) (txnID string, depositedAt time.Time, err error)
}

// SimTransferRequest is the body of bankbook.sim.bank.transfer.
type SimTransferRequest struct {
	DepositorName string `json:"depositor_name"`
	Amount        int64  `json:"amount"`
	AccountNumber string `json:"account_number,omitempty"`
}

// Validate checks the request.
func (q SimTransferRequest) Validate() error {
	if err := domain.ValidateBuyerName(q.DepositorName); err != nil {
		return domain.Invalid("depositor_name", "%s", err.(*domain.Error).Message)
	}
	_, err := domain.NewMoney(q.Amount, "")
	return err
}

// SimTransferReply is the reply of bankbook.sim.bank.transfer.
type SimTransferReply struct {
	BankTxnID   string `json:"bank_txn_id"`
	DepositedAt string `json:"deposited_at"`
}

func (s *Server) simTransfer(ctx context.Context, r *request) reply {
	var q SimTransferRequest
	if err := decodeStrict(r.data, &q); err != nil {
		return reply{err: toAPIError(err)}
	}
	if err := q.Validate(); err != nil {
		return reply{err: toAPIError(err)}
	}
	account := q.AccountNumber
	if account == "" {
		account = s.cfg.Commands.Config().CollectAccount.Number
	}
	id, at, err := s.cfg.BankSim.Transfer(q.DepositorName, q.Amount, account)
	if err != nil {
		return reply{err: badRequest("invalid_input", err.Error(), nil)}
	}
	return okJSON(SimTransferReply{BankTxnID: id, DepositedAt: domain.FormatTime(at)})
}

// payoutPlan is the plan of commands that create a payout: its ID.
type payoutPlan struct {
	PayoutID string `json:"payout_id"`
}

func (s *Server) planPayout(id *string) json.RawMessage {
	if *id == "" {
		*id = "po_" + s.cfg.Commands.NewID()
	}
	b, _ := json.Marshal(payoutPlan{PayoutID: *id})
	return b
}

func resumePayout(id *string, raw json.RawMessage) error {
	var p payoutPlan
	if err := json.Unmarshal(raw, &p); err != nil {
		return errors.New("idempotency plan unreadable")
	}
	*id = p.PayoutID
	return nil
}

func (s *Server) withdraw(ctx context.Context, r *request) reply {
	return runCommand(s, ctx, r, commandSpec[commands.WithdrawRequest, commands.WithdrawReply]{
		subject: "bankbook.cmd.wallet.withdraw",
		plan:    func(req *commands.WithdrawRequest) json.RawMessage { return s.planPayout(&req.PayoutID) },
		resume: func(req *commands.WithdrawRequest, raw json.RawMessage) error {
			return resumePayout(&req.PayoutID, raw)
		},
		exec: func(ctx context.Context, meta commands.Meta, req commands.WithdrawRequest) (commands.WithdrawReply, eventstore.Seq, error) {
			rep, err := s.cfg.Commands.Withdraw(ctx, meta, req)
			return rep, rep.Seq, err
		},
	})
}

func (s *Server) resolveDeposit(ctx context.Context, r *request) reply {
	return runCommand(s, ctx, r, commandSpec[commands.ResolveDepositRequest, commands.ResolveDepositReply]{
		subject: "bankbook.cmd.deposit.resolve",
		plan: func(req *commands.ResolveDepositRequest) json.RawMessage {
			if req.Action != domain.ResolveRefundToBank {
				return nil
			}
			return s.planPayout(&req.PayoutID)
		},
		resume: func(req *commands.ResolveDepositRequest, raw json.RawMessage) error {
			if len(raw) == 0 {
				return nil
			}
			return resumePayout(&req.PayoutID, raw)
		},
		exec: func(ctx context.Context, meta commands.Meta, req commands.ResolveDepositRequest) (commands.ResolveDepositReply, eventstore.Seq, error) {
			rep, err := s.cfg.Commands.ResolveDeposit(ctx, meta, req)
			return rep, rep.Seq, err
		},
	})
}

func (s *Server) scanComplete(ctx context.Context, r *request) reply {
	var q commands.ScanCompleteRequest
	if err := decodeStrict(r.data, &q); err != nil {
		return reply{err: toAPIError(err)}
	}
	rep, err := s.cfg.Commands.ScanComplete(ctx, q)
	if err != nil {
		return reply{err: toAPIError(err)}
	}
	return okJSON(rep)
}
