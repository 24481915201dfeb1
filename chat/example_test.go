package chat_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/bankbook/bankbook/chat"
)

// A message through the Sendbird adapter to the simulator, then the
// simulator's rolling window refusing the sends past its rate.
func Example() {
	sim, err := chat.NewSim(chat.SimConfig{Rate: 2, Window: time.Minute, Token: "s3cret"})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	sb, err := chat.NewSendbird(chat.SendbirdConfig{URL: srv.URL, Token: "s3cret"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	m := chat.Message{ID: "ntf_1", Kind: "bill_issued", Recipient: "store:st_1", Text: "[청구서] 150,000원", Data: map[string]string{"amount": "150000"}}
	r, err := sb.Send(ctx, m)
	fmt.Println(r.Ref, err)
	for _, msg := range sim.Messages("store:st_1") {
		fmt.Println(msg.Channel, msg.CustomType, msg.Data)
	}

	// Did it arrive? (what a dispatcher asks after a timeout)
	_, found, err := sb.Delivered(ctx, m, time.Now().Add(-time.Minute))
	fmt.Println(found, err)

	sb.Send(ctx, m) // the simulator does not dedupe: a second copy
	_, err = sb.Send(ctx, m)
	var limited *chat.RateLimitedError
	fmt.Println(errors.As(err, &limited), limited.RetryAfter > 0, sim.Refused())
	// Output:
	// 1 <nil>
	// store:st_1 bill_issued {"amount":"150000","notification_id":"ntf_1"}
	// true <nil>
	// true true 1
}
