package testcluster

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/internal/testenv"
)

// GlobalAccount is the account clients land in when the configuration has
// no accounts block.
const GlobalAccount = server.DEFAULT_GLOBAL_ACCOUNT

// clusterName is the route cluster's name.
const clusterName = "bankbook-test"

// readyTimeout bounds how long a node may take to accept connections, and
// the cluster to elect a meta leader with every peer current.
const readyTimeout = 30 * time.Second

// Cluster is a running set of clustered nats-servers. Its methods are safe
// for concurrent use.
type Cluster struct {
	t     testing.TB
	names []string

	mu    sync.Mutex
	nodes map[string]*node
}

// node is one member of the cluster.
type node struct {
	name       string
	clientPort int
	configFile string
	srv        *server.Server // nil while down
}

// Start starts n clustered JetStream servers named n1..nN, each with a
// client port and a route port on 127.0.0.1 and its store directory under
// t.TempDir(), and extra appended to each node's configuration text (for
// an accounts or authorization block; "" for none). It returns once the
// cluster has a meta leader and every node is current; the servers are shut
// down when the test ends.
func Start(t testing.TB, n int, extra string) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testcluster: %d nodes", n)
	}
	// The ports are free when chosen and released for the servers to
	// bind: another process can take one meanwhile. A cluster whose node
	// does not come up starts again on other ports.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c, err := launch(t, n, extra)
		if err == nil {
			c.WaitReady()
			return c
		}
		c.shutdownAll()
		if attempt == attempts {
			t.Fatalf("%v (%d attempts, each on other ports)", err, attempts)
		}
		t.Logf("%v; starting the cluster again on other ports", err)
	}
}

// launch writes the configurations of n nodes on fresh ports and starts
// them, each until it accepts connections.
func launch(t testing.TB, n int, extra string) (*Cluster, error) {
	ports := freePorts(t, 2*n)
	clientPorts, routePorts := ports[:n], ports[n:]
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = strconv.Quote(fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{t: t, nodes: map[string]*node{}}
	confDir := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		storeDir := t.TempDir()
		conf := fmt.Sprintf(configTemplate, name, clientPorts[i], quoteSingle(storeDir), clusterName, routePorts[i],
			strings.Join(routes, ", "), extra)
		file := filepath.Join(confDir, name+".conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatalf("testcluster: write %s: %v", file, err)
		}
		c.names = append(c.names, name)
		c.nodes[name] = &node{name: name, clientPort: clientPorts[i], configFile: file}
	}
	// Registered after the directories: cleanups run last first, so the
	// servers stop before their store directories are removed.
	t.Cleanup(c.shutdownAll)
	for _, name := range c.names {
		if err := c.start(c.nodes[name]); err != nil {
			return c, err
		}
	}
	return c, nil
}

// configTemplate is a node's configuration: name, client port, store dir,
// cluster name, route port, routes, extra.
const configTemplate = `server_name: %q
listen: "127.0.0.1:%d"
jetstream {
  store_dir: %s
  max_memory_store: 256MB
  max_file_store: 2GB
}
cluster {
  name: %q
  listen: "127.0.0.1:%d"
  routes: [%s]
}
%s
`

// quoteSingle quotes a path for the configuration: single quotes keep
// backslashes as they are.
func quoteSingle(s string) string { return "'" + s + "'" }

// freePorts reserves n distinct loopback ports at once, then releases them
// for the servers to bind.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testcluster: free port: %v", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// run starts nd from its configuration file.
func (c *Cluster) run(nd *node) {
	c.t.Helper()
	if err := c.start(nd); err != nil {
		c.t.Fatal(err)
	}
}

// start starts nd from its configuration file, until it accepts
// connections.
func (c *Cluster) start(nd *node) error {
	opts, err := server.ProcessConfigFile(nd.configFile)
	if err != nil {
		return fmt.Errorf("testcluster: %s: %w", nd.name, err)
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("testcluster: %s: %w", nd.name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		return fmt.Errorf("testcluster: %s not ready for connections within %v", nd.name, readyTimeout)
	}
	c.mu.Lock()
	nd.srv = s
	c.mu.Unlock()
	return nil
}

// Names returns the nodes' names, n1..nN.
func (c *Cluster) Names() []string { return append([]string(nil), c.names...) }

// URL returns every node's client URL, comma-joined: what a client (or
// engine.Config.NATSURL) is given so that it can fail over between nodes.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// URLs returns every node's client URL, in name order.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.names))
	for i, name := range c.names {
		out[i] = c.NodeURL(name)
	}
	return out
}

// NodeURL returns the client URL of the named node; it stays the same
// across Shutdown and Restart.
func (c *Cluster) NodeURL(name string) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.node(name).clientPort)
}

// ConfigFile returns the path of the named node's configuration file.
func (c *Cluster) ConfigFile(name string) string { return c.node(name).configFile }

// Server returns the named node's server, nil while it is down.
func (c *Cluster) Server(name string) *server.Server {
	nd := c.node(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	return nd.srv
}

// Shutdown stops the named node and waits until it has stopped. Stopping a
// node that is down does nothing.
func (c *Cluster) Shutdown(name string) {
	nd := c.node(name)
	c.mu.Lock()
	s := nd.srv
	nd.srv = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts the named nodes again, each from its own configuration
// and store directory, and waits until the cluster is ready again
// (WaitReady: every node a peer of the meta leader, so name every node
// that is down). Restarting a running node fails the test.
func (c *Cluster) Restart(names ...string) {
	c.t.Helper()
	for _, name := range names {
		nd := c.node(name)
		if c.Server(name) != nil {
			c.t.Fatalf("testcluster: restart %s: it is running", name)
		}
		c.run(nd)
	}
	c.WaitReady()
}

// running returns the nodes that are up, by name.
func (c *Cluster) running() map[string]*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*server.Server{}
	for name, nd := range c.nodes {
		if nd.srv != nil && nd.srv.Running() {
			out[name] = nd.srv
		}
	}
	return out
}

// MetaLeader returns the name of the running node that leads the JetStream
// meta group, "" when none does.
func (c *Cluster) MetaLeader() string {
	for name, s := range c.running() {
		if s.JetStreamIsLeader() {
			return name
		}
	}
	return ""
}

// WaitReady waits until a meta leader is elected, every node of the
// cluster is one of its peers, and every running node is current; it fails
// the test after 30s.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.waitFor(readyTimeout, func() error {
		name := c.MetaLeader()
		if name == "" {
			return fmt.Errorf("no JetStream meta leader")
		}
		up := c.running()
		if peers := up[name].JetStreamClusterPeers(); len(peers) != len(c.names) {
			return fmt.Errorf("meta leader %s knows %d peers, want %d", name, len(peers), len(c.names))
		}
		for n, s := range up {
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s is not current with the meta leader", n)
			}
		}
		return nil
	})
}

// StreamLeader returns the name of the running node that leads stream in
// account, "" when none does (an election is under way, or no such stream).
func (c *Cluster) StreamLeader(account, stream string) string {
	for name, s := range c.running() {
		if s.JetStreamIsStreamLeader(account, stream) {
			return name
		}
	}
	return ""
}

// WaitStreamLeader waits until a running node leads stream in account and
// returns its name; it fails the test after timeout.
func (c *Cluster) WaitStreamLeader(account, stream string, timeout time.Duration) string {
	c.t.Helper()
	var leader string
	c.waitFor(timeout, func() error {
		if leader = c.StreamLeader(account, stream); leader == "" {
			return fmt.Errorf("no leader for stream %s in account %s", stream, account)
		}
		return nil
	})
	return leader
}

// WatchLeader watches, from a goroutine polling every millisecond, for a
// running node other than old to lead stream in account, and sends the time
// it first saw one on the returned channel. It gives up when the test ends.
// Start it before shutting old down to time the election.
func (c *Cluster) WatchLeader(account, stream, old string) <-chan time.Time {
	elected := make(chan time.Time, 1)
	done := make(chan struct{})
	c.t.Cleanup(func() { close(done) })
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if l := c.StreamLeader(account, stream); l != "" && l != old {
				elected <- time.Now()
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return elected
}

// stepdownWait is how long MoveStreamLeader waits for the leadership
// transfer a step-down asks for before it looks again.
const stepdownWait = 5 * time.Second

// MoveStreamLeader makes the named node the leader of stream in account. It
// asks the current leader, over nc (a client of that account), to step down
// in favour of that node (the JetStream API's step-down with a preferred
// placement, so no election is left to chance), again while another node
// still leads, and fails the test if the node does not lead within timeout.
func (c *Cluster) MoveStreamLeader(nc *nats.Conn, account, stream, to string, timeout time.Duration) {
	c.t.Helper()
	c.node(to)
	req, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
	if err != nil {
		c.t.Fatalf("testcluster: step-down request: %v", err)
	}
	c.waitFor(timeout, func() error {
		leader := c.StreamLeader(account, stream)
		switch leader {
		case to:
			return nil
		case "":
			return fmt.Errorf("stream %s has no leader", stream)
		}
		msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, stepdownWait)
		if err != nil {
			return fmt.Errorf("step down %s on %s: %w", stream, leader, err)
		}
		var resp struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return fmt.Errorf("step down %s on %s: %w", stream, leader, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("step down %s on %s: %s", stream, leader, resp.Error.Description)
		}
		deadline := time.Now().Add(stepdownWait)
		for time.Now().Before(deadline) {
			if l := c.StreamLeader(account, stream); l == to {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return fmt.Errorf("stream %s is led by %s, not %s", stream, c.StreamLeader(account, stream), to)
	})
}

func (c *Cluster) node(name string) *node {
	c.t.Helper()
	nd, ok := c.nodes[name]
	if !ok {
		c.t.Fatalf("testcluster: no node %q (have %s)", name, strings.Join(c.names, ", "))
	}
	return nd
}

// shutdownAll stops every node still running.
func (c *Cluster) shutdownAll() {
	for _, name := range c.names {
		c.Shutdown(name)
	}
}

// waitFor polls check until it returns nil and fails the test with its
// last error after timeout.
func (c *Cluster) waitFor(timeout time.Duration, check func() error) {
	c.t.Helper()
	testenv.CheckFor(c.t, timeout, check)
}
