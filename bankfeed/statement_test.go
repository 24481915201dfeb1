package bankfeed

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestStatement: the statement of a period holds the account's and its
// sub-accounts' transactions deposited in it, each once, in deposit
// order; two different transactions under one ID are both kept; and until
// the bank vouches for the whole period there is no statement.
func TestStatement(t *testing.T) {
	from, to := t0, t0.Add(24*time.Hour)
	mk := func(id, account string, at time.Duration, amount int64) Transaction {
		return Transaction{BankTxnID: id, AccountNumber: account, DepositorName: "김하루", Amount: amount, DepositedAt: from.Add(at)}
	}
	before := mk("T-0", collect, -time.Second, 1000)
	first := mk("T-1", collect, 0, 1000)
	sub := mk("S-1", "100-0001", time.Hour, 2000)
	other := mk("X-1", "999-000", time.Hour, 3000)
	conflict := mk("T-2", collect, 2*time.Hour, 4000)
	conflicting := mk("T-2", collect, 2*time.Hour, 4500)
	last := mk("T-3", collect, 24*time.Hour-time.Nanosecond, 5000)
	after := mk("T-4", collect, 24*time.Hour, 6000)
	src := &scriptedSource{results: []ScanResult{
		{Transactions: []Transaction{first}, CompleteUpTo: to.Add(-time.Minute)},
		{Transactions: []Transaction{after, last, conflict, other, sub, first, before, conflicting, first}, CompleteUpTo: to},
	}}
	isSub := func(n string) bool { return strings.HasPrefix(n, "1000") }

	_, err := Statement(context.Background(), src, collect, isSub, from, to)
	var inc *IncompleteError
	if !errors.As(err, &inc) || !inc.CompleteUpTo.Equal(to.Add(-time.Minute)) || !inc.To.Equal(to) {
		t.Fatalf("a result complete up to a minute before the period's end: %v, want *IncompleteError", err)
	}
	got, err := Statement(context.Background(), src, collect, isSub, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := []Transaction{first, sub, conflict, conflicting, last}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statement:\n got %+v\nwant %+v", got, want)
	}
	if !src.sinces[1].Equal(from) {
		t.Errorf("scanned since %s, want the period's start", src.sinces[1])
	}

	// Written in the import dialect, it reads back as it was.
	var buf bytes.Buffer
	if err := WriteCSV(&buf, []Transaction{first, sub, last}); err != nil {
		t.Fatal(err)
	}
	back, err := ParseCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, []Transaction{first, sub, last}) {
		t.Fatalf("read back %+v", back)
	}

	// An invalid transaction is an error, not left out.
	bad := mk("T-5", collect, time.Hour, -1)
	src = &scriptedSource{results: []ScanResult{{Transactions: []Transaction{first, bad}, CompleteUpTo: to}}}
	if _, err := Statement(context.Background(), src, collect, isSub, from, to); !errors.Is(err, ErrInvalidTransaction) {
		t.Fatalf("an invalid transaction: %v", err)
	}
}

// A repeat of a conflicting row is a repeat too: the statement holds each
// of the two transactions under one ID once, however often the feed
// repeats either, so the same period read again is the same statement.
func TestStatementRepeatedConflict(t *testing.T) {
	from, to := t0, t0.Add(24*time.Hour)
	kept := Transaction{BankTxnID: "T-2", AccountNumber: collect, DepositorName: "김하루", Amount: 4000, DepositedAt: from.Add(time.Hour)}
	other := kept
	other.Amount = 4500
	src := &scriptedSource{results: []ScanResult{
		{Transactions: []Transaction{kept, other, other, kept, other}, CompleteUpTo: to},
	}}
	got, err := Statement(context.Background(), src, collect, nil, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Transaction{kept, other}; !reflect.DeepEqual(got, want) {
		t.Fatalf("statement:\n got %+v\nwant %+v", got, want)
	}
	// The feed in another order (and one ID on two accounts at one
	// instant) reads as the same statement.
	sub := kept
	sub.AccountNumber = "100-0001"
	isSub := func(n string) bool { return strings.HasPrefix(n, "1000") }
	var first []Transaction
	for i, rows := range [][]Transaction{{sub, kept, other}, {other, kept, sub, other}} {
		src := &scriptedSource{results: []ScanResult{{Transactions: rows, CompleteUpTo: to}}}
		got, err := Statement(context.Background(), src, collect, isSub, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("the feed in another order:\n got %+v\nwant %+v", got, first)
		}
	}
}
