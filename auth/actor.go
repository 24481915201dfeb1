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

// ErrRequestInfo means a request carries more than one Nats-Request-Info
// header, or one that does not name an account: a client tried to smuggle
// its own past the server's (a header line ended by a bare LF is not seen,
// and so not replaced, by the server, but is read by clients). Such a
// request is refused, not attributed.
var ErrRequestInfo = errors.New("auth: a request may carry only the Nats-Request-Info header the NATS server sets")

// Actor returns the identity that sent a request to tenant's engine, as
// the NATS server asserts it: the name of the requester's account, without
// the tenant prefix. A request without the header came from inside the
// engine account, so from an engine identity: Actor returns "engine".
func Actor(h nats.Header, tenant string) (string, error) {
	var values []string
	for k, v := range h {
		if strings.EqualFold(k, RequestInfoHeader) {
			values = append(values, v...)
		}
	}
	switch len(values) {
	case 0:
		return string(Engine), nil
	case 1:
	default:
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
