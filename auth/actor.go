package auth

import (
	"encoding/json"
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

// Actor returns the identity that sent a request to tenant's engine, as
// the NATS server asserts it: the name of the requester's account, without
// the tenant prefix. A request without the header came from inside the
// engine account, so from an engine identity: Actor returns "engine".
func Actor(h nats.Header, tenant string) string {
	raw := h.Get(RequestInfoHeader)
	if raw == "" {
		return string(Engine)
	}
	var ri requestInfo
	if err := json.Unmarshal([]byte(raw), &ri); err != nil || ri.Account == "" {
		return "unknown"
	}
	acc := ri.Account
	if tenant != "" {
		acc = strings.TrimPrefix(acc, tenant+"_")
	}
	if acc == EngineAccount {
		return string(Engine)
	}
	return acc
}
