package projections_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/projections"
)

// boltFile writes a bbolt file of about 1 MB at path: a read-model file
// with the registered projections, plus a bucket of filler records, so that
// its pages reach far into the file.
func boltFile(t *testing.T, path string) {
	t.Helper()
	s, err := projections.Open(path, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("filler"))
		if err != nil {
			return err
		}
		for i := range 4000 {
			if err := b.Put(fmt.Appendf(nil, "k%06d", i), bytes.Repeat([]byte{byte(i)}, 250)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A read-model file that is truncated, overwritten with garbage or not a
// bbolt file fails Open and OpenReadOnly with ErrDamaged naming the file and
// the fix — and does not crash the process (a truncated file used to end it
// with SIGBUS). Once moved aside, Open starts a new file.
func TestOpenDetectsDamagedFile(t *testing.T) {
	damage := []struct {
		name  string
		apply func(t *testing.T, path string)
	}{
		{"truncated to half", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to a page and a half", func(t *testing.T, path string) {
			if err := os.Truncate(path, int64(os.Getpagesize())*5/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage", func(t *testing.T, path string) {
			r := rand.New(rand.NewPCG(1, 2))
			junk := make([]byte, 1<<20)
			for i := range junk {
				junk[i] = byte(r.UintN(256))
			}
			if err := os.WriteFile(path, junk, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"text", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"data pages overwritten", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, _ := f.Stat()
			junk := bytes.Repeat([]byte{0xff}, int(info.Size())/2)
			// Keep the two meta pages: bbolt opens the file, and only
			// reading the data finds the damage.
			if _, err := f.WriteAt(junk, int64(os.Getpagesize())*2); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "readmodels.db")
			boltFile(t, path)
			d.apply(t, path)

			for _, open := range []struct {
				name string
				fn   func(string, *projections.Options) (*projections.Store, error)
			}{{"Open", projections.Open}, {"OpenReadOnly", projections.OpenReadOnly}} {
				s, err := open.fn(path, nil)
				if err == nil {
					_ = s.Close()
					t.Fatalf("%s of a damaged file succeeded", open.name)
				}
				var de *projections.DamagedError
				if !errors.Is(err, projections.ErrDamaged) || !errors.As(err, &de) {
					t.Fatalf("%s = %v, want ErrDamaged", open.name, err)
				}
				if de.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "rebuilds it from the log") {
					t.Errorf("%s error does not name the file and the fix: %v", open.name, err)
				}
			}

			aside, err := projections.MoveAside(path, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			if want := path + ".damaged-20260301T090000Z"; aside != want {
				t.Errorf("moved to %s, want %s", aside, want)
			}
			if _, err := os.Stat(aside); err != nil {
				t.Errorf("damaged file not kept: %v", err)
			}
			s, err := projections.Open(path, nil)
			if err != nil {
				t.Fatalf("open after moving aside: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A whole file passes the check, with its data, again and again.
func TestOpenAcceptsWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodels.db")
	boltFile(t, path)
	for range 2 {
		s, err := projections.Open(path, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := projections.OpenReadOnly(path, nil)
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	_ = s.Close()
}

// An empty file is a new one, not a damaged one (replay creates its target
// before opening it); opened only to be read, it holds no read models,
// which is ErrDamaged naming it (not an error of bbolt writing to a
// read-only file).
func TestOpenAcceptsEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodels.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.OpenReadOnly(path, nil); !errors.Is(err, projections.ErrDamaged) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("open an empty file read-only: %v, want ErrDamaged (empty)", err)
	}
	s, err := projections.Open(path, nil)
	if err != nil {
		t.Fatalf("open an empty file: %v", err)
	}
	_ = s.Close()
}

// MoveAside never overwrites an earlier damaged copy.
func TestMoveAsideKeepsEarlierCopies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "readmodels.db")
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var names []string
	for i := range 2 {
		if err := os.WriteFile(path, []byte{byte(i)}, 0o600); err != nil {
			t.Fatal(err)
		}
		aside, err := projections.MoveAside(path, at)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, aside)
	}
	if names[0] == names[1] {
		t.Fatalf("both copies moved to %s", names[0])
	}
	for i, n := range names {
		if b, err := os.ReadFile(n); err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Errorf("%s: %v %v", n, b, err)
		}
	}
}
