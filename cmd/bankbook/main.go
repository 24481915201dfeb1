// Command bankbook runs the bankbook payments engine and talks to it.
//
//	bankbook serve [flags]                      run the engine
//	bankbook order submit|cancel|pay-from-wallet|get ...  orders
//	bankbook deposit import|orphans|resolve     deposits and the orphan queue
//	bankbook wallet get|withdraw                wallets and payouts
//	bankbook store link ...                     link a distributor's store: its dedicated account
//	bankbook bill issue|cancel|import|get|active|remind  B2B bills; import issues an ERP export's bills
//	bankbook payment list, settlement expected  store payments and what distributors are paid
//	bankbook ledger trial-balance|account|series  the double-entry ledger
//	bankbook bank-sim transfer                  the simulated bank (serve --bank-sim)
//	bankbook projections status [--hash]        read-model checkpoint and lag
//	bankbook payout get|list                    payouts and the provider's answers
//	bankbook deadletter list|redrive|discard    work background parts gave up on
//	bankbook notify list|redrive|limiter        messages to stores, distributors and buyers
//	bankbook chat-sim messages                  what the fake chat provider accepted (serve --chat-sim)
//	bankbook event set-aside|set-asides         set a damaged commit aside; list those set aside
//	bankbook audit history TYPE ID              an aggregate's events, envelopes and commit hashes
//	bankbook audit digest|verify                the stream digest; verify the log and the read models
//	bankbook reconcile bank|payouts|get|list    a bank statement or payout report against the ledger
//	bankbook replay --out DIR [--until-seq N|--until-time T]  rebuild the read models from the log (up to a point)
//	bankbook backup --out DIR                   every JetStream asset of the engine, online
//	bankbook restore --from DIR --data-dir NEW  a backup into a new data directory
//	bankbook bench [--profiles safe,fast --clients 1,16,64]  the performance table (docs/performance.md)
//	bankbook version                            the version of this binary
//
// Exit status: 0 done, 1 failed (replay: the rebuilt read models differ),
// 2 usage error (a required flag missing too: nothing is sent), 3 not
// found, 4 refused by the engine (400, 403, 409, 422, 429) or by the NATS
// server (a key it does not know), 5 unavailable (no engine, a timeout,
// 500, 503).
//
// Run any command with -h for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

const usage = `bankbook — event-sourced payments engine on NATS JetStream

usage:
  bankbook serve [flags]                  run the engine (embedded NATS by default)
  bankbook order submit [flags]           submit a smart bank-transfer order
  bankbook order cancel [flags]           cancel an order
  bankbook order pay-from-wallet --order-id ID
                                          pay an order in full from its buyer's wallet
  bankbook order get --order-id ID        show an order
  bankbook order search [--order-id ID] [--depositor-name N] [--buyer-name N] [--status S]
                                          orders, newest first
  bankbook deposit import FILE.csv        record a bank statement's transactions
  bankbook deposit orphans                deposits that matched nothing
  bankbook deposit get --deposit-id ID    a deposit: outcome, order or orphan reason, resolution
  bankbook deposit resolve [flags]        resolve an orphan: assign_order, refund_to_wallet, refund_to_bank
  bankbook wallet get --user-id ID        a wallet's balance and movements
  bankbook wallet withdraw [flags]        pay a wallet out to a bank account
  bankbook payout get --payout-id ID      a payout: status, fee, provider reference, failure
  bankbook payout list [--status S]       payouts, newest first
  bankbook payout resolve --payout-id ID --outcome settled|failed --reason TEXT
                                          record a dead-lettered payout's result (failed: its money
                                          goes back); the provider is asked first unless --force
  bankbook store link [flags]             link a distributor's store; prints its dedicated account
  bankbook store import --distributor-id D STORES.csv [--out ACCOUNTS.csv]
                                          link many stores at once; writes their dedicated accounts
  bankbook store rename --distributor-id D --store-id S [--store-name N] [--distributor-name N]
                                          rename a linked store or its distributor (later messages
                                          carry the new names)
  bankbook store get --distributor-id D --store-id S
                                          a link: its names and dedicated account
  bankbook store list --distributor-id D  a distributor's linked stores, with their dedicated accounts
  bankbook bill issue [flags]             issue a store's bill (its current bill, if any, expires)
  bankbook bill cancel --bill-id ID       cancel a store's current bill
  bankbook bill import --distributor-id D ERP.csv
                                          issue the bills of an ERP export (store_id,amount,memo);
                                          running the same file again changes nothing
  bankbook bill get --bill-id ID          a bill: status, paid, outstanding, payments
  bankbook bill active --distributor-id D a distributor's current bills
  bankbook bill list --distributor-id D --store-id S
                                          a store's bills, newest first, ended ones included
  bankbook bill remind --distributor-id D remind every store with an outstanding balance
  bankbook payment list --distributor-id D [--from T --to T] | --store-id S
                                          payments received, oldest first
  bankbook payment export (--distributor-id D [--from T --to T] | --store-id S) [--out FILE.csv]
                                          the same payments as CSV
  bankbook settlement expected --distributor-id D
                                          what the distributor is paid, by settlement date
  bankbook ledger trial-balance           every account's balance (sums to 0)
  bankbook ledger account --account A     an account's entries
  bankbook ledger series --account A      a suspense or clearing account's balance and open
                                          items over time, and the items open now
  bankbook bank-sim transfer [flags]      transfer money into the simulated bank (serve --bank-sim)
  bankbook projections status [--hash]    read-model checkpoint, lag and content hash
  bankbook deadletter list|redrive|discard  work background parts gave up on: list it, hand it
                                          to its part again, or set it aside with --reason
  bankbook notify list [--status S] [--recipient R]
                                          notifications: pending, sent, dead (with their last error)
  bankbook notify redrive --notification-id ID
                                          try a dead notification again
  bankbook notify limiter                 the shared send rate, a provider pause, pending count
  bankbook chat-sim messages [--channel C] [--limit N]
                                          what the fake chat provider accepted (serve --chat-sim)
  bankbook event set-aside --seq N --reason TEXT
                                          set a damaged commit of the event stream aside, so
                                          its aggregate works again (/readyz names the seq)
  bankbook event set-asides               the damaged commits set aside, with who, when and why
  bankbook audit history TYPE ID [--all]  an aggregate's events from the event stream, with
                                          actor, times, correlation, idempotency key and commit
                                          hash (TYPE: order, deposit, wallet, payout, link,
                                          notification, reconciliation; operator or auditor)
  bankbook audit digest [--at N | --check N:HEX]
                                          the stream's digest at a sequence, or a check against one
                                          you trust (exit 1: rewritten or truncated; ADR 0009)
  bankbook audit verify [--data-dir DIR] [--digest N:HEX]
                                          hash chains, trial balance at every commit, bank
                                          transactions once, wallets = ledger, open suspense and
                                          clearing items, no skipped event, live = rebuilt read
                                          models; exit 0 clean, 1 findings, 2 not run
  bankbook reconcile bank --statement FILE.csv
                                          compare a bank statement (the deposit import dialect) with
                                          the recorded deposits; exit 0 clean, 1 findings, 2 not run
  bankbook reconcile payouts --report FILE.csv
                                          compare the payout provider's report (payout_id,status,
                                          amount,fee,settled_at) with the recorded payouts
  bankbook reconcile get RUN_ID           a recorded reconciliation run
  bankbook reconcile list                 the recorded runs, newest first, with their counts
  bankbook replay --out DIR [--until-seq N | --until-time T]
                                          rebuild every read model from sequence 1 (up to a point) into DIR;
                                          query it with --offline DIR
  bankbook backup --out DIR               snapshot the engine's streams and KV buckets into DIR while it
                                          runs (with data/auth/engine.nk; docs/operations.md "Backups")
  bankbook restore --from DIR --data-dir NEW
                                          restore a backup into a new data directory; then
                                          bankbook serve --data-dir NEW
  bankbook auth config                    the nats-server accounts and permissions of every role,
                                          for an external cluster (docs/security.md)
  bankbook bench [flags]                  start 'bankbook serve' as a separate process, drive it over
                                          TCP and print each performance target beside a raw
                                          JetStream publish baseline (docs/performance.md)
  bankbook version                        the version of this binary

Run 'bankbook COMMAND -h' for a command's flags. Queries take --min-seq N to
answer only once the read models have applied a command reply's seq.
ledger trial-balance, ledger account, order get, wallet get, bill get, bill
active, bill list, store get, store list, payment list and payment export take
--offline DIR to answer from a replay's read models, without NATS. Any command
takes -h for its flags; "bankbook help order submit" is the same.

Client commands reach the engine at --nats-url (env BANKBOOK_NATS_URL; default
nats://127.0.0.1:4222) and authenticate with --nkey FILE (env BANKBOOK_NKEY) or
--nats-creds / --nats-user with --nats-password-file; without them, with
./data/auth/operator.nk (replay, audit verify, audit digest: auditor.nk) when it exists.

Exit status: 0 done, 1 failed, 2 usage error (a required flag missing: -h
marks them; nothing is sent), 3 not found, 4 refused by the engine (400, 403,
409, 422, 429) or the NATS server (a key it does not know), 5 unavailable (no
engine, timeout, 500, 503).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Log lines carry UTC timestamps to the millisecond.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bankbook:", describe(err))
	}
	os.Exit(exitCode(err))
}

// run executes one bankbook command line; main only adds signals and exit
// codes. With --json, a command that fails without printing anything
// prints its error as one JSON document (jsonError), so that a script
// reading --json output always has one to read.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	out := &countingWriter{w: stdout}
	err := runCommand(ctx, args, out, stderr)
	if err != nil && out.n == 0 && wantsJSON(args) && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, string(jsonError(err).Body()))
	}
	return err
}

// runCommand executes one bankbook command line.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "order":
		return order(ctx, args[1:], stdout, stderr)
	case "deposit":
		return deposit(ctx, args[1:], stdout, stderr)
	case "wallet", "payout", "ledger", "bank-sim":
		return money(ctx, args[0], args[1:], stdout, stderr)
	case "store", "bill", "payment", "settlement":
		return billing(ctx, args[0], args[1:], stdout, stderr)
	case "deadletter":
		return deadLetter(ctx, args[1:], stdout, stderr)
	case "notify":
		return notifyCmd(ctx, args[1:], stdout, stderr)
	case "chat-sim":
		return chatSim(ctx, args[1:], stdout, stderr)
	case "event":
		return event(ctx, args[1:], stdout, stderr)
	case "projections":
		return projectionsCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		return audit(ctx, args[1:], stdout, stderr)
	case "replay":
		return replay(ctx, args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return runRestore(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "reconcile":
		return reconcile(ctx, args[1:], stdout, stderr)
	case "auth":
		return authCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		switch {
		case len(args) == 2 && (args[1] == "-h" || args[1] == "--help"):
			fmt.Fprintln(stdout, "usage: bankbook version")
			return nil
		case len(args) > 1:
			return usageError("version takes no arguments, got %q", args[1:])
		}
		return version(stdout)
	case "help", "-h", "--help":
		if args[0] == "help" && len(args) > 1 {
			// "help order submit" is "order submit -h".
			return runCommand(ctx, append(slices.Clone(args[1:]), "-h"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", args[0])
}
