package api

// Every endpoint of bankbook's NATS API. Add a line here, a handler method,
// and a route line in package server; the client, the CLI and $SRV.INFO
// follow from it.
var (
	OrderSubmit = command[SubmitOrderRequest, SubmitOrderReply]("bankbook.cmd.order.submit", true)
	OrderCancel = command[CancelOrderRequest, CancelOrderReply]("bankbook.cmd.order.cancel", true)
	OrderPay    = command[PayFromWalletRequest, PayFromWalletReply]("bankbook.cmd.order.pay_from_wallet", true)
	OrderGet    = query[GetOrderRequest, OrderView]("bankbook.q.order.get")
	OrderSearch = query[OrderSearchRequest, OrderSearchReply]("bankbook.q.order.search")

	DepositRecord       = command[RecordDepositRequest, RecordDepositReply]("bankbook.cmd.deposit.record", true)
	DepositResolve      = command[ResolveDepositRequest, ResolveDepositReply]("bankbook.cmd.deposit.resolve", true)
	DepositScanComplete = command[ScanCompleteRequest, ScanCompleteReply]("bankbook.cmd.deposit.scan_complete", false)
	DepositOrphans      = query[PageRequest, OrphansReply]("bankbook.q.deposit.orphans")
	DepositGet          = query[DepositRequest, OrphanView]("bankbook.q.deposit.get")

	WalletGet      = query[WalletRequest, WalletView]("bankbook.q.wallet.get")
	WalletWithdraw = command[WithdrawRequest, WithdrawReply]("bankbook.cmd.wallet.withdraw", true)
	PayoutGet      = query[PayoutRequest, PayoutView]("bankbook.q.payout.get")
	PayoutList     = query[PayoutListRequest, PayoutListReply]("bankbook.q.payout.list")
	PayoutResolve  = command[ResolvePayoutRequest, ResolvePayoutReply]("bankbook.cmd.payout.resolve", true)

	StoreLink     = command[LinkStoreRequest, LinkStoreReply]("bankbook.cmd.store.link", true)
	StoreRename   = command[RenameStoreRequest, RenameStoreReply]("bankbook.cmd.store.rename", true)
	StoreGet      = query[GetStoreRequest, StoreView]("bankbook.q.store.get")
	StoreList     = query[StoreListRequest, StoreListReply]("bankbook.q.store.list")
	BillIssue     = command[IssueBillRequest, IssueBillReply]("bankbook.cmd.bill.issue", true)
	BillIssueBulk = bulkCommand[IssueBulkRequest, IssueBulkReply]("bankbook.cmd.bill.issue_bulk", true, 768<<10)
	BillCancel    = command[CancelBillRequest, CancelBillReply]("bankbook.cmd.bill.cancel", true)
	BillRemind    = bulkCommand[RemindUnpaidRequest, RemindUnpaidReply]("bankbook.cmd.bill.remind_unpaid", true, 128<<10) // MaxRemindStores IDs of the longest
	BillGet       = query[GetBillRequest, BillView]("bankbook.q.bill.get")
	BillActive    = query[ActiveBillsRequest, ActiveBillsReply]("bankbook.q.bill.active")
	BillList      = query[BillListRequest, BillListReply]("bankbook.q.bill.list")

	PaymentsByDistributor = query[PaymentsByDistributorRequest, PaymentsReply]("bankbook.q.payment.by_distributor")
	PaymentsByStore       = query[PaymentsByStoreRequest, PaymentsReply]("bankbook.q.payment.by_store")
	SettlementExpected    = query[SettlementRequest, SettlementReply]("bankbook.q.settlement.expected")

	LedgerTrialBalance = query[TrialBalanceRequest, TrialBalanceReply]("bankbook.q.ledger.trial_balance")
	LedgerAccount      = query[LedgerAccountRequest, LedgerAccountReply]("bankbook.q.ledger.account")
	LedgerSeries       = query[LedgerSeriesRequest, LedgerSeriesReply]("bankbook.q.ledger.series")

	ProjectionStatus = query[ProjectionStatusRequest, ProjectionStatusReply]("bankbook.q.projection.status")

	DeadLetterList    = query[DeadLettersRequest, DeadLettersReply]("bankbook.q.deadletter.list")
	DeadLetterRedrive = command[DeadLetterRequest, DeadLetterReply]("bankbook.cmd.deadletter.redrive", true)
	DeadLetterDiscard = command[DeadLetterRequest, DeadLetterReply]("bankbook.cmd.deadletter.discard", true)

	EventSetAside  = command[SetAsideRequest, SetAsideReply]("bankbook.cmd.event.set_aside", true)
	EventSetAsides = query[SetAsidesRequest, SetAsidesReply]("bankbook.q.event.set_asides")

	NotifyList    = query[NotifyListRequest, NotifyListReply]("bankbook.q.notify.list")
	NotifyRedrive = command[NotifyRedriveRequest, NotifyRedriveReply]("bankbook.cmd.notify.redrive", true)
	NotifyLimiter = query[EmptyRequest, NotifyLimiterReply]("bankbook.q.notify.limiter")

	AuditHistory = query[AuditHistoryRequest, AuditHistoryReply]("bankbook.q.audit.history")

	ReconcileBank    = bulkCommand[ReconcileBankRequest, ReconcileReply]("bankbook.cmd.reconcile.bank", true, 768<<10)
	ReconcilePayouts = bulkCommand[ReconcilePayoutsRequest, ReconcileReply]("bankbook.cmd.reconcile.payouts", true, 768<<10)
	ReconcileGet     = query[ReconcileGetRequest, ReconcileReply]("bankbook.q.reconcile.get")
	ReconcileList    = query[ReconcileListRequest, ReconcileListReply]("bankbook.q.reconcile.list")

	SimBankTransfer = simulator[SimTransferRequest, SimTransferReply]("bankbook.sim.bank.transfer")
	SimChatMessages = simulator[SimChatMessagesRequest, SimChatMessagesReply]("bankbook.sim.chat.messages")
)
