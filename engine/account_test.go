package engine_test

import (
	"context"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// An engine whose permissions do not let it ask the server which account
// it is in starts, warning that it could not check, as it did before it
// asked; only an answer naming another account stops it. (A server with
// JetStream always has a system account, which answers the question.)
func TestStartWhereTheEngineMayNotAskItsAccount(t *testing.T) {
	ns := runServer(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*natsserver.User{{Username: "engine", Password: "pw", Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{">"}, Deny: []string{"$SYS.>"}},
			Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}},
		}}}})
	logs := &testenv.SyncBuffer{}
	e, err := engine.Start(context.Background(), withPassword(t, externalConfig(t, ns.ClientURL(), 0)), engineLog(logs, "e"))
	if err != nil {
		t.Fatalf("the engine did not start: %v\n%s", err, tail(logs.String(), 4000))
	}
	stopAtCleanup(t, e, "e")
	if !strings.Contains(logs.String(), "cannot check that it is its tenant's engine account") {
		t.Errorf("no warning that the account was not checked:\n%s", tail(logs.String(), 4000))
	}
}
