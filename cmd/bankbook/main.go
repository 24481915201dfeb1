// Command bankbook runs the bankbook payments engine and talks to it.
//
//	bankbook serve [flags]                      run the engine
//	bankbook order submit|cancel|get ...        orders
//	bankbook deposit import|orphans|resolve     deposits and the orphan queue
//	bankbook wallet get|withdraw                wallets and payouts
//	bankbook ledger trial-balance|account       the double-entry ledger
//	bankbook bank-sim transfer                  the simulated bank (serve --bank-sim)
//	bankbook projections status [--hash]        read-model checkpoint and lag
//	bankbook replay --out DIR                   rebuild the read models from the log
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
	"syscall"
)

const usage = `bankbook — event-sourced payments engine on NATS JetStream

usage:
  bankbook serve [flags]                  run the engine (embedded NATS by default)
  bankbook order submit [flags]           submit a smart bank-transfer order
  bankbook order cancel [flags]           cancel an order
  bankbook order get --order-id ID        show an order
  bankbook deposit import FILE.csv        record a bank statement's transactions
  bankbook deposit orphans                deposits that matched nothing
  bankbook deposit resolve [flags]        resolve an orphan: assign_order, refund_to_wallet, refund_to_bank
  bankbook wallet get --user-id ID        a wallet's balance and movements
  bankbook wallet withdraw [flags]        pay a wallet out to a bank account
  bankbook ledger trial-balance           every account's balance (sums to 0)
  bankbook ledger account --account A     an account's entries
  bankbook bank-sim transfer [flags]      transfer money into the simulated bank (serve --bank-sim)
  bankbook projections status [--hash]    read-model checkpoint, lag and content hash
  bankbook replay --out DIR               rebuild every read model from sequence 0 into DIR

Run 'bankbook COMMAND -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bankbook:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit status.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run executes one bankbook command line; main only adds signals and exit codes.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "order":
		return order(ctx, args[1:], stdout, stderr)
	case "deposit":
		return deposit(ctx, args[1:], stdout, stderr)
	case "wallet", "ledger", "bank-sim":
		return money(ctx, args[0], args[1:], stdout, stderr)
	case "projections":
		return projectionsCmd(ctx, args[1:], stdout, stderr)
	case "replay":
		return replay(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
