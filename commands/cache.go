package commands

import (
	"container/list"
	"sync"

	"github.com/bankbook/bankbook/eventstore"
)

// snapshot is an aggregate's state as of one of its commits.
type snapshot[S any] struct {
	state    S
	seq      eventstore.Seq // the commit's stream sequence; 0: no commits
	version  int            // events applied
	commitID string         // the commit's ID
	// unsaved counts the commits applied since the state was last stored
	// as, or loaded from, a stored snapshot (Config.Snapshots).
	unsaved int
}

// lru is a bounded, least-recently-used cache of snapshots by aggregate ID.
// States are values: aggregates' Apply returns a new state and never
// mutates the one it was given, so a cached state is never shared mutably.
type lru[S any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type lruEntry[S any] struct {
	id   string
	snap snapshot[S]
}

func newLRU[S any](max int) *lru[S] {
	return &lru[S]{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *lru[S]) get(id string) (snapshot[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return snapshot[S]{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry[S]).snap, true
}

// put stores snap unless the cache already holds a later one for id.
func (c *lru[S]) put(id string, snap snapshot[S]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		e := el.Value.(*lruEntry[S])
		if snap.seq > e.snap.seq {
			e.snap = snap
		}
		c.order.MoveToFront(el)
		return
	}
	c.items[id] = c.order.PushFront(&lruEntry[S]{id: id, snap: snap})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry[S]).id)
	}
}
