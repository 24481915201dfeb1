package auth

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/nats-io/nats.go"
)

// RequestInfoHeader is the header the NATS server sets on a request that
// crosses a service import with shared requester information. A client
// cannot choose its value: the server replaces whatever the client sent.
const RequestInfoHeader = "Nats-Request-Info"

// requestInfo is the part of the server's ClientInfo that names the
// requester.
type requestInfo struct {
	Account string `json:"acc"`
	User    string `json:"user"`
}

// ErrRequestInfo means a request does not carry exactly one
// Nats-Request-Info header, spelled as the NATS server spells it, that names
// an account. The server adds that header to every request that crosses a
// service import, so every client's command has one, and it removes any
// the client wrote in that spelling. A request without it, or with another
// spelling, or with two, is a client hiding the server's header or
// smuggling its own past it, with a hand-written header block: a line
// ended by a bare LF, or a blank line inside the block, after which
// clients stop reading the block while the server appends its header
// behind it. Such a request is refused, not attributed.
var ErrRequestInfo = errors.New("auth: a command must carry exactly the Nats-Request-Info header the NATS server sets")

// Actor returns the identity that sent a command to tenant's engine, as the
// NATS server asserts it: the name of the requester's account, without the
// tenant prefix. Commands come from client identities, through the
// service imports of their accounts; the engine's own account sends none
// over NATS, so a request without the server's header is refused
// (ErrRequestInfo), never taken for the engine's.
func Actor(h nats.Header, tenant string) (string, error) {
	var values []string
	for k, v := range h {
		if !strings.EqualFold(strings.TrimSpace(k), RequestInfoHeader) {
			continue
		}
		if k != RequestInfoHeader {
			return "", ErrRequestInfo // the server writes and removes only its spelling
		}
		values = append(values, v...)
	}
	if len(values) != 1 {
		return "", ErrRequestInfo
	}
	var ri requestInfo
	if err := json.Unmarshal([]byte(values[0]), &ri); err != nil || ri.Account == "" {
		return "", ErrRequestInfo
	}
	acc := ri.Account
	if tenant != "" {
		acc = strings.TrimPrefix(acc, tenant+"_")
	}
	if acc == EngineAccount {
		return string(Engine), nil
	}
	return acc, nil
}
