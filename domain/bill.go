package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// DistributorID identifies a distributor: a supplier that bills its stores.
type DistributorID string

// StoreID identifies a store: a buyer that pays its distributors by bank
// transfer.
type StoreID string

// MaxStoreNameLength is the longest store name accepted, in characters.
const MaxStoreNameLength = 100

// MaxDistributorNameLength is the longest distributor name accepted, in
// characters.
const MaxDistributorNameLength = 100

// MaxMemoLength is the longest bill memo accepted, in characters.
const MaxMemoLength = 200

// BillStatus is where a bill is in its life.
type BillStatus string

// Bill statuses (API.md "Bills"). A bill is current while it is active,
// partially paid or paid: it stays current until the next bill for its
// store is issued (it expires) or it is cancelled.
const (
	BillStatusActive        BillStatus = "active"
	BillStatusPartiallyPaid BillStatus = "partially_paid"
	BillStatusPaid          BillStatus = "paid"
	BillStatusExpired       BillStatus = "expired"
	BillStatusCancelled     BillStatus = "cancelled"
)

// Current reports whether a bill in status s is its store's current bill:
// the one payments go to and the next bill supersedes.
func (s BillStatus) Current() bool {
	return s == BillStatusActive || s == BillStatusPartiallyPaid || s == BillStatusPaid
}

// BillStatusOf is the status of a current bill of amount of which paid has
// been paid: active while nothing is paid, paid once paid ≥ amount
// (overpayment included), partially paid in between.
func BillStatusOf(amount, paid int64) BillStatus {
	switch {
	case paid >= amount:
		return BillStatusPaid
	case paid > 0:
		return BillStatusPartiallyPaid
	}
	return BillStatusActive
}

// BillOutstanding is what remains to pay on a bill of amount of which paid
// has been paid: never negative (an overpaid bill owes 0).
func BillOutstanding(amount, paid int64) int64 { return max(0, amount-paid) }

const (
	linkIDPrefix = "lnk_"
	billIDPrefix = "bill_"
	linkHexLen   = 24
)

// LinkID derives the ID of the link of a (distributor, store) pair: "lnk_"
// and the first 24 hex digits of sha256(distributor + NUL + store). It is
// deterministic, so linking the same pair again, anywhere, addresses the
// same link aggregate.
func LinkID(distributor DistributorID, store StoreID) string {
	sum := sha256.Sum256([]byte(string(distributor) + "\x00" + string(store)))
	return linkIDPrefix + hex.EncodeToString(sum[:])[:linkHexLen]
}

// BillID is the ID of bill n (1, 2, 3…) of a link: "bill_", the link's 24
// hex digits, "_" and n. A bill ID names its link, so a command on a bill
// finds the link aggregate without a lookup. linkID must be a LinkID.
func BillID(linkID string, n int) string {
	return billIDPrefix + strings.TrimPrefix(linkID, linkIDPrefix) + "_" + strconv.Itoa(n)
}

// ParseBillID returns the link and the number of a bill ID that BillID
// made. Any other string names no bill: the error matches ErrBillNotFound
// (404), with the ID in its details. Only the canonical form parses (lower
// case hex, n ≥ 1 without leading zeros), so every bill has one ID.
func ParseBillID(billID string) (linkID string, n int, err error) {
	linkID, n, ok := parseBillID(billID)
	if !ok {
		return "", 0, ErrBillNotFound.With("", map[string]any{"bill_id": billID})
	}
	return linkID, n, nil
}

func parseBillID(billID string) (linkID string, n int, ok bool) {
	rest, ok := strings.CutPrefix(billID, billIDPrefix)
	if !ok || len(rest) < linkHexLen+2 || rest[linkHexLen] != '_' {
		return "", 0, false
	}
	hexPart, num := rest[:linkHexLen], rest[linkHexLen+1:]
	for i := 0; i < len(hexPart); i++ {
		if c := hexPart[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", 0, false
		}
	}
	if num[0] == '0' || len(num) > 9 {
		return "", 0, false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return "", 0, false
	}
	return linkIDPrefix + hexPart, n, true
}
