// Package client is a small Go client for bankbook's NATS API. It sends JSON
// requests and turns micro error replies (Nats-Service-Error-Code and the
// {"error":{...}} body) into *Error values.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Error is an error reply from bankbook.
type Error struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Client talks to a bankbook engine over a NATS connection.
type Client struct {
	nc *nats.Conn
}

// New returns a client using nc.
func New(nc *nats.Conn) *Client { return &Client{nc: nc} }

// Reply is a raw reply.
type Reply struct {
	Data     []byte
	Header   nats.Header
	Replayed bool
}

// Request sends body (any JSON-encodable value, or []byte as is) to subject
// with the given headers. An error reply is returned as *Error.
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
	resp, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return Reply{}, fmt.Errorf("%s: %w", subject, err)
	}
	rep := Reply{Data: resp.Data, Header: resp.Header, Replayed: resp.Header.Get("Idempotency-Replayed") == "true"}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		e := &Error{Code: resp.Header.Get(micro.ErrorHeader)}
		e.Status, _ = strconv.Atoi(code)
		var body struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(resp.Data, &body) == nil && body.Error != nil {
			body.Error.Status = e.Status
			e = body.Error
		}
		return rep, e
	}
	return rep, nil
}

// Call sends req to subject and decodes the reply into resp (if not nil).
func (c *Client) Call(ctx context.Context, subject string, req, resp any, header nats.Header) (Reply, error) {
	rep, err := c.Request(ctx, subject, req, header)
	if err != nil {
		return rep, err
	}
	if resp != nil {
		if err := json.Unmarshal(rep.Data, resp); err != nil {
			return rep, fmt.Errorf("%s: decode reply: %w", subject, err)
		}
	}
	return rep, nil
}

// WithIdempotencyKey returns headers carrying key (nil when key is empty).
func WithIdempotencyKey(key string) nats.Header {
	if key == "" {
		return nil
	}
	return nats.Header{"Idempotency-Key": []string{key}}
}
