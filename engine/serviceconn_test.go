package engine

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/testenv"
)

// When the NATS server closes the engine's service connection (as it does
// to a slow consumer, which a client's flood of large requests can make
// it), the connection of the event store and the parts stays up, and the
// service answers again once its own connection is back.
func TestServiceConnectionIsApartFromTheEventStores(t *testing.T) {
	e := startFast(t)
	nkey, err := nats.NkeyOptionFromSeed(e.SeedFile(auth.App))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(e.ClientURL(), nkey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	submit := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, err := client.Do(ctx, c, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: "u-1", BuyerName: "김민수", Amount: 1000}, nil)
		return err
	}
	if err := submit(); err != nil {
		t.Fatal(err)
	}
	if n, want := e.svc.NumSubscriptions(), len(api.Endpoints()); n < want {
		t.Fatalf("the service connection has %d subscriptions, want the %d endpoints' at least", n, want)
	}
	id, err := e.svc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ns.DisconnectClient(id); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		if e.svc.Status() != nats.CONNECTED {
			return errNotYet("service connection " + e.svc.Status().String())
		}
		return submit()
	})
	if n := e.nc.Stats().Reconnects; n != 0 || e.nc.Status() != nats.CONNECTED {
		t.Fatalf("the event store's connection reconnected %d times (status %s): it shares the service's fate", n, e.nc.Status())
	}
	if e.svc.Stats().Reconnects == 0 {
		t.Fatal("the service connection never reconnected: it was not the one closed")
	}
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) }
