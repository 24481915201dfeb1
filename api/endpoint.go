package api

import (
	"reflect"
	"strings"
)

// Kind says what an endpoint does.
type Kind string

// Endpoint kinds, reported in $SRV.INFO.bankbook as the endpoint metadata "kind".
const (
	KindCommand   Kind = "command"   // bankbook.cmd.<area>.<verb>: may write history
	KindQuery     Kind = "query"     // bankbook.q.<area>.<verb>: reads the read models
	KindSimulator Kind = "simulator" // bankbook.sim.<area>.<verb>: development and tests only
)

// Seq is a position in the event stream: the consistency token of API.md.
type Seq uint64

// Info describes one endpoint without its Go types: what routes, listings
// and documentation need.
type Info struct {
	// Name is the micro endpoint name (area_verb).
	Name    string
	Subject string
	Kind    Kind
	// Idempotent says the endpoint honours the Idempotency-Key header;
	// every command does but deposit.scan_complete, idempotent by nature,
	// which ignores it.
	Idempotent bool
	// MaxBodyBytes is the largest request body it accepts (DefaultMaxBody
	// unless the endpoint needs more, as a bulk command does).
	MaxBodyBytes int
}

// DefaultMaxBody is the largest request body an endpoint accepts unless it
// says otherwise: 64 KiB.
const DefaultMaxBody = 64 << 10

// Endpoint is one API endpoint with its request and reply types.
type Endpoint[Req, Rep any] struct{ Info }

// all is every endpoint in declaration order; the constructors below add
// to it while the package's variables are initialised, and nothing changes
// it afterwards.
var all []Info

// replyTypes are the endpoints' reply types, in the order of all.
var replyTypes []reflect.Type

// Endpoints lists every endpoint in the order endpoints.go declares them.
func Endpoints() []Info { return append([]Info(nil), all...) }

func declare[Req, Rep any](kind Kind, subject string, idempotent bool) Endpoint[Req, Rep] {
	info := Info{Name: nameOf(kind, subject), Subject: subject, Kind: kind, Idempotent: idempotent, MaxBodyBytes: DefaultMaxBody}
	all = append(all, info)
	replyTypes = append(replyTypes, reflect.TypeFor[Rep]())
	return Endpoint[Req, Rep]{info}
}

func command[Req, Rep any](subject string, idempotent bool) Endpoint[Req, Rep] {
	return declare[Req, Rep](KindCommand, subject, idempotent)
}

// bulkCommand is a command whose body may be up to maxBody bytes (below
// NATS's 1 MiB payload limit).
func bulkCommand[Req, Rep any](subject string, idempotent bool, maxBody int) Endpoint[Req, Rep] {
	ep := declare[Req, Rep](KindCommand, subject, idempotent)
	ep.MaxBodyBytes = maxBody
	all[len(all)-1] = ep.Info
	return ep
}

func query[Req, Rep any](subject string) Endpoint[Req, Rep] {
	return declare[Req, Rep](KindQuery, subject, false)
}

func simulator[Req, Rep any](subject string) Endpoint[Req, Rep] {
	return declare[Req, Rep](KindSimulator, subject, false)
}

// nameOf derives the micro endpoint name from the subject:
// bankbook.cmd.order.submit → order_submit, bankbook.sim.bank.transfer →
// sim_bank_transfer (simulators keep their prefix).
func nameOf(kind Kind, subject string) string {
	parts := strings.Split(subject, ".")
	name := strings.Join(parts[2:], "_")
	if kind == KindSimulator {
		name = "sim_" + name
	}
	return name
}
