package projections

import (
	"bytes"
	"encoding/hex"

	"go.etcd.io/bbolt"
)

// newestFirst pages backwards through the keys of b under prefix: from the
// last one, or from the one before prefix+after when after is given (the
// rest of the key a previous page ended on). load reads the item from a
// key and its value (an index's value may be empty: the key names the
// item) and says whether it belongs on the page (a filter may skip keys).
// It returns up to limit items (never nil) and the cursor of the next page:
// the hex of the last item's key without the prefix, or "" when no further
// key would load an item. A page that bySize says is an API list's also
// ends before the item that would take its encoding past maxPageBytes, so
// that the reply fits a NATS message however long the items' texts.
func newestFirst[T any](b *bbolt.Bucket, prefix, after []byte, limit int, bySize bool, load func(k, v []byte) (T, bool, error)) ([]T, string, error) {
	out := []T{}
	c := b.Cursor()
	var k []byte
	if len(after) > 0 {
		k, _ = c.Seek(append(bytes.Clone(prefix), after...))
	} else if end := prefixEnd(prefix); end != nil {
		k, _ = c.Seek(end)
	}
	var v []byte
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	var (
		last []byte
		size pageBytes
	)
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		item, ok, err := load(k, v)
		if err != nil {
			return nil, "", err
		}
		if !ok {
			continue
		}
		if len(out) == limit {
			return out, hex.EncodeToString(last), nil
		}
		if bySize {
			if fits, err := size.fitsItem(len(out), item); err != nil {
				return nil, "", err
			} else if !fits {
				return out, hex.EncodeToString(last), nil
			}
		}
		out = append(out, item)
		last = bytes.Clone(k[len(prefix):])
	}
	return out, "", nil
}

// prefixEnd is the smallest key greater than every key with prefix, nil if
// there is none (the prefix is all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// cutLast splits a search-index key at its last NUL: the rest of the key
// and the ID that ends it.
func cutLast(k []byte) (rest, id []byte) {
	i := bytes.LastIndexByte(k, 0)
	if i < 0 {
		return nil, k
	}
	return k[:i], k[i+1:]
}
