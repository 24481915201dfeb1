// Package bankfeed brings the deposits on a bank account into bankbook: the
// "scan" step of smart bank transfer (domain brief §2).
//
// A Transaction is one credit on an account as the bank reports it, keyed by
// the bank's own BankTxnID. A Source is an account-scan API; a Scanner polls a
// Source, records every transaction exactly once through a Recorder and keeps
// a per-account watermark. Three ways in are provided:
//
//   - HTTPSource polls a real provider over HTTP (wire contract below);
//   - SimBank is an in-process simulated bank for demos and tests (the
//     package's own tests also serve it over the HTTP contract below, with
//     the misbehaviour of a real service: 401, 429 with Retry-After, 503,
//     hangs, lag, overlapping and repeated results);
//   - ParseCSV imports a bank statement file (dialect below), for a manual
//     import or a reconciliation.
//
// Statement reads the statement of a period from a Source, once the bank
// vouches for the whole period, for the engine's nightly reconciliation;
// WriteCSV writes transactions in the CSV dialect.
//
// The package does no storage of its own: the Recorder and the Watermarks are
// small interfaces the engine implements over its event store.
//
// # Scanner guarantees
//
// The watermark of an account is an instant W such that every deposit on the
// account made before W has been recorded. It only moves forward, and only to
// a CompleteUpTo that a Source reported. One ScanOnce:
//
//  1. reads the watermark W (zero: nothing recorded yet);
//  2. scans from W − Overlap (from the zero time when W is zero); the Source
//     promises every transaction deposited in [since, CompleteUpTo) in the
//     result, so together with the induction hypothesis every deposit before
//     CompleteUpTo is recorded once step 5 is done. The Overlap (default
//     10 minutes) is a safety margin for providers whose completeness claim is
//     a little optimistic (late postings);
//  3. drops transactions for other accounts (account numbers compared with
//     NormalizeAccountNumber) and repeats of one BankTxnID on one account
//     within the result (banks number transactions per account: one
//     BankTxnID on two accounts of the feed is two transactions); two
//     different transactions under one BankTxnID on one account are an error
//     (ErrConflictingDuplicate). When Scanner.IsSubAccount is set, the
//     transactions for the numbers it accepts (virtual sub-accounts that
//     route money into the account, such as dedicated accounts allocated
//     from a range) are kept like the account's own and recorded with their
//     own AccountNumber;
//  4. validates every transaction: an invalid one ends the scan with an
//     error rather than being skipped, because skipping it would let the
//     watermark pass a deposit nobody recorded;
//  5. records the transactions in DepositedAt order (ties by BankTxnID),
//     Scanner.Concurrency (8) at once: the transactions that can touch the
//     same order or bill (one depositor name on the account, as
//     domain.NormalizeName compares names, or one sub-account) are recorded
//     one after another in that order, the others side by side. The
//     Recorder must be safe for concurrent calls and idempotent on
//     BankTxnID, since overlapping scans hand it the same transaction many
//     times;
//  6. only when every Record succeeded, advances the watermark to
//     CompleteUpTo if that is later than W. A CompleteUpTo later than the
//     scanner's clock is clamped to it: a watermark in the future would hide
//     the deposits made before it for good. A CompleteUpTo earlier than W
//     leaves W where it is and is logged at warn: the provider takes back
//     coverage that decisions (reserved cancellations made final) rested on.
//
// An account and its sub-accounts are one feed with one watermark, the
// account's: the sub-accounts have none of their own, and CompleteUpTo
// vouches for every transaction of the feed, whichever number it names. The
// Source must therefore answer for the sub-accounts too (a provider's feed of
// the account with its virtual accounts; SimBank.SourceWith); a Source that
// left them out would let the watermark pass transfers it never showed.
//
// Any failure leaves the watermark where it was, so the next scan repeats the
// same ground; that is safe because Record is idempotent. The result is
// at-least-once delivery to the Recorder and, through its idempotence,
// exactly-once recording. Run calls ScanOnce immediately and then every
// Interval (default 5 minutes), logs failures and retries at the next tick;
// a reserved cancellation can wait for the watermark to pass its due time
// (the coverage the domain asks for) rather than trusting the wall clock.
//
// # CSV statement dialect (ParseCSV)
//
//   - UTF-8; a leading byte-order mark (EF BB BF) is ignored. Line ends are
//     LF or CRLF; blank lines are skipped.
//   - Comma-separated, quoted as RFC 4180: a field containing a comma, a
//     double quote or a line break is enclosed in double quotes, and a double
//     quote inside it is doubled. A quoted field may span lines.
//   - The first row is a header naming exactly the five columns
//     bank_txn_id, account_number, depositor_name, amount, deposited_at, in
//     any order. Names are matched case-insensitively after trimming white
//     space. An unknown, missing or repeated column is an error (ErrBadHeader)
//     naming it, and no row is read.
//   - Every row has as many fields as the header. White space around a field
//     is removed.
//   - amount is a positive integer in minor units: ASCII digits only, no
//     sign, thousands separator, decimal point or currency (12000, not
//     12,000 or 12000.00).
//   - deposited_at is RFC 3339 with a UTC offset ("Z" or ±hh:mm), with or
//     without fractional seconds: 2024-05-01T09:30:00+09:00,
//     2024-05-01T00:30:00.123456Z. It is returned in UTC.
//   - Every field must pass Transaction.Validate.
//   - A bank_txn_id may appear again only on an identical row (same values
//     after trimming, times compared as instants); the repeat is dropped.
//     Two different rows under one bank_txn_id are an error.
//   - Rows may name different accounts (a statement of an account with its
//     virtual accounts lists each row under the number it was paid to);
//     ParseCSV keeps them all and leaves routing to the caller.
//   - An input with no header row at all (empty, or only a BOM and blank
//     lines) is ErrMissingHeader. A header with no rows is an empty
//     statement: no transactions and no error (a day without deposits).
//
// Parsing is all or nothing: ParseCSV reads the whole file and, if anything is
// wrong, returns no transactions and the errors.Join of one *LineError per
// problem (every bad cell of every bad row) with the 1-based line number and
// the column name.
//
// # HTTP wire contract (HTTPSource)
//
// Request:
//
//	GET {URL}?since=2024-05-01T00:20:00.123456789Z
//	Authorization: Bearer {Token}
//	Accept: application/json
//
// since is RFC 3339 in UTC with up to nanoseconds; a query already in URL is
// kept. A successful answer is 200 with a JSON body (ScanResponse):
//
//	{
//	  "transactions": [
//	    {"bank_txn_id": "T-20240501-0001", "account_number": "123-456-789",
//	     "depositor_name": "김민수042", "amount": 35000,
//	     "deposited_at": "2024-05-01T00:29:59.5Z"}
//	  ],
//	  "complete_up_to": "2024-05-01T00:30:00Z"
//	}
//
// transactions holds every transaction deposited in [since, complete_up_to)
// and possibly older ones and repeats, in any order; each carries the account
// number it was paid to, so one feed may cover an account with its virtual
// accounts (or several accounts: the Scanner keeps its own and drops the
// rest). complete_up_to is
// required: the provider's data is complete before that instant (typically the
// time of its last refresh). Unknown fields are ignored. Any transaction that
// fails Validate makes the whole answer ErrBadResponse: nothing is accepted.
//
// Errors: 401 or 403 is ErrUnauthorized; 408, 429 and 5xx are transient and
// retried, honouring Retry-After (delay-seconds or an HTTP date) up to
// MaxRetryAfter (a longer one ends the Scan with a *WaitError, and
// Scanner.Run waits for it before its next scan); any other status is
// permanent, a redirect too: it is never followed (internal/nofollow). Network errors and the per-attempt Timeout are transient.
// After MaxAttempts transient failures the Scan returns ErrGaveUp wrapping
// the last one.
package bankfeed
