package server

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
)

type panicReq struct{}

func (panicReq) Validate() error { return nil }

type panicRep struct{}

func (panicRep) WrittenSeq() api.Seq { return 0 }

// A command's panic is logged with what it panicked with: an error value
// (errors.New, a runtime error such as an index out of range) is a struct
// of unexported fields, which JSON encodes as {}.
func TestACommandsPanicIsLoggedWithItsValue(t *testing.T) {
	for name, p := range map[string]any{
		"an error": errors.New("the ledger is on fire"),
		"a runtime error": func() (e any) {
			defer func() { e = recover() }()
			var s []int
			i := 3
			_ = s[i]
			return nil
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			s := &Server{cfg: Config{Log: zerolog.New(&buf)}}
			r := execCommand(s, context.Background(), commands.Meta{CorrelationID: "c1"}, panicReq{}, commandSpec[panicReq, panicRep]{
				exec: func(context.Context, commands.Meta, panicReq) (panicRep, error) { panic(p) },
			})
			if r.err == nil {
				t.Fatal("no failure")
			}
			want := p.(error).Error()
			if !strings.Contains(buf.String(), want) {
				t.Fatalf("the log does not say %q: %s", want, strings.SplitN(buf.String(), `"stack"`, 2)[0])
			}
		})
	}
}
