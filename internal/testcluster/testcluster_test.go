package testcluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestClusterSurvivesItsStreamLeader: an R3 stream on three nodes keeps
// what it acknowledged when its leader is shut down, elects another leader,
// takes writes again, and the restarted node catches up.
func TestClusterSurvivesItsStreamLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := testcluster.Start(t, 3, "")
	if got := len(strings.Split(c.URL(), ",")); got != 3 {
		t.Fatalf("URL() = %q, want three URLs", c.URL())
	}
	nc, js := connect(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamLeader(testcluster.GlobalAccount, "T", 10*time.Second)
	for i := range 10 {
		if _, err := js.Publish(ctx, "t.a", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}

	c.Shutdown(leader)
	if c.Server(leader) != nil {
		t.Fatalf("Server(%s) is not nil after Shutdown", leader)
	}
	next := c.WaitStreamLeader(testcluster.GlobalAccount, "T", 10*time.Second)
	if next == leader {
		t.Fatalf("stream still led by the stopped node %s", leader)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		_, err := js.Publish(ctx, "t.a", []byte{10})
		return err
	})

	c.Restart(leader)
	testenv.Eventually(t, 10*time.Second, "the restarted node current on T", func() bool {
		s := c.Server(leader)
		return s != nil && s.JetStreamIsStreamCurrent(testcluster.GlobalAccount, "T")
	})
	c.MoveStreamLeader(nc, testcluster.GlobalAccount, "T", leader, time.Minute) // elections are slow on a loaded machine
	info, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 11 {
		t.Fatalf("stream holds %d messages on %s after restart, want 11", n, leader)
	}
}

// TestExtraConfiguration: the extra fragment is part of every node's
// configuration, so an authorization block takes effect cluster-wide.
func TestExtraConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, 2, `accounts { A { jetstream: enabled, users: [ {user: "u", password: "p"} ] } }`)
	for _, name := range c.Names() {
		if _, err := nats.Connect(c.NodeURL(name)); !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: anonymous connect: %v, want an authorization error", name, err)
		}
		nc, err := nats.Connect(c.NodeURL(name), nats.UserInfo("u", "p"))
		if err != nil {
			t.Fatalf("%s: connect as u: %v", name, err)
		}
		nc.Close()
	}
	_, js := connect(t, c.URL(), nats.UserInfo("u", "p"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	if l := c.WaitStreamLeader("A", "T", 10*time.Second); l == "" {
		t.Fatal("no leader")
	}
	if l := c.StreamLeader(testcluster.GlobalAccount, "T"); l != "" {
		t.Fatalf("stream T found in the global account, led by %s", l)
	}
}

func connect(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return testenv.Dial(t, url, opts...)
}
