package auth

import (
	"errors"
	"strings"
)

// RequestInfoHeader is the header the NATS server sets on a request that
// crosses a service import with shared requester information. It is not
// what names the actor (see Actor): a client that writes its own header
// block can hide the server's copy from nats.go and show its own.
const RequestInfoHeader = "Nats-Request-Info"

// fromPrefix starts the subject a command arrives on in the engine's
// account: each identity's account imports the command subjects mapped
// under its own name (Render), so the server, not the client, writes who
// sent it into the subject.
const fromPrefix = "bankbook.from."

// FromSubject is the subject in the engine's account on which a command
// sent by account on subject ("bankbook.cmd.order.submit") arrives:
// "bankbook.from.<account>.cmd.order.submit". subject may end in a
// wildcard.
func FromSubject(account, subject string) string {
	return fromPrefix + account + "." + strings.TrimPrefix(subject, "bankbook.")
}

// AccountOf returns the account a request arrived from: the token FromSubject
// put into its subject (a command's or a query's), or "" for a subject
// that carries none.
func AccountOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, fromPrefix)
	acc, _, found := strings.Cut(rest, ".")
	if !ok || !found {
		return ""
	}
	return acc
}

// FromAnySubject is what the engine subscribes to for the command on
// subject: FromSubject of every account.
func FromAnySubject(subject string) string { return FromSubject("*", subject) }

// ErrNotFromAnIdentity means a command arrived on a subject that does not
// name one of this tenant's identities: not mapped by an import, another
// tenant's account, or a name the engine records for its own work.
var ErrNotFromAnIdentity = errors.New("auth: a command must come through one of this engine's identities' accounts")

// Actor returns the identity that sent a command to tenant's engine: the
// account that FromSubject put into the subject it arrived on, without the
// tenant prefix ("engine" for the engine's own account). The NATS server
// maps each account's import to its own name, and an account cannot
// publish the engine's subjects, so a client cannot choose it, whatever
// headers it writes. With a tenant, the account must carry its prefix; a
// name the engine records for its own work (timer, scanner, …) is refused,
// whatever the configuration let through.
func Actor(subject, tenant string) (string, error) {
	rest, ok := strings.CutPrefix(subject, fromPrefix)
	acc, cmd, found := strings.Cut(rest, ".")
	if !ok || !found || acc == "" || !strings.HasPrefix(cmd, "cmd.") {
		return "", ErrNotFromAnIdentity
	}
	if tenant != "" {
		if acc, ok = strings.CutPrefix(acc, tenant+"_"); !ok {
			return "", ErrNotFromAnIdentity
		}
	}
	if acc == EngineAccount {
		return string(Engine), nil
	}
	if reserved[acc] {
		return "", ErrNotFromAnIdentity
	}
	return acc, nil
}
