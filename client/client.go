// Package client is a small Go client for bankbook's NATS API. Its calls are
// typed by the endpoints of package api; error replies (micro's
// Nats-Service-Error-Code header and the {"error":{...}} body) come back as
// *api.Error values.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/bankbook/bankbook/api"
)

// Error is an error reply from bankbook.
type Error = api.Error

// Client talks to a bankbook engine over a NATS connection.
type Client struct {
	nc *nats.Conn
	r  *refusals // nil: refused requests end at their deadline
}

// New returns a client using nc.
func New(nc *nats.Conn) *Client { return &Client{nc: nc} }

// Reply is a raw reply.
type Reply struct {
	Data     []byte
	Header   nats.Header
	Replayed bool
}

// Do sends req to endpoint ep and decodes the reply. An error reply is
// returned as *api.Error, together with the raw reply. A request larger
// than the endpoint accepts (api.Info.MaxBodyBytes) is not sent: Do
// returns the 400 invalid_input the engine would answer.
func Do[Req, Rep any](ctx context.Context, c *Client, ep api.Endpoint[Req, Rep], req Req, header nats.Header) (Rep, Reply, error) {
	var rep Rep
	data, err := json.Marshal(req)
	if err != nil {
		return rep, Reply{}, err
	}
	if len(data) > ep.MaxBodyBytes {
		// The engine would refuse it, and above NATS's payload limit the
		// server would drop it with a less telling error: say it here.
		return rep, Reply{}, &api.Error{Status: 400, Code: api.CodeInvalidInput,
			Message: fmt.Sprintf("request body is larger than %d KiB (%d KiB): send less at once", ep.MaxBodyBytes>>10, len(data)>>10)}
	}
	raw, err := c.Call(ctx, ep.Subject, data, &rep, header)
	return rep, raw, err
}

// Call sends req (any JSON-encodable value, or []byte as is) to subject and
// decodes the reply into resp (if not nil). Prefer Do, which is typed by
// the endpoint; Call is for requests that are not, such as malformed ones.
func (c *Client) Call(ctx context.Context, subject string, req, resp any, header nats.Header) (Reply, error) {
	rep, err := c.Request(ctx, subject, req, header)
	if err != nil || resp == nil {
		return rep, err
	}
	if err := json.Unmarshal(rep.Data, resp); err != nil {
		return rep, fmt.Errorf("%s: decode reply: %w", subject, err)
	}
	return rep, nil
}

// Request sends body (any JSON-encodable value, or []byte as is) to subject
// with the given headers. An error reply is returned as *api.Error.
func (c *Client) Request(ctx context.Context, subject string, body any, header nats.Header) (Reply, error) {
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return Reply{}, err
		}
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	for k, v := range header {
		msg.Header[k] = v
	}
	var refused <-chan error
	if c.r != nil {
		var done func()
		refused, done = c.r.watch(subject)
		defer done()
	}
	resp, err := c.request(ctx, msg, refused)
	if err != nil {
		return Reply{}, fmt.Errorf("%s: %w", subject, err)
	}
	rep := Reply{Data: resp.Data, Header: resp.Header, Replayed: resp.Header.Get(api.HeaderIdempotencyReplayed) == "true"}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		e := api.ParseErrorBody(resp.Data)
		if e == nil {
			e = &api.Error{Code: resp.Header.Get(micro.ErrorHeader)}
		}
		e.Status, _ = strconv.Atoi(code)
		return rep, e
	}
	return rep, nil
}

// WithIdempotencyKey returns headers carrying key (nil when key is empty).
func WithIdempotencyKey(key string) nats.Header {
	if key == "" {
		return nil
	}
	return nats.Header{api.HeaderIdempotencyKey: []string{key}}
}
