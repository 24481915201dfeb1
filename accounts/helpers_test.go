package accounts_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/internal/testenv"
)

// start starts an embedded JetStream server and connects to it.
func start(t *testing.T) (*testenv.Server, jetstream.JetStream) {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	// Tests here delete the directory's bucket, the account's only stream,
	// and open it again.
	testenv.KeepStreamsDir(t, js)
	return srv, js
}

// open opens a Directory on js.
func open(t *testing.T, js jetstream.JetStream, cfg accounts.Config) *accounts.Directory {
	t.Helper()
	d, err := accounts.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

// rawKV binds the directory's bucket directly, to plant entries.
func rawKV(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), accounts.DefaultBucket)
	if err != nil {
		t.Fatalf("bind bucket: %v", err)
	}
	return kv
}

// allocate requires Allocate to succeed.
func allocate(t testing.TB, d *accounts.Directory, link string) string {
	t.Helper()
	n, err := d.Allocate(t.Context(), link)
	if err != nil {
		t.Fatalf("Allocate(%s): %v", link, err)
	}
	return n
}

// requireLookup requires number to be claimed for link.
func requireLookup(t testing.TB, d *accounts.Directory, number, link string) {
	t.Helper()
	got, ok, err := d.Lookup(t.Context(), number)
	if err != nil || !ok || got != link {
		t.Fatalf("Lookup(%s) = %q, %v, %v; want %q", number, got, ok, err, link)
	}
}

// requireUnknown requires number to be claimed for nobody.
func requireUnknown(t testing.TB, d *accounts.Directory, number string) {
	t.Helper()
	got, ok, err := d.Lookup(t.Context(), number)
	if err != nil || ok {
		t.Fatalf("Lookup(%s) = %q, %v, %v; want not found", number, got, ok, err)
	}
}

// requireNumberOf requires link's number to be number.
func requireNumberOf(t testing.TB, d *accounts.Directory, link, number string) {
	t.Helper()
	got, ok, err := d.NumberOf(t.Context(), link)
	if err != nil || !ok || got != number {
		t.Fatalf("NumberOf(%s) = %q, %v, %v; want %q", link, got, ok, err, number)
	}
}

// linkID is a link ID shaped like domain.LinkID's.
func linkID(i int) string { return fmt.Sprintf("lnk_%024x", i) }
