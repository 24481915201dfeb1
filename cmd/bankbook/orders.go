package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
)

func order(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, "usage: bankbook order submit|cancel|pay-from-wallet|get|search [flags]")
	}
	fs, cf := newClientFlagSet("order "+args[0], stderr)
	switch args[0] {
	case "submit":
		var req api.SubmitOrderRequest
		fs.StringVar(&req.BuyerID, "buyer-id", "", "buyer's user ID")
		fs.StringVar(&req.BuyerName, "buyer-name", "", "buyer's name; the depositor name is built from it")
		fs.Int64Var(&req.Amount, "amount", 0, "amount in minor units (KRW: won)")
		fs.StringVar(&req.Currency, "currency", "", "currency (default KRW)")
		fs.StringVar(&req.OrderID, "order-id", "", "order ID (default: generated)")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args[1:], required("buyer-id", "buyer-name", "amount")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.OrderSubmit, req, client.WithIdempotencyKey(*key), func(r api.SubmitOrderReply) string {
			s := fmt.Sprintf("order %s  %s  (seq %d)\n  transfer %s %s to %s %s (%s)\n  depositor name: %s\n  submitted at %s; cancel window %ds\n",
				r.OrderID, r.Status, r.Seq, itoa(r.Amount), r.Currency, r.CollectAccount.Bank, r.CollectAccount.Number, r.CollectAccount.Holder,
				r.DepositorName, r.SubmittedAt, r.CancelWindowS)
			if r.ExpiresAt != "" {
				s += "  pay by " + r.ExpiresAt + " (unpaid then, the order expires)\n"
			}
			return s
		})
	case "cancel":
		var req api.CancelOrderRequest
		fs.StringVar(&req.OrderID, "order-id", "", "order to cancel")
		var deposited optionalBool
		fs.Var(&deposited, "deposited", "true if the buyer says the money was already transferred (the cancellation waits for the bank scan), false if not")
		fs.StringVar(&req.Reason, "reason", "", "why")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args[1:], required("order-id", "deposited")); err != nil {
			return err
		}
		req.Deposited = deposited.v
		return call(ctx, cf, stdout, api.OrderCancel, req, client.WithIdempotencyKey(*key), func(r api.CancelOrderReply) string {
			s := fmt.Sprintf("order %s  %s  (seq %d)\n", r.OrderID, r.Status, r.Seq)
			if r.CancelAt != "" {
				s += "  cancellation final at " + r.CancelAt + "\n"
			}
			if r.Refund != nil {
				s += fmt.Sprintf("  refund %s to the %s\n", itoa(r.Refund.Amount), r.Refund.To)
			}
			return s
		})
	case "pay-from-wallet":
		var req api.PayFromWalletRequest
		fs.StringVar(&req.OrderID, "order-id", "", "order to pay in full from its buyer's wallet")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args[1:], required("order-id")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.OrderPay, req, client.WithIdempotencyKey(*key), func(r api.PayFromWalletReply) string {
			return fmt.Sprintf("order %s  %s  (seq %d)\n  paid %s from the wallet; the wallet now holds %s\n", r.OrderID, r.Status, r.Seq, itoa(r.Amount), itoa(r.WalletBalance))
		})
	case "get":
		var req api.GetOrderRequest
		fs.StringVar(&req.OrderID, "order-id", "", "order to show")
		minSeqFlag(fs, &req.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args[1:], required("order-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.OrderGet, req, func(v api.OrderView) string {
			var b strings.Builder
			fmt.Fprintf(&b, "order %s  %s\n", v.OrderID, v.Status)
			fmt.Fprintf(&b, "  buyer %s (%s)  amount %s %s  paid %s\n", v.BuyerID, v.BuyerName, itoa(v.Amount), v.Currency, itoa(v.PaidAmount))
			fmt.Fprintf(&b, "  depositor name %s  account %s %s\n", v.DepositorName, v.CollectAccount.Bank, v.CollectAccount.Number)
			fmt.Fprintf(&b, "  submitted %s  updated %s\n", v.SubmittedAt, v.UpdatedAt)
			if v.ExpiresAt != "" {
				fmt.Fprintf(&b, "  payment deadline %s\n", v.ExpiresAt)
			}
			if v.CancelAt != "" {
				fmt.Fprintf(&b, "  cancellation final at %s\n", v.CancelAt)
			}
			if v.CancelReason != "" {
				fmt.Fprintf(&b, "  cancel reason: %s\n", v.CancelReason)
			}
			if v.PaidFrom == api.PaidFromWallet {
				b.WriteString("  paid from the buyer's wallet\n")
			}
			if len(v.DepositIDs) > 0 {
				fmt.Fprintf(&b, "  deposits: %s\n", strings.Join(v.DepositIDs, ", "))
			}
			for _, r := range v.Refunds {
				fmt.Fprintf(&b, "  refund %s to the %s at %s\n", itoa(r.Amount), r.To, r.At)
			}
			return b.String()
		})
	case "search":
		var q api.OrderSearchRequest
		fs.StringVar(&q.OrderID, "order-id", "", "the order with this ID")
		fs.StringVar(&q.DepositorName, "depositor-name", "", "orders with this depositor name (compared as the engine compares names)")
		fs.StringVar(&q.BuyerName, "buyer-name", "", "orders with this buyer name (compared as the engine compares names): a buyer's orders without the depositor name's digits")
		fs.StringVar(&q.Status, "status", "", "awaiting_deposit, paid, cancel_reserved, cancelled or expired")
		pageFlags(fs, &q.PageRequest, "orders (newest first)")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.OrderSearch, q, nil, func(r api.OrderSearchReply) string {
			var b strings.Builder
			for _, v := range r.Orders {
				fmt.Fprintf(&b, "%s  %-16s %12s  %-16s submitted %s", v.OrderID, v.Status, itoa(v.Amount), v.DepositorName, v.SubmittedAt)
				if v.Status == "cancel_reserved" && v.CancelAt != "" {
					fmt.Fprintf(&b, "  final at %s", v.CancelAt)
				}
				b.WriteString("\n")
			}
			if len(r.Orders) == 0 {
				b.WriteString("no orders\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	}
	return usageError("unknown order command %q (submit, cancel, pay-from-wallet, get, search)", args[0])
}

// optionalBool is a boolean flag that knows whether it was given:
// --deposited (true), --deposited=false, or absent (nil).
type optionalBool struct{ v *bool }

func (o *optionalBool) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return strconv.FormatBool(*o.v)
}

func (o *optionalBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	o.v = &b
	return nil
}

// IsBoolFlag lets --deposited stand alone for true.
func (o *optionalBool) IsBoolFlag() bool { return true }
