package eventstore

import "sync"

// hashCacheSize bounds how many message hashes a Store remembers.
const hashCacheSize = 100_000

// hashCache remembers the hashes of messages a Store appended or read, by
// sequence, so that Append finds the hash of the commit it chains to
// (usually the one the command just loaded) without reading it again. The
// stream denies delete and purge, so a sequence's hash never changes. It
// holds at most hashCacheSize entries in two generations: when the newer
// one is full, the older one is dropped, so what was used recently stays.
// The zero value is ready; a nil *hashCache remembers nothing.
type hashCache struct {
	mu       sync.Mutex
	cur, old map[Seq]Hash
}

func (c *hashCache) get(seq Seq) (Hash, bool) {
	if c == nil {
		return Hash{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.cur[seq]; ok {
		return h, true
	}
	h, ok := c.old[seq]
	if ok {
		c.putLocked(seq, h)
	}
	return h, ok
}

func (c *hashCache) put(seq Seq, h Hash) {
	if c == nil || seq == 0 || h == (Hash{}) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(seq, h)
}

func (c *hashCache) putLocked(seq Seq, h Hash) {
	if c.cur == nil {
		c.cur = map[Seq]Hash{}
	}
	if len(c.cur) >= hashCacheSize/2 {
		c.old, c.cur = c.cur, make(map[Seq]Hash, hashCacheSize/8)
	}
	c.cur[seq] = h
}
