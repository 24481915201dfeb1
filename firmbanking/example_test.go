package firmbanking_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/firmbanking"
)

// A payout against the fake provider: Settle sends the transfer (idempotent on
// its ID) and polls until the provider reports a final result.
func ExampleSettle() {
	fake := firmbanking.NewFakeService(firmbanking.FakeOptions{Token: "s3cret", Fee: 500})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()

	client := &firmbanking.Client{BaseURL: srv.URL, Token: "s3cret"}
	payout := firmbanking.Transfer{
		ID:     "payout-42",
		Amount: 30_000,
		To:     domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "김민수"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := firmbanking.Settle(ctx, client, payout, firmbanking.Backoff{Initial: 10 * time.Millisecond})
	if err != nil {
		fmt.Println("try again later:", err)
		return
	}
	fmt.Println(res.Status, res.Fee, len(fake.Sent()))

	// Sending it again is harmless.
	again, _ := client.Send(ctx, payout)
	fmt.Println(again.Status, len(fake.Sent()))
	// Output:
	// settled 500 1
	// settled 1
}
