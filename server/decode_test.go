package server

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
)

// decodeStrict refuses what encoding/json accepts silently: member names
// in another case, repeated members (at any depth), and reports the field.
func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		name, body string
		field      string // "" when the error names no field; "-" when the body decodes
	}{
		{"exact names", `{"user_id":"u","amount":5,"bank_account":{"bank":"b","number":"1","holder":"h"}}`, "-"},
		{"escaped name is the same name", `{"user_\u0069d":"u"}`, "-"},
		{"name in another case", `{"User_id":"u","amount":5}`, "User_id"},
		{"name in upper case", `{"AMOUNT":5}`, "AMOUNT"},
		{"nested name in another case", `{"bank_account":{"Bank":"b"}}`, "bank_account.Bank"},
		{"unknown field", `{"amout":5}`, "amout"},
		{"unknown nested field", `{"bank_account":{"iban":"x"}}`, "bank_account.iban"},
		{"planned field is not a member", `{"PayoutID":"p"}`, "PayoutID"},
		{"repeated field", `{"amount":1000,"amount":2000}`, "amount"},
		{"repeated field, second escaped", `{"amount":1000,"\u0061mount":2000}`, "amount"},
		{"repeated nested field", `{"bank_account":{"bank":"a","bank":"b"}}`, "bank_account.bank"},
		{"wrong type", `{"amount":"5"}`, "amount"},
		{"wrong nested type", `{"bank_account":{"number":1}}`, "bank_account.number"},
		{"fraction", `{"amount":1.5}`, "amount"},
		{"malformed", `{"amount":`, ""},
		{"trailing data", `{} {}`, ""},
		{"not an object", `[{}]`, ""},
		{"not UTF-8", "{\"user_id\":\"\xff\"}", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req api.WithdrawRequest
			err := decodeStrict([]byte(tc.body), &req, api.DefaultMaxBody)
			if tc.field == "-" {
				if err != nil {
					t.Fatalf("decodeStrict(%s) = %v", tc.body, err)
				}
				return
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_input" {
				t.Fatalf("decodeStrict(%s) = %v, want 400 invalid_input", tc.body, err)
			}
			if got, _ := ae.Details["field"].(string); got != tc.field {
				t.Fatalf("decodeStrict(%s) names field %q, want %q (%s)", tc.body, got, tc.field, ae.Message)
			}
			if strings.HasPrefix(ae.Message, "unknown field") && !strings.Contains(ae.Message, strconv.Quote(tc.field)) {
				t.Fatalf("decodeStrict(%s): %q, want the field quoted", tc.body, ae.Message)
			}
		})
	}
}

// Promoted members of embedded structs (PageRequest, ReadAfter) are
// members; a time that does not parse names its field.
func TestDecodeStrictEmbeddedAndTimes(t *testing.T) {
	var q api.LedgerAccountRequest
	if err := decodeStrict([]byte(`{"account":"a","limit":5,"cursor":"00","min_seq":3}`), &q, api.DefaultMaxBody); err != nil || q.Limit != 5 || q.MinSeq != 3 {
		t.Fatalf("embedded members: %+v %v", q, err)
	}
	for _, body := range []string{`{"account":"a","min_seq":1,"min_seq":2}`, `{"account":"a","Min_seq":1}`} {
		if err := decodeStrict([]byte(body), &q, api.DefaultMaxBody); err == nil {
			t.Errorf("%s decoded", body)
		}
	}
	for _, at := range []string{`"2026-13-01T00:00:00Z"`, `"2026-01-01T00:00:00"`, `{}`, `5`} {
		var r api.RecordDepositRequest
		err := decodeStrict([]byte(`{"deposited_at":`+at+`}`), &r, api.DefaultMaxBody)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Details["field"] != "deposited_at" || !strings.Contains(ae.Message, "RFC 3339") {
			t.Errorf("deposited_at %s: %v", at, err)
		}
	}
	deep := `{"bank_account":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`
	var w api.WithdrawRequest
	if err := decodeStrict([]byte(deep), &w, api.DefaultMaxBody); err == nil {
		t.Error("deep nesting decoded")
	}
}

// A value of the wrong type inside a list is named with its index, as an
// unknown member there is.
func TestDecodeStrictNamesTheLineOfAWrongType(t *testing.T) {
	for body, field := range map[string]string{
		`{"distributor_id":"d","bills":[{"store_id":"s","amount":5},{"store_id":"s","amount":1.5}]}`: "bills[1].amount",
		`{"distributor_id":"d","bills":[{"store_id":"s","amount":1e3}]}`:                             "bills[0].amount",
		`{"distributor_id":"d","bills":[{"store_id":"s","amount":99999999999999999999}]}`:            "bills[0].amount",
		`{"distributor_id":"d","bills":[{"store_id":"s","amount":5,"memo":5}]}`:                      "bills[0].memo",
		`{"distributor_id":"d","bills":[{"store_id":"s","amount":{"won":5}}]}`:                       "bills[0].amount",
		`{"distributor_id":["d"],"bills":[{"store_id":"s","amount":5}]}`:                             "distributor_id",
	} {
		var req api.IssueBulkRequest
		err := decodeStrict([]byte(body), &req, api.DefaultMaxBody)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Fatalf("decodeStrict(%s) = %v, want 400", body, err)
		}
		if got, _ := ae.Details["field"].(string); got != field {
			t.Errorf("decodeStrict(%s) names %q, want %q (%s)", body, got, field, ae.Message)
		}
	}
}

// A member tagged bankbook:"required" must be given and not null, also
// when it is promoted from an embedded struct (unless the outer struct has
// a member of that name); 0 is a value.
func TestDecodeStrictRequiredMembers(t *testing.T) {
	type inner struct {
		Fee  int64 `json:"fee" bankbook:"required"`
		Note int64 `json:"note" bankbook:"required"`
	}
	type outer struct {
		inner
		Note int64 `json:"note"` // shadows inner's, not required
		Name string
	}
	for body, field := range map[string]string{
		`{}`:           "fee",
		`{"fee":null}`: "fee",
		`{"note":1}`:   "fee",
		`{"fee":0}`:    "",
		`{"fee":5}`:    "",
	} {
		var v outer
		err := decodeStrict([]byte(body), &v, api.DefaultMaxBody)
		var ae *api.Error
		switch {
		case field == "" && err != nil:
			t.Errorf("decodeStrict(%s) = %v, want it decoded", body, err)
		case field != "" && (!errors.As(err, &ae) || ae.Details["field"] != field):
			t.Errorf("decodeStrict(%s) = %v, want 400 on %s", body, err, field)
		}
	}
}
