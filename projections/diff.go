package projections

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"go.etcd.io/bbolt"
)

// Difference is one place where two read-model files differ: a key of a
// projection's bucket (Path: the nested buckets under Bucket, outermost
// first) whose value is A in one file and B in the other. A nil A or B is
// a key the file does not hold; a nested bucket's value reads "(bucket)".
type Difference struct {
	Projection string
	Bucket     string
	Path       []string
	Key        []byte
	A, B       []byte
}

// String names the place and quotes both values, each cut to 96 bytes
// around the first byte where they differ (a "…" marks a cut), so that
// long values that share a start still show what differs.
func (d Difference) String() string {
	where := d.Bucket
	for _, p := range d.Path {
		where += "/" + strconv.Quote(p)
	}
	from := 0
	if d.A != nil && d.B != nil {
		from = windowStart(d.A, commonPrefix(d.A, d.B))
	}
	return fmt.Sprintf("projection %s, bucket %s, key %s: %s against %s", d.Projection, where, strconv.Quote(string(d.Key)), show(d.A, from), show(d.B, from))
}

// shownBytes is how much of a value a Difference quotes, and shownBefore
// how much of that comes before the first differing byte.
const shownBytes, shownBefore = 96, 32

// commonPrefix is the length of the bytes a and b start with alike.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// windowStart is where to start quoting a value whose first difference is
// at diff: shownBefore bytes earlier, moved back to the start of a UTF-8
// character (the bytes before diff are both values' alike), or 0 when a
// quote from the start shows the difference with shownBefore bytes after it.
func windowStart(v []byte, diff int) int {
	if diff < shownBytes-shownBefore {
		return 0
	}
	from := min(diff, len(v)) - shownBefore
	for from > 0 && !utf8.RuneStart(v[from]) {
		from--
	}
	return from
}

// show quotes v from byte from on, at most shownBytes of it, ending on a
// character boundary.
func show(v []byte, from int) string {
	if v == nil {
		return "(absent)"
	}
	from = min(from, len(v))
	out, cut := v[from:], ""
	if len(out) > shownBytes {
		end := shownBytes
		for end > 0 && !utf8.RuneStart(out[end]) {
			end-- // cut before a character, not inside it
		}
		out, cut = out[:end], "…"
	}
	if from > 0 {
		return "…" + strconv.Quote(string(out)) + cut
	}
	return strconv.Quote(string(out)) + cut
}

// nestedBucket is the value a Difference gives a nested bucket.
var nestedBucket = []byte("(bucket)")

// Diff compares the buckets of a's projections in a and b (files of the
// same projections) key by key, in key order, and returns the first
// difference of each bucket that has one, at most max in all. Two files
// with the same content hash have none.
func Diff(a, b *Store, max int) ([]Difference, error) {
	return DiffProjections(a, b, nil, max)
}

// DiffProjections is Diff over the buckets of the projections of a named
// in projections alone (nil: all of them; a name a does not register
// compares nothing). It compares content only, not checkpoints: files
// whose projections stand at different checkpoints are compared one
// checkpoint at a time, each with a replay up to it.
func DiffProjections(a, b *Store, projections []string, max int) ([]Difference, error) {
	var out []Difference
	err := a.view(func(ta *bbolt.Tx) error {
		return b.view(func(tb *bbolt.Tx) error {
			for _, p := range a.projections {
				if projections != nil && !slices.Contains(projections, p.Name) {
					continue
				}
				names := slices.Clone(p.Buckets)
				slices.Sort(names)
				for _, name := range names {
					if len(out) >= max {
						return nil
					}
					ba, bb := ta.Bucket([]byte(name)), tb.Bucket([]byte(name))
					if ba == nil || bb == nil {
						return fmt.Errorf("%w: bucket %s missing", ErrStale, name)
					}
					if d, ok := firstDifference(ba, bb, nil); ok {
						d.Projection, d.Bucket = p.Name, name
						out = append(out, d)
					}
				}
			}
			return nil
		})
	})
	return out, err
}

// firstDifference walks a and b in key order, nested buckets included, and
// returns the first key they differ at.
func firstDifference(a, b *bbolt.Bucket, path []string) (Difference, bool) {
	ca, cb := a.Cursor(), b.Cursor()
	ka, va := ca.First()
	kb, vb := cb.First()
	for ka != nil || kb != nil {
		switch c := compareKeys(ka, kb); {
		case c < 0:
			return Difference{Path: path, Key: bytes.Clone(ka), A: valueOf(va)}, true
		case c > 0:
			return Difference{Path: path, Key: bytes.Clone(kb), B: valueOf(vb)}, true
		}
		switch {
		case va == nil && vb == nil: // both nested buckets
			if d, ok := firstDifference(a.Bucket(ka), b.Bucket(kb), append(slices.Clone(path), string(ka))); ok {
				return d, true
			}
		case va == nil || vb == nil || !bytes.Equal(va, vb):
			return Difference{Path: path, Key: bytes.Clone(ka), A: valueOf(va), B: valueOf(vb)}, true
		}
		ka, va = ca.Next()
		kb, vb = cb.Next()
	}
	return Difference{}, false
}

// compareKeys orders keys as bbolt does, a nil key (the end) last.
func compareKeys(a, b []byte) int {
	switch {
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// valueOf is a cursor's value as a Difference shows it: nil for a nested
// bucket reads as nestedBucket.
func valueOf(v []byte) []byte {
	if v == nil {
		return nestedBucket
	}
	return bytes.Clone(v)
}
