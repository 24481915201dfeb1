package server

import (
	"bytes"
	"testing"

	"github.com/bankbook/bankbook/api"
)

// A success larger than the connection carries becomes a 500
// reply_too_large that does fit; smaller successes and errors pass as
// they are, and the reply's bookkeeping still runs.
func TestFitTurnsAReplyNATSCannotCarryIntoAnError(t *testing.T) {
	const maxPayload = 1 << 20
	ok := reply{body: bytes.Repeat([]byte("x"), maxPayload-replyHeaderRoom)}
	if got := fit(ok, maxPayload, false); got.err != nil || len(got.body) != len(ok.body) {
		t.Errorf("a reply that fits: err %v, %d bytes; want it as it is", got.err, len(got.body))
	}
	refused := reply{err: &api.Error{Status: 404, Code: "order_not_found"}}
	if got := fit(refused, maxPayload, false); got.err != refused.err {
		t.Errorf("an error reply became %+v", got.err)
	}
	ran := false
	big := reply{body: bytes.Repeat([]byte("x"), maxPayload-replyHeaderRoom+1), after: func() { ran = true }}
	got := fit(big, maxPayload, false)
	if got.err == nil || got.err.Status != 500 || got.err.Code != api.CodeReplyTooLarge || got.body != nil || got.cause == nil {
		t.Fatalf("an oversized reply became %+v (body %d bytes, cause %v); want a 500 %s and no body", got.err, len(got.body), got.cause, api.CodeReplyTooLarge)
	}
	if n := len(got.err.Body()); n > 1024 {
		t.Errorf("the error's body is %d bytes", n)
	}
	if got.after == nil {
		t.Fatal("the reply's bookkeeping was dropped")
	}
	got.after()
	if !ran {
		t.Error("the reply's bookkeeping is not the original's")
	}
	// A command's says it was carried out.
	if got := fit(big, maxPayload, true); got.err == nil || got.err.Details["carried_out"] != true {
		t.Errorf("an oversized command reply became %+v, want it to say the command was carried out", got.err)
	}
	// A tiny max_payload still leaves room for a small reply.
	if got := fit(reply{body: []byte(`{"seq":1}`)}, 4096, true); got.err != nil {
		t.Errorf("a small reply under a 4 KiB max_payload became %+v", got.err)
	}
}
