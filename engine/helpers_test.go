package engine_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// engineJS connects to e's server as the engine identity; the connection
// closes when the test ends (or earlier, by the caller).
func engineJS(t *testing.T, e *engine.Engine) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return testenv.Dial(t, e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Engine)))
}

// partReady returns whether e's part name is ready, and its detail.
func partReady(t *testing.T, e *engine.Engine, name string) (bool, string) {
	t.Helper()
	st, ok := e.Parts.Status(name)
	if !ok {
		t.Fatalf("no %s part", name)
	}
	return st.OK(), st.Detail
}
