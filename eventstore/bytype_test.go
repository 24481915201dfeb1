package eventstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
)

// ReadType reads the commits of one aggregate type, in stream order, and
// stops at the last one there was: other types' commits before and after
// are passed over.
func TestReadType(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	read := func() []string {
		var got []string
		err := s.ReadType(ctx, "link", func(c eventstore.Commit) error {
			got = append(got, fmt.Sprintf("%s/%d", c.AggregateID, c.Seq))
			return nil
		})
		if err != nil {
			t.Fatalf("ReadType: %v", err)
		}
		return got
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("ReadType of an empty stream = %v", got)
	}
	var want []string
	for i := range 6 {
		ref := eventstore.Ref{Type: []string{"order", "link"}[i%2], ID: fmt.Sprint("a", i%4)}
		c, err := storetest.AppendOne(ctx, s, ref, fmt.Sprint(i), storetest.Event("t", i))
		if err != nil {
			t.Fatal(err)
		}
		if ref.Type == "link" {
			want = append(want, fmt.Sprintf("%s/%d", ref.ID, c.Seq))
		}
	}
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "after"}, "x", storetest.Event("t", 9)); err != nil {
		t.Fatal(err)
	}
	if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ReadType = %v, want %v", got, want)
	}
}
