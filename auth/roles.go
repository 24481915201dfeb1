package auth

import (
	"fmt"
	"strings"
)

// Role is what an identity may do. API.md's "Access and identity" table is
// the contract; grants below is its only implementation.
type Role string

// The roles.
const (
	App      Role = "app"
	Feed     Role = "feed"
	Operator Role = "operator"
	Auditor  Role = "auditor"
	Engine   Role = "engine"
)

// Roles lists every role, in the order their seeds are created.
var Roles = []Role{App, Feed, Operator, Auditor, Engine}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// DefaultStream is the event stream's name (eventstore's default).
const DefaultStream = "BANKBOOK_EVENTS"

// grant is one subject an identity's account imports from ENGINE and its
// user may publish to.
type grant struct {
	subject string   // imported from ENGINE and allowed to publish
	except  []string // refused although under subject
	stream  bool     // a request may get several replies (several instances, a batch)
}

// grants returns what role r may request. simulators adds the simulator
// subjects where the role may use them; stream names the event stream.
// srv is the micro service discovery and monitoring verbs.
var srv = grant{subject: "$SRV.>", stream: true}

func grants(r Role, simulators bool, stream string) ([]grant, error) {
	var (
		// app reads neither the audit trail nor reconciliation results.
		queries    = grant{subject: "bankbook.q.>", except: []string{"bankbook.q.audit.>", "bankbook.q.reconcile.>"}}
		allQueries = grant{subject: "bankbook.q.>"}
		sims       []grant
	)
	if simulators {
		sims = []grant{{subject: "bankbook.sim.>"}}
	}
	switch r {
	case App:
		return append([]grant{
			{subject: "bankbook.cmd.order.>"},
			{subject: "bankbook.cmd.wallet.withdraw"},
			{subject: "bankbook.cmd.store.link"},
			{subject: "bankbook.cmd.store.rename"},
			{subject: "bankbook.cmd.bill.>"},
			queries, srv,
		}, sims...), nil
	case Feed:
		return []grant{
			{subject: "bankbook.cmd.deposit.record"},
			{subject: "bankbook.cmd.deposit.scan_complete"},
			srv,
		}, nil
	case Operator:
		// What app and feed may, every other command (deposit.resolve,
		// notify.*, reconcile.*, dead letters, setting a damaged commit
		// aside) and the audit queries.
		return append([]grant{{subject: "bankbook.cmd.>"}, allQueries, srv}, sims...), nil
	case Auditor:
		// Queries, and read-only access to the event stream: direct gets
		// (one message, or a batch for replay and audit). Other JetStream
		// API calls made across accounts are answered for the caller's own
		// account, which has no JetStream; direct gets are the stream's.
		return []grant{
			allQueries, srv,
			{subject: "$JS.API.DIRECT.GET." + stream, stream: true},
			{subject: "$JS.API.DIRECT.GET." + stream + ".>"},
		}, nil
	}
	return nil, fmt.Errorf("%w: role %q has no grants (the engine is not granted, it owns)", ErrInvalidUser, r)
}

// commandSubject reports whether a grant is a command subject, which an
// account imports mapped under its own name (FromSubject).
func commandSubject(subject string) bool { return strings.HasPrefix(subject, "bankbook.cmd.") }

// exports is what ENGINE offers every account; every grant is under one of
// them, but for the commands, which each account imports from an export of
// its own (Render).
func exports(simulators bool, stream string) []grant {
	out := []grant{
		{subject: "bankbook.q.>"},
		srv,
		{subject: "$JS.API.DIRECT.GET." + stream, stream: true},
		{subject: "$JS.API.DIRECT.GET." + stream + ".>"},
	}
	if simulators {
		out = append(out, grant{subject: "bankbook.sim.>"})
	}
	return out
}
