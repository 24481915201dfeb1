package inmem_test

import (
	"testing"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/inmem"
	"github.com/bankbook/bankbook/eventstore/storetest"
)

// TestContract runs the event store contract against the in-memory store.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, up eventstore.Upcaster) storetest.Store {
		return inmem.New(inmem.Config{Upcaster: up})
	})
}
