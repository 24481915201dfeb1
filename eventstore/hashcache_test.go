package eventstore

import "testing"

// TestHashCacheIsBoundedAndKeepsWhatIsUsed: the cache never holds more than
// hashCacheSize hashes, keeps the most recent ones, and keeps an old one
// that is still used.
func TestHashCacheIsBoundedAndKeepsWhatIsUsed(t *testing.T) {
	var c hashCache
	kept := HashOf([]byte("kept"))
	c.put(1, kept)
	for seq := Seq(2); seq <= 3*hashCacheSize; seq++ {
		c.put(seq, HashOf([]byte{byte(seq), byte(seq >> 8), byte(seq >> 16)}))
		if seq%1000 == 0 {
			if h, ok := c.get(1); !ok || h != kept {
				t.Fatalf("seq 1, used every 1000 puts, dropped at seq %d", seq)
			}
		}
		if n := len(c.cur) + len(c.old); n > hashCacheSize {
			t.Fatalf("%d hashes held after %d puts, at most %d", n, seq, hashCacheSize)
		}
	}
	last := Seq(3 * hashCacheSize)
	if h, ok := c.get(last); !ok || h != HashOf([]byte{byte(last), byte(last >> 8), byte(last >> 16)}) {
		t.Fatal("the last hash put is not held")
	}
	if _, ok := c.get(2); ok {
		t.Fatal("an old hash never used again is still held")
	}
	var none *hashCache
	none.put(1, kept)
	if _, ok := none.get(1); ok {
		t.Fatal("a nil cache remembered")
	}
}
