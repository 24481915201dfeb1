package client

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
)

// Connect connects to url with opts and returns a Client whose requests end
// at once, with a 403 forbidden error, when the NATS server refuses them for
// lack of permission (the server tells only the connection, asynchronously;
// a plain request would wait for its deadline). An ErrorHandler in opts
// still sees every error.
func Connect(url string, opts ...nats.Option) (*Client, error) {
	r := &refusals{waiting: map[string]map[chan error]struct{}{}}
	var user nats.ErrHandler
	probe := &nats.Options{}
	for _, o := range opts {
		if err := o(probe); err == nil && probe.AsyncErrorCB != nil {
			user = probe.AsyncErrorCB
		}
	}
	opts = append(opts, nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		r.handle(err)
		if user != nil {
			user(nc, sub, err)
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{nc: nc, r: r}, nil
}

// Conn is the client's connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close closes the connection.
func (c *Client) Close() { c.nc.Close() }

func (c *Client) request(ctx context.Context, msg *nats.Msg, refused <-chan error) (*nats.Msg, error) {
	if refused == nil {
		return c.nc.RequestMsgWithContext(ctx, msg)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		m   *nats.Msg
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := c.nc.RequestMsgWithContext(ctx, msg)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case err := <-refused:
		return nil, err
	}
}

// refusals hands the server's permission violations to the requests
// waiting on the refused subjects.
type refusals struct {
	mu      sync.Mutex
	waiting map[string]map[chan error]struct{}
}

func (r *refusals) watch(subject string) (<-chan error, func()) {
	ch := make(chan error, 1)
	r.mu.Lock()
	if r.waiting[subject] == nil {
		r.waiting[subject] = map[chan error]struct{}{}
	}
	r.waiting[subject][ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.waiting[subject], ch)
		if len(r.waiting[subject]) == 0 {
			delete(r.waiting, subject)
		}
		r.mu.Unlock()
	}
}

// handle reads `Permissions Violation for Publish to "subject"` and fails
// the requests waiting on that subject.
func (r *refusals) handle(err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	msg := err.Error()
	const marker = "Publish to "
	i := strings.Index(msg, marker)
	if i < 0 {
		return
	}
	subject := strings.Trim(strings.TrimSpace(msg[i+len(marker):]), `"'`)
	if j := strings.IndexAny(subject, `"' `); j >= 0 {
		subject = subject[:j]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.waiting[subject] {
		select {
		case ch <- &api.Error{Status: 403, Code: api.CodeForbidden, Message: "refused by the NATS server: this identity may not send " + subject}:
		default:
		}
	}
}
