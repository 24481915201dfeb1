package projections_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// copyFile copies what the file at from holds now (the kernel's view, as a
// process that dies leaves it) to to.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func markerOf(t *testing.T, path string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path + ".unsynced")
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b)), true
}

// An unsynced read-model file (durability fast) is marked with the boot it
// was written in. What a process exit leaves is used as it is; after the
// machine restarted it is damaged (writes may never have reached the disk)
// and is moved aside, marker and all, so that a new file is rebuilt. A clean
// Close syncs the file and removes the marker.
func TestUnsyncedFileSurvivesAProcessExitNotAMachineRestart(t *testing.T) {
	f := newFixture(t)
	projections.SetBootID(t, "boot-1")
	path := tempPath(t, "readmodels.db")
	st, err := projections.Open(path, &projections.Options{Unsynced: true})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Unsynced() {
		t.Fatal("Unsynced() = false with a boot ID")
	}
	if id, ok := markerOf(t, path); !ok || id != "boot-1" {
		t.Fatalf("marker %q (present %v), want boot-1 before the first write", id, ok)
	}
	if err := st.Apply([]eventstore.Commit{f.submit(t, "ord-1", 1)}); err != nil {
		t.Fatal(err)
	}

	// The process dies: the file and its marker stay as the kernel has them.
	exited := filepath.Join(t.TempDir(), "readmodels.db")
	copyFile(t, path, exited)
	copyFile(t, path+".unsynced", exited+".unsynced")
	again, err := projections.Open(exited, nil) // restarted, synced: the marker goes
	if err != nil {
		t.Fatalf("open after a process exit: %v", err)
	}
	if v := order(t, again, "ord-1"); v.OrderID != "ord-1" {
		t.Fatalf("order after a process exit: %+v", v)
	}
	if _, ok := markerOf(t, exited); ok || again.Unsynced() {
		t.Fatalf("a synced reopen keeps the marker (%v) or runs unsynced (%v)", ok, again.Unsynced())
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}

	// The machine restarts instead.
	crashed := filepath.Join(t.TempDir(), "readmodels.db")
	copyFile(t, path, crashed)
	copyFile(t, path+".unsynced", crashed+".unsynced")
	projections.SetBootID(t, "boot-2")
	for name, open := range map[string]func(string, *projections.Options) (*projections.Store, error){
		"Open": projections.Open, "OpenReadOnly": projections.OpenReadOnly,
	} {
		_, err := open(crashed, &projections.Options{Unsynced: true})
		var de *projections.DamagedError
		if !errors.As(err, &de) || !errors.Is(err, projections.ErrDamaged) || !strings.Contains(de.Reason, "restarted") || de.Path != crashed {
			t.Fatalf("%s after a machine restart: %v, want ErrDamaged naming the restart", name, err)
		}
	}
	aside, err := projections.MoveAside(crashed, t0)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := markerOf(t, aside); !ok || id != "boot-1" {
		t.Fatalf("the marker did not move aside with its file: %q %v", id, ok)
	}
	fresh, err := projections.Open(crashed, &projections.Options{Unsynced: true})
	if err != nil {
		t.Fatalf("open a new file after moving aside: %v", err)
	}
	if cp := checkpoint(t, fresh); cp != 0 {
		t.Fatalf("new file at checkpoint %d", cp)
	}
	if id, _ := markerOf(t, crashed); id != "boot-2" {
		t.Fatalf("new file's marker %q, want boot-2", id)
	}
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}

	// A clean Close leaves no marker: any later boot trusts the file.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, crashed} {
		if _, ok := markerOf(t, p); ok {
			t.Fatalf("%s: marker left after Close", p)
		}
	}
	projections.SetBootID(t, "boot-3")
	st = openStore(t, path)
	if v := order(t, st, "ord-1"); v.OrderID != "ord-1" {
		t.Fatalf("order after a clean close and a restart: %+v", v)
	}
}

// Without a boot ID a restart cannot be told from a process exit: the file
// is synced on every batch, and no marker is written. A marker whose file
// is gone is removed by the Open that starts the new file.
func TestUnsyncedNeedsABootID(t *testing.T) {
	projections.SetBootID(t, "")
	path := tempPath(t, "readmodels.db")
	if err := os.WriteFile(path+".unsynced", []byte("boot-0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := projections.Open(path, &projections.Options{Unsynced: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Unsynced() {
		t.Fatal("Unsynced() = true without a boot ID")
	}
	if id, ok := markerOf(t, path); ok {
		t.Fatalf("marker %q left", id)
	}
}

// Close waits for a write transaction that is running, and only then syncs
// the file and removes the marker: no unsynced write lands after the sync.
// A write that comes after Close is refused with ErrClosed.
func TestUnsyncedCloseWaitsForARunningWrite(t *testing.T) {
	f := newFixture(t)
	projections.SetBootID(t, "boot-1")
	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	blocking := projections.Projection{Name: "blocking", Version: 1, Buckets: []string{"blocking"},
		Apply: func(b []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, _ domain.Event) error {
			once.Do(func() { close(inside) })
			<-release
			return b[0].Put([]byte("k"), []byte("v"))
		}}
	path := tempPath(t, "readmodels.db")
	st, err := projections.Open(path, &projections.Options{Unsynced: true, Projections: []projections.Projection{blocking}})
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	go func() { applied <- st.Apply([]eventstore.Commit{f.submit(t, "ord-1", 1)}) }()
	<-inside
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a write transaction ran", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, ok := markerOf(t, path); !ok {
		t.Fatal("the marker went while a write transaction ran")
	}
	close(release)
	if err := <-applied; err != nil {
		t.Fatalf("the running write: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, ok := markerOf(t, path); ok {
		t.Fatal("marker left after Close")
	}
	if err := st.Apply([]eventstore.Commit{f.submit(t, "ord-2", 2)}); !errors.Is(err, projections.ErrClosed) {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
}
