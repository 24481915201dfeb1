package engine_test

import (
	"strings"
	"testing"

	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

// On a replicated cluster, a second instance started with the same
// settings as the first changes no shared setting, and says nothing.
func TestClusterSameSettingsNoWarning(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster with two engines")
	}
	access := authenticated(t)
	cl := testcluster.Start(t, 3, access.extra)
	logs := &testenv.SyncBuffer{}
	startClusterEngine(t, cl, access, "e1", logs)
	startClusterEngine(t, cl, access, "e2", logs)
	const warning = "this engine changed settings of a stream every instance shares"
	if s := logs.String(); strings.Contains(s, warning) {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, warning) {
				lines = append(lines, l)
			}
		}
		t.Fatalf("a warning on a start with the same settings:\n%s", strings.Join(lines, "\n"))
	}
}
