package projections_test

import (
	"encoding/json"
	"testing"

	"go.etcd.io/bbolt"
)

// tamper overwrites one value of a closed read-model file behind the Store's
// back, to show that Hash sees content and not only the checkpoint.
func tamper(t testing.TB, path, bucket, key string, value any) {
	t.Helper()
	raw, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), raw) })
	if err != nil {
		t.Fatal(err)
	}
}
