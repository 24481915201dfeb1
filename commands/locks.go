package commands

import (
	"context"
	"sync"
)

// turns lets the commands of one instance on one aggregate take turns: a
// command waits (in arrival order, or until its context ends) while another
// runs on the same aggregate ID, so they do not conflict with each other.
// Commands on different aggregates never wait for each other. It holds an
// entry only while some command runs or waits on that ID.
type turns struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	ch   chan struct{} // holds a token while a command runs
	refs int           // commands running or waiting
}

// take waits for id's turn; release ends it.
func (t *turns) take(ctx context.Context, id string) (release func(), err error) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]*turn{}
	}
	tn := t.m[id]
	if tn == nil {
		tn = &turn{ch: make(chan struct{}, 1)}
		t.m[id] = tn
	}
	tn.refs++
	t.mu.Unlock()
	select {
	case tn.ch <- struct{}{}:
		return func() { <-tn.ch; t.leave(id, tn) }, nil
	case <-ctx.Done():
		t.leave(id, tn)
		return nil, ctx.Err()
	}
}

func (t *turns) leave(id string, tn *turn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tn.refs--; tn.refs == 0 {
		delete(t.m, id)
	}
}
