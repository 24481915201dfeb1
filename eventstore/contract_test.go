package eventstore_test

import (
	"testing"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestContract runs the event store contract against the JetStream store,
// each case on its own embedded server.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, up eventstore.Upcaster) storetest.Store {
		srv := testenv.Start(t, "")
		_, js := srv.Connect(t)
		return open(t, js, eventstore.Config{Upcaster: up})
	})
}
