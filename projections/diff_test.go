package projections_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// TestDiffNamesTheFirstDifferenceOfEachBucket: two files of the same
// projections differ in a nested bucket's value, in a key only one holds,
// and in a key that is a bucket in one and a value in the other; Diff
// names the first place of each bucket, in key order, and nothing for a
// bucket that is equal; max bounds how many.
func TestDiffNamesTheFirstDifferenceOfEachBucket(t *testing.T) {
	registry := []projections.Projection{{Name: "p", Version: 1, Buckets: []string{"pa", "pb", "pc", "pd"},
		Apply: func([]*bbolt.Bucket, eventstore.Commit, eventstore.Envelope, domain.Event) error { return nil }}}
	dir := t.TempDir()
	write := func(name string, fill func(tx *bbolt.Tx) error) string {
		t.Helper()
		return filledFile(t, filepath.Join(dir, name), registry, fill)
	}
	common := func(tx *bbolt.Tx) error {
		nest, err := tx.Bucket([]byte("pa")).CreateBucket([]byte("nest"))
		if err != nil {
			return err
		}
		for _, kv := range [][2]string{{"k1", "v1"}, {"k3", "v3"}} {
			if err := nest.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("pd")).Put([]byte("same"), []byte("x"))
	}
	a := write("a.db", func(tx *bbolt.Tx) error {
		if err := common(tx); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("pa")).Bucket([]byte("nest")).Put([]byte("k3"), []byte("changed")); err != nil {
			return err
		}
		if _, err := tx.Bucket([]byte("pc")).CreateBucket([]byte("c")); err != nil {
			return err
		}
		return tx.Bucket([]byte("pb")).Put([]byte("only-a"), []byte("1"))
	})
	b := write("b.db", func(tx *bbolt.Tx) error {
		if err := common(tx); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("pb")).Put([]byte("z-later"), []byte("2")); err != nil {
			return err
		}
		return tx.Bucket([]byte("pc")).Put([]byte("c"), []byte("value"))
	})
	open := func(path string) *projections.Store {
		t.Helper()
		st, err := projections.OpenReadOnly(path, &projections.Options{Projections: registry})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	sa, sb := open(a), open(b)
	diffs, err := projections.Diff(sa, sb, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range diffs {
		got = append(got, d.String())
	}
	want := []string{
		`projection p, bucket pa/"nest", key "k3": "changed" against "v3"`,
		`projection p, bucket pb, key "only-a": "1" against (absent)`,
		`projection p, bucket pc, key "c": "(bucket)" against "value"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d, err := projections.Diff(sa, sb, 1); err != nil || len(d) != 1 {
		t.Fatalf("max 1: %v %v", d, err)
	}
	if d, err := projections.Diff(sa, sa, 10); err != nil || len(d) != 0 {
		t.Fatalf("a file against itself: %v %v", fmt.Sprint(d), err)
	}
}

// TestDiffProjectionsComparesTheNamedOnes: two files that differ in two
// projections; DiffProjections names the differences of the projections
// it is given only, and Diff those of all of them.
func TestDiffProjectionsComparesTheNamedOnes(t *testing.T) {
	none := func([]*bbolt.Bucket, eventstore.Commit, eventstore.Envelope, domain.Event) error { return nil }
	registry := []projections.Projection{{Name: "p", Version: 1, Buckets: []string{"pa"}, Apply: none}, {Name: "q", Version: 1, Buckets: []string{"qa"}, Apply: none}}
	dir := t.TempDir()
	file := func(name, value string) *projections.Store {
		t.Helper()
		path := filledFile(t, filepath.Join(dir, name), registry, func(tx *bbolt.Tx) error {
			for _, b := range []string{"pa", "qa"} {
				if err := tx.Bucket([]byte(b)).Put([]byte("k"), []byte(value)); err != nil {
					return err
				}
			}
			return nil
		})
		st, err := projections.OpenReadOnly(path, &projections.Options{Projections: registry})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	a, b := file("a.db", "1"), file("b.db", "2")
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{nil, `projection p, bucket pa, key "k": "1" against "2"` + "\n" + `projection q, bucket qa, key "k": "1" against "2"`},
		{[]string{"q"}, `projection q, bucket qa, key "k": "1" against "2"`},
		{[]string{"none"}, ""},
	} {
		diffs, err := projections.DiffProjections(a, b, tt.names, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range diffs {
			got = append(got, d.String())
		}
		if strings.Join(got, "\n") != tt.want {
			t.Fatalf("projections %q: differences:\n%s\nwant:\n%s", tt.names, strings.Join(got, "\n"), tt.want)
		}
	}
}

// TestDifferenceShowsWhereLongValuesDiffer: two long values that share
// their first 100 bytes are quoted from a little before the byte where
// they differ (at a character's start), so the difference shows; short
// values and a difference near the start are quoted from the start.
func TestDifferenceShowsWhereLongValuesDiffer(t *testing.T) {
	head := `{"buyer_name":"박민수","pad":"` + strings.Repeat("x", 100-len(`{"buyer_name":"박민수","pad":"`)) + `"`
	a := head + `,"paid_amount":7000,"status":"paid","tail":"` + strings.Repeat("y", 80) + `"}`
	b := head + `,"paid_amount":7001,"status":"paid","tail":"` + strings.Repeat("y", 80) + `"}`
	s := projections.Difference{Projection: "orders", Bucket: "orders", Key: []byte("o-1"), A: []byte(a), B: []byte(b)}.String()
	for _, want := range []string{`"paid_amount\":7000`, `"paid_amount\":7001`} {
		if !strings.Contains(s, want[1:]) {
			t.Errorf("%s\nshows neither side's paid_amount (%s)", s, want[1:])
		}
	}
	if strings.Contains(s, "buyer_name") || !strings.HasPrefix(s[strings.Index(s, ": ")+2:], "…") {
		t.Errorf("%s\nwant both values quoted from near the difference, marked cut", s)
	}
	short := projections.Difference{Bucket: "b", Key: []byte("k"), A: []byte(`{"a":1}`), B: []byte(`{"a":2}`)}.String()
	if !strings.HasSuffix(short, `key "k": "{\"a\":1}" against "{\"a\":2}"`) {
		t.Errorf("short values: %s", short)
	}
	early := projections.Difference{Bucket: "b", Key: []byte("k"), A: []byte("A" + strings.Repeat("z", 200)), B: []byte("B" + strings.Repeat("z", 200))}.String()
	if !strings.Contains(early, `: "Az`) || !strings.Contains(early, `against "Bz`) || strings.Count(early, "…") != 2 {
		t.Errorf("a difference at the start: %s", early)
	}
	// A multi-byte character just before the window's start is not cut.
	multi := strings.Repeat("가", 40) // 120 bytes
	m := projections.Difference{Bucket: "b", Key: []byte("k"), A: []byte(multi + "1"), B: []byte(multi + "2")}.String()
	if strings.Contains(m, `\x`) {
		t.Errorf("a window cut inside a character: %s", m)
	}
	// Nor is one at the window's end.
	e := projections.Difference{Bucket: "b", Key: []byte("k"), A: []byte("x" + multi), B: []byte("y" + multi)}.String()
	if strings.Contains(e, `\x`) || strings.Count(e, "…") != 2 {
		t.Errorf("a window ending inside a character: %s", e)
	}
}

// filledFile creates a read-model file at path with the projections of
// registry, then changes it with fill, as bbolt, outside the projections.
func filledFile(t *testing.T, path string, registry []projections.Projection, fill func(tx *bbolt.Tx) error) string {
	t.Helper()
	st, err := projections.Open(path, &projections.Options{Projections: registry})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fill); err != nil {
		t.Fatal(err)
	}
	return path
}
