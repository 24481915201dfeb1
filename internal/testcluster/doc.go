// Package testcluster starts a real nats-server cluster inside a test
// process: N JetStream servers clustered over routes on loopback, each
// loaded from configuration text by server.ProcessConfigFile, so that a test
// can append an accounts/authorization block (Start's extra fragment) and
// run against exactly what an operator would deploy.
//
// Guarantees:
//   - Start returns only once the nodes are routed to one another, a
//     JetStream meta leader is elected, every node is a known peer and every
//     running node is current; otherwise the test fails.
//   - Each node keeps its name, client URL, route port and store directory
//     (under t.TempDir) for the life of the test, so Restart brings back the
//     same node with the same data, and a client that knows every URL finds
//     it again.
//   - Shutdown is a clean server shutdown (the nats-server Shutdown call), and
//     every node still running is shut down when the test ends.
//
// Nothing here mocks NATS; it is the real server, in process.
package testcluster
