package server

import "github.com/bankbook/bankbook/api"

// routeTable binds every endpoint of package api to its handler: one line
// per endpoint. Simulator endpoints are served only with a simulator.
func (s *Server) routeTable() []route {
	return []route{
		commandRoute(s, api.OrderSubmit, s.submitOrder()),
		commandRoute(s, api.OrderCancel, commandSpec[api.CancelOrderRequest, api.CancelOrderReply]{exec: s.cfg.Orders.CancelOrder}),
		commandRoute(s, api.OrderPay, commandSpec[api.PayFromWalletRequest, api.PayFromWalletReply]{exec: s.cfg.Orders.PayFromWallet}),
		queryRoute(s, api.OrderGet, s.getOrder),
		queryRoute(s, api.OrderSearch, s.searchOrders),

		commandRoute(s, api.DepositRecord, commandSpec[api.RecordDepositRequest, api.RecordDepositReply]{exec: s.cfg.Deposits.RecordDeposit}),
		commandRoute(s, api.DepositResolve, s.resolveDeposit()),
		commandRoute(s, api.DepositScanComplete, commandSpec[api.ScanCompleteRequest, api.ScanCompleteReply]{exec: s.cfg.Deposits.ScanComplete}),
		queryRoute(s, api.DepositOrphans, s.orphans),
		queryRoute(s, api.DepositGet, s.getDeposit),

		queryRoute(s, api.WalletGet, s.getWallet),
		commandRoute(s, api.WalletWithdraw, s.withdraw()),
		queryRoute(s, api.PayoutGet, s.getPayout),
		queryRoute(s, api.PayoutList, s.listPayouts),
		commandRoute(s, api.PayoutResolve, commandSpec[api.ResolvePayoutRequest, api.ResolvePayoutReply]{exec: s.resolvePayout}),

		commandRoute(s, api.StoreLink, commandSpec[api.LinkStoreRequest, api.LinkStoreReply]{exec: s.cfg.Links.LinkStore}),
		commandRoute(s, api.StoreRename, commandSpec[api.RenameStoreRequest, api.RenameStoreReply]{exec: s.cfg.Links.RenameStore}),
		queryRoute(s, api.StoreGet, s.getStore),
		queryRoute(s, api.StoreList, s.listStores),
		commandRoute(s, api.BillIssue, commandSpec[api.IssueBillRequest, api.IssueBillReply]{exec: s.cfg.Links.IssueBill}),
		commandRoute(s, api.BillIssueBulk, commandSpec[api.IssueBulkRequest, api.IssueBulkReply]{exec: s.cfg.Links.IssueBulk}),
		commandRoute(s, api.BillCancel, commandSpec[api.CancelBillRequest, api.CancelBillReply]{exec: s.cfg.Links.CancelBill}),
		commandRoute(s, api.BillRemind, s.remindUnpaid()),
		queryRoute(s, api.BillGet, s.getBill),
		queryRoute(s, api.BillActive, s.activeBills),
		queryRoute(s, api.BillList, s.listBills),
		queryRoute(s, api.PaymentsByDistributor, s.paymentsByDistributor),
		queryRoute(s, api.PaymentsByStore, s.paymentsByStore),
		queryRoute(s, api.SettlementExpected, s.expectedSettlements),

		queryRoute(s, api.LedgerTrialBalance, s.trialBalance),
		queryRoute(s, api.LedgerAccount, s.ledgerAccount),
		queryRoute(s, api.LedgerSeries, s.ledgerSeries),

		plainRoute(api.ProjectionStatus, s.projectionStatus),

		plainRoute(api.DeadLetterList, s.deadLetters),
		commandRoute(s, api.DeadLetterRedrive, s.redriveDeadLetter()),
		commandRoute(s, api.DeadLetterDiscard, s.discardDeadLetter()),
		commandRoute(s, api.EventSetAside, s.setAsideEvent()),
		plainRoute(api.EventSetAsides, s.setAsides),

		queryRoute(s, api.NotifyList, s.notifications),
		commandRoute(s, api.NotifyRedrive, commandSpec[api.NotifyRedriveRequest, api.NotifyRedriveReply]{exec: s.redriveNotification}),
		queryRoute(s, api.NotifyLimiter, s.notifyLimiter),

		requestRoute(api.AuditHistory, s.streamHas, s.auditHistory),

		commandRoute(s, api.ReconcileBank, s.reconcileBank()),
		commandRoute(s, api.ReconcilePayouts, s.reconcilePayouts()),
		queryRoute(s, api.ReconcileGet, s.getReconciliation),
		queryRoute(s, api.ReconcileList, s.listReconciliations),

		simulatorRoute(api.SimBankTransfer, s.simTransfer, s.cfg.BankSim != nil),
		simulatorRoute(api.SimChatMessages, s.simChatMessages, s.cfg.ChatSim != nil),
	}
}
