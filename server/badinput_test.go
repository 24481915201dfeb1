package server_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
)

// member is one member of a request body: its name and its JSON value.
type member struct{ name, value string }

// body renders members as a JSON object, in order, repeats included.
func body(ms ...member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%q:%s", m.name, m.value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// with returns ms with the member name set to value (appended if absent).
func with(ms []member, name, value string) []member {
	out := append([]member(nil), ms...)
	for i := range out {
		if out[i].name == name {
			out[i].value = value
			return out
		}
	}
	return append(out, member{name, value})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// badCase is one malformed request and the refusal it must get.
type badCase struct {
	name, subject, body string
	header              nats.Header
	status              int
	code                string
	field               string // details.field, when the refusal names one
}

// shape says what the fields of one endpoint's request are, and gives a
// request that passes validation.
type shape struct {
	valid    []member
	ids      []string // fields holding IDs (subject tokens); "name?" when optional
	accounts []string // fields holding the number of an account money arrives on; "name?" when optional
	times    []string // fields holding bank times
	amounts  []string
	bank     string // the field holding a payout bank account, if any
	page     bool   // limit and cursor
}

var (
	badIDs = map[string]string{
		"wildcard *":          `"*"`,
		"wildcard >":          `">"`,
		"space":               `"a b"`,
		"dot":                 `"a.b"`,
		"control character":   `"a\u0001b"`,
		"newline":             `"a\nb"`,
		"non-ASCII":           `"주문1"`,
		"65 characters":       jsonString(strings.Repeat("x", 65)),
		"empty":               `""`,
		"number instead":      `123`,
		"bidi override":       `"a\u202eb"`,
		"full-width letters":  `"ＡＢＣ"`,
		"slash":               `"a/b"`,
		"colon":               `"a:b"`,
		"tab":                 `"a\tb"`,
		"null is not an ID":   `null`,
		"object instead":      `{}`,
		"trailing wildcard >": `"a.>"`,
	}
	badAccountNumbers = map[string]string{
		"control character": `"110\u0000123"`,
		"newline":           `"110\n123"`,
		"wildcard":          `"*"`,
		"colon":             `"110:123"`,
		"dot":               `"110.123"`,
		"separators only":   `"- -"`,
		"empty":             `""`,
		"65 characters":     jsonString(strings.Repeat("1", 65)),
		"non-ASCII digits":  `"１１０"`,
	}
	badAmounts = map[string]string{
		"zero":              `0`,
		"negative":          `-1`,
		"over 10^15":        `1000000000000001`,
		"beyond int64":      `1e30`,
		"fraction":          `1.5`,
		"string":            `"100"`,
		"missing (null)":    `null`,
		"boolean":           `true`,
		"exponent notation": `1e3`,
		"one past int64":    `9223372036854775808`,
		"below int64":       `-9223372036854775809`,
		"negative zero":     `-0`,
		"whole fraction":    `100.0`,
	}
	badBankAccounts = map[string]struct{ value, field string }{
		"blank bank":             {`{"bank":"  ","number":"110-123-456789","holder":"이영희"}`, "bank_account.bank"},
		"no bank":                {`{"number":"110-123-456789","holder":"이영희"}`, "bank_account.bank"},
		"bank with a newline":    {`{"bank":"신한\n은행","number":"110-123-456789","holder":"이영희"}`, "bank_account.bank"},
		"bank of 65 characters":  {`{"bank":` + jsonString(strings.Repeat("은", 65)) + `,"number":"1","holder":"이영희"}`, "bank_account.bank"},
		"number of hyphens only": {`{"bank":"신한은행","number":"---","holder":"이영희"}`, "bank_account.number"},
		"number of spaces only":  {`{"bank":"신한은행","number":"   ","holder":"이영희"}`, "bank_account.number"},
		"number with a tab":      {`{"bank":"신한은행","number":"1\t2","holder":"이영희"}`, "bank_account.number"},
		"number with letters":    {`{"bank":"신한은행","number":"110-ABC","holder":"이영희"}`, "bank_account.number"},
		"number with dots":       {`{"bank":"신한은행","number":"110.123.456789","holder":"이영희"}`, "bank_account.number"},
		"full-width number":      {`{"bank":"신한은행","number":"１１０１２３","holder":"이영희"}`, "bank_account.number"},
		"number of 33 digits":    {`{"bank":"신한은행","number":"` + strings.Repeat("1", 33) + `","holder":"이영희"}`, "bank_account.number"},
		"holder with a control":  {`{"bank":"신한은행","number":"110-123-456789","holder":"이\u0007영희"}`, "bank_account.holder"},
		"holder with bidi":       {`{"bank":"신한은행","number":"110-123-456789","holder":"이\u202e영희"}`, "bank_account.holder"},
		"holder with zero-width": {`{"bank":"신한은행","number":"110-123-456789","holder":"이\u200b영희"}`, "bank_account.holder"},
		"blank holder":           {`{"bank":"신한은행","number":"110-123-456789","holder":" "}`, "bank_account.holder"},
		"repeated member":        {`{"bank":"신한은행","number":"1","number":"2","holder":"이영희"}`, "bank_account.number"},
		"member in upper case":   {`{"Bank":"신한은행","number":"1","holder":"이영희"}`, "bank_account.Bank"},
		"not an object":          {`"신한은행 110-123-456789"`, "bank_account"},
	}
	badTimes = map[string]string{
		"year 9999":          `"9999-12-31T00:00:00Z"`,
		"year 0001":          `"0001-01-01T00:00:00Z"`,
		"before 2000":        `"1999-12-31T23:59:59Z"`,
		"an hour ahead":      jsonString(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)),
		"next year":          jsonString(time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)),
		"month 13":           `"2026-13-01T00:00:00Z"`,
		"no offset":          `"2026-01-01T00:00:00"`,
		"a date only":        `"2026-01-01"`,
		"a number":           `1767225600`,
		"zero time":          `"0001-01-01T00:00:00Z"`,
		"empty":              `""`,
		"unix epoch":         `"1970-01-01T00:00:00Z"`,
		"offset hour 24":     jsonString(time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05") + "+24:00"),
		"offset minute 60":   jsonString(time.Now().Add(-48*time.Hour).UTC().Format("2006-01-02T15:04:05") + "-23:60"),
		"offset past window": jsonString(time.Now().Add(time.Hour).In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04:05+09:00")),
	}
)

// TestBadInputTable sends every endpoint malformed, unknown, repeated,
// case-mismatched and mistyped members, bad IDs, account numbers, amounts,
// times, bank accounts and Idempotency-Keys. Each must be refused with its
// documented status and code, name the field where there is one, and leave
// the event stream exactly as it was.
func TestBadInputTable(t *testing.T) {
	// Both simulators run, so their endpoints are served and in the table
	// (TestChatSimulatorIsServedOnlyWithChatSim: without --chat-sim it is not).
	e := startEngine(t, func(c *engine.Config) {
		c.BankSim, c.ChatSim, c.ScanInterval = true, true, engine.Duration(time.Hour)
	})
	var order api.SubmitOrderReply
	e.call(t, api.OrderSubmit.Subject, map[string]any{"buyer_id": "u-1", "buyer_name": "김민수", "amount": 5000, "order_id": "exists"}, &order, nil)
	recent := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	var orphan api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, map[string]any{"bank_txn_id": "T-orphan", "account_number": e.cfg.CollectNumber,
		"depositor_name": "아무개", "amount": 7000, "deposited_at": recent}, &orphan, nil)

	bank := `{"bank":"신한은행","number":"110-123-456789","holder":"이영희"}`
	lineOf := func(field, value string) string {
		fields := []member{{"bank_txn_id", `"T-r"`}, {"account_number", jsonString(e.cfg.CollectNumber)}, {"depositor_name", `"아무개"`},
			{"amount", `5000`}, {"deposited_at", jsonString(recent)}}
		if field != "" {
			fields = with(fields, field, value)
		}
		return "[" + body(fields...) + "]"
	}
	reconcileLine := lineOf("", "")
	shapes := map[string]shape{
		api.OrderSubmit.Subject: {valid: []member{{"buyer_id", `"u-1"`}, {"buyer_name", `"김민수"`}, {"amount", `5000`}, {"currency", `"KRW"`}, {"order_id", `"o-new"`}},
			ids: []string{"buyer_id", "order_id?"}, amounts: []string{"amount"}},
		api.OrderCancel.Subject: {valid: []member{{"order_id", `"exists"`}, {"deposited", `false`}, {"reason", `"변심"`}}, ids: []string{"order_id"}},
		api.OrderGet.Subject:    {valid: []member{{"order_id", `"exists"`}, {"min_seq", `0`}}, ids: []string{"order_id"}},
		api.OrderPay.Subject:    {valid: []member{{"order_id", `"exists"`}}, ids: []string{"order_id"}},
		api.OrderSearch.Subject: {valid: []member{{"depositor_name", `"김민수"`}, {"buyer_name", `"김민수"`}, {"status", `"awaiting_deposit"`}, {"limit", `10`}, {"min_seq", `0`}},
			ids: []string{"order_id?"}, page: true},
		api.DepositRecord.Subject: {valid: []member{{"bank_txn_id", `"T-new"`}, {"account_number", jsonString(e.cfg.CollectNumber)}, {"depositor_name", `"아무개"`},
			{"amount", `5000`}, {"deposited_at", jsonString(recent)}},
			accounts: []string{"account_number"}, times: []string{"deposited_at"}, amounts: []string{"amount"}},
		api.DepositResolve.Subject: {valid: []member{{"deposit_id", jsonString(orphan.DepositID)}, {"action", `"refund_to_wallet"`}, {"user_id", `"u-9"`}},
			ids: []string{"deposit_id", "user_id"}},
		api.DepositScanComplete.Subject: {valid: []member{{"account_number", jsonString(e.cfg.CollectNumber)}, {"complete_up_to", jsonString(recent)}},
			accounts: []string{"account_number"}, times: []string{"complete_up_to"}},
		api.DepositOrphans.Subject: {valid: []member{{"limit", `10`}, {"min_seq", `1`}}, page: true},
		api.DepositGet.Subject:     {valid: []member{{"deposit_id", jsonString(orphan.DepositID)}, {"min_seq", `1`}}, ids: []string{"deposit_id"}},
		api.WalletGet.Subject:      {valid: []member{{"user_id", `"u-9"`}, {"limit", `10`}}, ids: []string{"user_id"}, page: true},
		api.WalletWithdraw.Subject: {valid: []member{{"user_id", `"u-9"`}, {"amount", `1000`}, {"bank_account", bank}},
			ids: []string{"user_id"}, amounts: []string{"amount"}, bank: "bank_account"},
		api.PayoutGet.Subject:  {valid: []member{{"payout_id", `"po-1"`}}, ids: []string{"payout_id"}},
		api.PayoutList.Subject: {valid: []member{{"status", `"settled"`}, {"limit", `10`}}, page: true},
		api.PayoutResolve.Subject: {valid: []member{{"payout_id", `"po-1"`}, {"outcome", `"settled"`}, {"fee", `500`}, {"provider_ref", `"FB1"`}, {"reason", `"statement"`}},
			ids: []string{"payout_id"}},
		api.StoreLink.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"store_id", `"s-1"`}, {"store_name", `"한울식당"`}, {"distributor_name", `"한울유통"`}},
			ids: []string{"distributor_id", "store_id"}},
		api.BillIssue.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"store_id", `"s-1"`}, {"amount", `5000`}, {"currency", `"KRW"`}, {"memo", `"5월분"`}},
			ids: []string{"distributor_id", "store_id"}, amounts: []string{"amount"}},
		api.BillIssueBulk.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"bills", `[{"store_id":"s-1","amount":5000}]`}},
			ids: []string{"distributor_id"}},
		api.BillCancel.Subject: {valid: []member{{"bill_id", `"bill_x_1"`}, {"reason", `"typo"`}}, ids: []string{"bill_id"}},
		api.BillRemind.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"store_ids", `["s-1"]`}}, ids: []string{"distributor_id"}},
		api.StoreRename.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"store_id", `"s-1"`}, {"store_name", `"한울식당 본점"`}, {"distributor_name", `"한울유통"`}},
			ids: []string{"distributor_id", "store_id"}},
		api.StoreGet.Subject:   {valid: []member{{"distributor_id", `"d-1"`}, {"store_id", `"s-1"`}, {"min_seq", `0`}}, ids: []string{"distributor_id", "store_id"}},
		api.StoreList.Subject:  {valid: []member{{"distributor_id", `"d-1"`}, {"limit", `10`}}, ids: []string{"distributor_id"}, page: true},
		api.BillGet.Subject:    {valid: []member{{"bill_id", `"bill_x_1"`}, {"min_seq", `0`}}, ids: []string{"bill_id"}},
		api.BillList.Subject:   {valid: []member{{"distributor_id", `"d-1"`}, {"store_id", `"s-1"`}, {"limit", `10`}}, ids: []string{"distributor_id", "store_id"}, page: true},
		api.BillActive.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"limit", `10`}}, ids: []string{"distributor_id"}, page: true},
		api.PaymentsByDistributor.Subject: {valid: []member{{"distributor_id", `"d-1"`}, {"from", jsonString(recent)}, {"limit", `10`}},
			ids: []string{"distributor_id"}, page: true},
		api.PaymentsByStore.Subject:    {valid: []member{{"store_id", `"s-1"`}, {"limit", `10`}}, ids: []string{"store_id"}, page: true},
		api.SettlementExpected.Subject: {valid: []member{{"distributor_id", `"d-1"`}}, ids: []string{"distributor_id"}},
		api.LedgerTrialBalance.Subject: {valid: []member{{"min_seq", `0`}}},
		api.LedgerAccount.Subject:      {valid: []member{{"account", `"liabilities:suspense:unmatched"`}, {"limit", `5`}}, page: true},
		api.LedgerSeries.Subject:       {valid: []member{{"account", `"liabilities:payouts:pending"`}, {"limit", `100`}, {"min_seq", `0`}}},
		api.ProjectionStatus.Subject:   {valid: []member{{"hash", `false`}, {"lock_id", `"ABCDEFGH234"`}}},
		api.DeadLetterList.Subject:     {valid: []member{{"part", `"react-money"`}}, ids: []string{"part?"}, page: true},
		api.DeadLetterRedrive.Subject:  {valid: []member{{"id", `1`}}},
		api.DeadLetterDiscard.Subject:  {valid: []member{{"id", `1`}, {"reason", `"duplicate"`}}},
		api.EventSetAside.Subject:      {valid: []member{{"seq", `1`}, {"reason", `"forged"`}}},
		api.EventSetAsides.Subject:     {valid: []member{{"min_seq", `0`}}},
		api.NotifyList.Subject:         {valid: []member{{"status", `"dead"`}, {"recipient", `"store:s-1"`}, {"limit", `10`}, {"min_seq", `0`}}, page: true},
		api.NotifyRedrive.Subject: {valid: []member{{"notification_id", `"ntf_000000000000000000000000"`}, {"reason", `"channel fixed"`}},
			ids: []string{"notification_id"}},
		api.NotifyLimiter.Subject:   {valid: []member{{"min_seq", `0`}}},
		api.SimBankTransfer.Subject: {valid: []member{{"depositor_name", `"아무개"`}, {"amount", `5000`}, {"account_number", jsonString(e.cfg.CollectNumber)}}, amounts: []string{"amount"}, accounts: []string{"account_number?"}},
		api.SimChatMessages.Subject: {valid: []member{{"channel", `"store:s-1"`}, {"limit", `10`}, {"from", `1`}}},
		api.AuditHistory.Subject: {valid: []member{{"aggregate_type", `"order"`}, {"aggregate_id", `"exists"`}, {"limit", `10`}, {"min_seq", `0`}},
			ids: []string{"aggregate_id"}, page: true},
		api.ReconcileBank.Subject: {valid: []member{{"file_sha256", jsonString(strings.Repeat("ab", 32))}, {"lines", reconcileLine}}},
		api.ReconcilePayouts.Subject: {valid: []member{{"file_sha256", jsonString(strings.Repeat("cd", 32))},
			{"lines", `[{"payout_id":"po-1","status":"settled","amount":5000,"fee":500,"settled_at":` + jsonString(recent) + `}]`}}},
		api.ReconcileGet.Subject:  {valid: []member{{"run_id", `"rec_000000000000000000000000"`}, {"min_seq", `0`}}, ids: []string{"run_id"}},
		api.ReconcileList.Subject: {valid: []member{{"limit", `10`}, {"min_seq", `0`}}, page: true},
	}

	var cases []badCase
	add := func(c badCase) {
		if c.status == 0 {
			c.status, c.code = 400, "invalid_input"
		}
		cases = append(cases, c)
	}
	for _, ep := range api.Endpoints() {
		sh, ok := shapes[ep.Subject]
		if !ok {
			t.Errorf("%s: no request shape in the bad-input table; add one", ep.Subject)
			continue
		}
		subj := ep.Subject
		name := func(s string, args ...any) string { return ep.Name + ": " + fmt.Sprintf(s, args...) }
		// The body as a whole.
		for what, b := range map[string]string{
			"malformed JSON": `{"x":`, "an array": `[]`, "null": `null`, "a string": `"{}"`, "trailing data": `{} {}`,
			"not UTF-8": "{\"x\":\"\xff\xfe\"}", "a truncated object": body(sh.valid...)[:len(body(sh.valid...))-1],
			"two objects": body(sh.valid...) + body(sh.valid...), "over 64 KiB": `{"x":"` + strings.Repeat("a", 70000) + `"}`,
		} {
			add(badCase{name: name("%s", what), subject: subj, body: b})
		}
		add(badCase{name: name("unknown field"), subject: subj, body: body(append(sh.valid, member{"unknown_field", `1`})...), field: "unknown_field"})
		// Every member: in another case, repeated, of the wrong type.
		for i, m := range sh.valid {
			upper := append([]member(nil), sh.valid...)
			upper[i].name = strings.ToUpper(m.name[:1]) + m.name[1:]
			add(badCase{name: name("%s in another case", m.name), subject: subj, body: body(upper...), field: upper[i].name})
			twice := append(append([]member(nil), sh.valid...), member{m.name, m.value})
			add(badCase{name: name("%s repeated", m.name), subject: subj, body: body(twice...), field: m.name})
			wrong := `{"x":1}`
			if strings.HasPrefix(m.value, "{") {
				wrong = `[1]`
			}
			add(badCase{name: name("%s of the wrong type", m.name), subject: subj, body: body(with(sh.valid, m.name, wrong)...), field: m.name})
		}
		// An optional field may be empty or null: the engine fills it in.
		for _, bad := range []struct {
			fields []string
			values map[string]string
		}{{sh.ids, badIDs}, {sh.accounts, badAccountNumbers}} {
			for _, f := range bad.fields {
				f, optional := strings.CutSuffix(f, "?")
				for what, v := range bad.values {
					if optional && (v == `""` || v == `null`) {
						continue
					}
					add(badCase{name: name("%s %s", f, what), subject: subj, body: body(with(sh.valid, f, v)...), field: f})
				}
			}
		}
		for _, f := range sh.times {
			for what, v := range badTimes {
				add(badCase{name: name("%s %s", f, what), subject: subj, body: body(with(sh.valid, f, v)...), field: f})
			}
		}
		for _, f := range sh.amounts {
			for what, v := range badAmounts {
				add(badCase{name: name("%s %s", f, what), subject: subj, body: body(with(sh.valid, f, v)...), field: f})
			}
		}
		if sh.bank != "" {
			for what, v := range badBankAccounts {
				add(badCase{name: name("%s %s", sh.bank, what), subject: subj, body: body(with(sh.valid, sh.bank, v.value)...), field: v.field})
			}
		}
		if sh.page {
			for what, v := range map[string]string{"-1": `-1`, "501": `501`, "a string": `"5"`, "a fraction": `2.5`} {
				add(badCase{name: name("limit %s", what), subject: subj, body: body(with(sh.valid, "limit", v)...), field: "limit"})
			}
			for what, v := range map[string]string{"with a space": `"a b"`, "with a control": `"0\u0001"`, "too long": jsonString(strings.Repeat("0", 1025)), "not handed out": `"zz"`} {
				add(badCase{name: name("cursor %s", what), subject: subj, body: body(with(sh.valid, "cursor", v)...), field: "cursor"})
			}
		}
		if ep.Kind == api.KindQuery {
			for what, v := range map[string]string{"negative": `-1`, "a string": `"5"`, "a fraction": `1.5`} {
				add(badCase{name: name("min_seq %s", what), subject: subj, body: body(with(sh.valid, "min_seq", v)...), field: "min_seq"})
			}
		}
		if ep.Idempotent {
			for what, k := range map[string]string{"empty": "", "256 characters": strings.Repeat("k", 256), "non-ASCII": "키-1", "DEL": "a\x7f"} {
				add(badCase{name: name("Idempotency-Key %s", what), subject: subj, body: body(sh.valid...),
					header: nats.Header{api.HeaderIdempotencyKey: []string{k}}, status: 400, code: api.CodeInvalidIdemKey})
			}
			add(badCase{name: name("Idempotency-Key in two spellings"), subject: subj, body: body(sh.valid...),
				header: nats.Header{api.HeaderIdempotencyKey: []string{"k-a"}, "idempotency-key": []string{"k-b"}}, status: 400, code: api.CodeInvalidIdemKey})
			add(badCase{name: name("Idempotency-Key twice"), subject: subj, body: body(sh.valid...),
				header: nats.Header{api.HeaderIdempotencyKey: []string{"k-a", "k-a"}}, status: 400, code: api.CodeInvalidIdemKey})
		}
		if ep.Kind == api.KindCommand {
			// Stamped on every event of the command, and logged.
			for what, v := range map[string][]string{"empty": {""}, "256 characters": {strings.Repeat("c", 256)}, "with an escape": {"a\x1b[31m"},
				"non-ASCII": {"상관-1"}, "twice": {"c-1", "c-2"}} {
				add(badCase{name: name("Correlation-Id %s", what), subject: subj, body: body(sh.valid...),
					header: nats.Header{api.HeaderCorrelationID: v}, field: api.HeaderCorrelationID})
			}
		}
	}
	// Endpoint-specific rules.
	resolve := shapes[api.DepositResolve.Subject].valid
	notifyList := shapes[api.NotifyList.Subject].valid
	for what, v := range map[string]string{
		"shop:1": `"shop:1"`, "store:": `"store:"`, "store:a b": `"store:a b"`, "store:*": `"store:*"`, "store:>": `"store:>"`,
		"store:a.b": `"store:a.b"`, "no kind": `"s-1"`, "STORE:s-1": `"STORE:s-1"`, "store:s-1 with a control": `"store:s\u00001"`,
		"store: of 65 characters": jsonString("store:" + strings.Repeat("x", 65)), "a number": `1`,
	} {
		add(badCase{name: "notify_list: recipient " + what, subject: api.NotifyList.Subject, body: body(with(notifyList, "recipient", v)...), field: "recipient"})
	}
	for what, v := range map[string]string{"gone": `"gone"`, "in upper case": `"DEAD"`, "failed": `"failed"`, "a number": `1`} {
		add(badCase{name: "notify_list: status " + what, subject: api.NotifyList.Subject, body: body(with(notifyList, "status", v)...), field: "status"})
	}
	history := shapes[api.AuditHistory.Subject].valid
	for what, v := range map[string]string{
		"in upper case": `"ORDER"`, "plural": `"orders"`, "bill (not an aggregate)": `"bill"`, "empty": `""`, "null": `null`,
		"wildcard *": `"*"`, "wildcard >": `">"`, "dotted": `"order.x"`, "with a space": `"order "`, "a number": `1`,
	} {
		add(badCase{name: "audit_history: aggregate_type " + what, subject: api.AuditHistory.Subject, body: body(with(history, "aggregate_type", v)...), field: "aggregate_type"})
	}
	for what, v := range map[string]string{"shop:1": `"shop:1"`, "store:a b": `"store:a b"`, "store:*": `"store:*"`, "store:": `"store:"`} {
		add(badCase{name: "sim_chat_messages: channel " + what, subject: api.SimChatMessages.Subject, body: body(member{"channel", v}), field: "channel"})
	}
	for _, c := range []badCase{
		{name: "order_submit: currency USD", subject: api.OrderSubmit.Subject, body: body(with(shapes[api.OrderSubmit.Subject].valid, "currency", `"USD"`)...), status: 400, code: "unsupported_currency", field: "currency"},
		{name: "order_submit: currency krw", subject: api.OrderSubmit.Subject, body: body(with(shapes[api.OrderSubmit.Subject].valid, "currency", `"krw"`)...), status: 400, code: "unsupported_currency", field: "currency"},
		{name: "order_submit: blank buyer_name", subject: api.OrderSubmit.Subject, body: body(with(shapes[api.OrderSubmit.Subject].valid, "buyer_name", `"  "`)...), field: "buyer_name"},
		{name: "order_submit: buyer_name with a control", subject: api.OrderSubmit.Subject, body: body(with(shapes[api.OrderSubmit.Subject].valid, "buyer_name", `"김\u0000민수"`)...), field: "buyer_name"},
		{name: "order_submit: buyer_name of Hangul fillers", subject: api.OrderSubmit.Subject, body: body(with(shapes[api.OrderSubmit.Subject].valid, "buyer_name", `"\u3164\u3164"`)...), field: "buyer_name"},
		{name: "order_cancel: deposited missing", subject: api.OrderCancel.Subject, body: `{"order_id":"exists"}`, field: "deposited"},
		{name: "order_cancel: reason with a control", subject: api.OrderCancel.Subject, body: `{"order_id":"exists","deposited":false,"reason":"a\u0007"}`, field: "reason"},
		{name: "order_cancel: reason of 501 characters", subject: api.OrderCancel.Subject, body: `{"order_id":"exists","deposited":false,"reason":` + jsonString(strings.Repeat("가", 501)) + `}`, field: "reason"},
		{name: "deposit_record: bank_txn_id with a space", subject: api.DepositRecord.Subject, body: body(with(shapes[api.DepositRecord.Subject].valid, "bank_txn_id", `"T 1"`)...), field: "bank_txn_id"},
		{name: "deposit_record: bank_txn_id with a control", subject: api.DepositRecord.Subject, body: body(with(shapes[api.DepositRecord.Subject].valid, "bank_txn_id", `"T\u00001"`)...), field: "bank_txn_id"},
		{name: "deposit_record: bank_txn_id of 129 characters", subject: api.DepositRecord.Subject, body: body(with(shapes[api.DepositRecord.Subject].valid, "bank_txn_id", jsonString(strings.Repeat("T", 129)))...), field: "bank_txn_id"},
		{name: "deposit_record: blank depositor_name", subject: api.DepositRecord.Subject, body: body(with(shapes[api.DepositRecord.Subject].valid, "depositor_name", `" "`)...), field: "depositor_name"},
		{name: "deposit_resolve: unknown action", subject: api.DepositResolve.Subject, body: body(with(resolve, "action", `"refund"`)...), field: "action"},
		{name: "deposit_resolve: action in upper case", subject: api.DepositResolve.Subject, body: body(with(resolve, "action", `"REFUND_TO_WALLET"`)...), field: "action"},
		{name: "deposit_resolve: target of another action", subject: api.DepositResolve.Subject, body: body(with(resolve, "order_id", `"exists"`)...), field: "order_id"},
		{name: "deposit_resolve: no target", subject: api.DepositResolve.Subject, body: body(resolve[:2]...), field: "user_id"},
		{name: "deposit_resolve: assign_order with a wildcard order", subject: api.DepositResolve.Subject, body: body(resolve[0], member{"action", `"assign_order"`}, member{"order_id", `">"`}), field: "order_id"},
		{name: "deposit_resolve: refund_to_bank without an account", subject: api.DepositResolve.Subject, body: body(resolve[0], member{"action", `"refund_to_bank"`}), field: "bank_account"},
		{name: "deposit_resolve: refund_to_bank to spaces", subject: api.DepositResolve.Subject, body: body(resolve[0], member{"action", `"refund_to_bank"`}, member{"bank_account", `{"bank":"KB","number":"   ","holder":"a"}`}), field: "bank_account.number"},
		{name: "deposit_resolve: refund_to_bank holder with bidi", subject: api.DepositResolve.Subject, body: body(resolve[0], member{"action", `"refund_to_bank"`}, member{"bank_account", `{"bank":"KB","number":"1","holder":"a\u202e"}`}), field: "bank_account.holder"},
		{name: "deposit_resolve: refund_to_bank blank bank", subject: api.DepositResolve.Subject, body: body(resolve[0], member{"action", `"refund_to_bank"`}, member{"bank_account", `{"bank":"","number":"1","holder":"a"}`}), field: "bank_account.bank"},
		{name: "ledger_account: account with a wildcard", subject: api.LedgerAccount.Subject, body: `{"account":"assets:*"}`, field: "account"},
		{name: "ledger_account: account with a space", subject: api.LedgerAccount.Subject, body: `{"account":"assets: bank"}`, field: "account"},
		{name: "ledger_account: empty segment", subject: api.LedgerAccount.Subject, body: `{"account":"assets::bank"}`, field: "account"},
		{name: "ledger_account: 201 characters", subject: api.LedgerAccount.Subject, body: `{"account":` + jsonString(strings.Repeat("a", 201)) + `}`, field: "account"},
		{name: "ledger_account: missing account", subject: api.LedgerAccount.Subject, body: `{}`, field: "account"},
		{name: "deadletter_redrive: id 0", subject: api.DeadLetterRedrive.Subject, body: `{"id":0}`, field: "id"},
		{name: "deadletter_redrive: negative id", subject: api.DeadLetterRedrive.Subject, body: `{"id":-1}`, field: "id"},
		{name: "deadletter_discard: reason with a control", subject: api.DeadLetterDiscard.Subject, body: `{"id":1,"reason":"a\u0000"}`, field: "reason"},
		{name: "bill_issue: a lone surrogate in memo", subject: api.BillIssue.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","amount":5,"memo":"\ud800"}`, field: "memo"},
		{name: "sim_chat_messages: a limit above 1000", subject: api.SimChatMessages.Subject, body: `{"limit":1001}`, field: "limit"},
		{name: "payout_resolve: another outcome", subject: api.PayoutResolve.Subject, body: `{"payout_id":"po-1","outcome":"pending","reason":"x"}`, field: "outcome"},
		{name: "payout_resolve: a negative fee", subject: api.PayoutResolve.Subject, body: `{"payout_id":"po-1","outcome":"settled","fee":-1,"reason":"x"}`, field: "fee"},
		{name: "payout_resolve: a fee on a failure", subject: api.PayoutResolve.Subject, body: `{"payout_id":"po-1","outcome":"failed","fee":5,"reason":"x"}`, field: "outcome"},
		{name: "payout_resolve: no reason", subject: api.PayoutResolve.Subject, body: `{"payout_id":"po-1","outcome":"failed","reason":"  "}`, field: "reason"},
		{name: "payout_resolve: a provider_ref with a space", subject: api.PayoutResolve.Subject, body: `{"payout_id":"po-1","outcome":"settled","provider_ref":"a b","reason":"x"}`, field: "provider_ref"},
		{name: "store_link: blank store_name", subject: api.StoreLink.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","store_name":"  "}`, field: "store_name"},
		{name: "store_link: store_name with a control", subject: api.StoreLink.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","store_name":"a\u0000"}`, field: "store_name"},
		{name: "store_link: distributor_name with a control", subject: api.StoreLink.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","store_name":"a","distributor_name":"b\u0007"}`, field: "distributor_name"},
		{name: "store_link: distributor_name of 101 characters", subject: api.StoreLink.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","store_name":"a","distributor_name":` + jsonString(strings.Repeat("유", 101)) + `}`, field: "distributor_name"},
		{name: "bill_issue: memo of 201 characters", subject: api.BillIssue.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","amount":5,"memo":` + jsonString(strings.Repeat("m", 201)) + `}`, field: "memo"},
		{name: "payment_by_distributor: to before from", subject: api.PaymentsByDistributor.Subject, body: `{"distributor_id":"d-1","from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`, field: "to"},
		{name: "bill_issue_bulk: no lines", subject: api.BillIssueBulk.Subject, body: `{"distributor_id":"d-1","bills":[]}`, field: "bills"},
		{name: "bill_issue_bulk: 1001 lines", subject: api.BillIssueBulk.Subject, body: `{"distributor_id":"d-1","bills":[` + strings.TrimSuffix(strings.Repeat(`{"store_id":"s","amount":1},`, 1001), ",") + `]}`, field: "bills"},
		{name: "bill_issue_bulk: a number for a line", subject: api.BillIssueBulk.Subject, body: `{"distributor_id":"d-1","bills":[{"store_id":"s-1","amount":1},5]}`, field: "bills[1]"},
		{name: "bill_issue_bulk: an object for the lines", subject: api.BillIssueBulk.Subject, body: `{"distributor_id":"d-1","bills":{"store_id":"s-1","amount":1}}`, field: "bills"},
		{name: "bill_issue_bulk: a null line", subject: api.BillIssueBulk.Subject, body: `{"distributor_id":"d-1","bills":[{"store_id":"s-1","amount":1},null]}`, field: "bills[1]"},
		{name: "bill_issue_bulk: a line with an unknown field", subject: api.BillIssueBulk.Subject, body: `{"distributor_id":"d-1","bills":[{"store_id":"s-1","amount":1,"amout":2}]}`, field: "bills[0].amout"},
		{name: "event_set_aside: seq 0", subject: api.EventSetAside.Subject, body: `{"seq":0,"reason":"forged"}`, field: "seq"},
		{name: "event_set_aside: no reason", subject: api.EventSetAside.Subject, body: `{"seq":1}`, field: "reason"},
		{name: "event_set_aside: blank reason", subject: api.EventSetAside.Subject, body: `{"seq":1,"reason":"  "}`, field: "reason"},
		{name: "event_set_aside: reason with a control", subject: api.EventSetAside.Subject, body: `{"seq":1,"reason":"a\u0000"}`, field: "reason"},
		{name: "sim_bank_transfer: blank depositor_name", subject: api.SimBankTransfer.Subject, body: `{"depositor_name":" ","amount":5}`, field: "depositor_name"},
		{name: "notify_list: limit 501 with a status", subject: api.NotifyList.Subject, body: `{"status":"dead","limit":501}`, field: "limit"},
		{name: "notify_list: cursor 00, not handed out", subject: api.NotifyList.Subject, body: `{"cursor":"00"}`, field: "cursor"},
		{name: "store_rename: no name", subject: api.StoreRename.Subject, body: `{"distributor_id":"d-1","store_id":"s-1"}`, field: "store_name"},
		{name: "store_rename: blank store_name", subject: api.StoreRename.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","store_name":" "}`, field: "store_name"},
		{name: "store_rename: null store_name alone", subject: api.StoreRename.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","store_name":null}`, field: "store_name"},
		{name: "store_rename: distributor_name with a control", subject: api.StoreRename.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","distributor_name":"b\u0007"}`, field: "distributor_name"},
		{name: "bill_list: cursor 01, not handed out", subject: api.BillList.Subject, body: `{"distributor_id":"d-1","store_id":"s-1","cursor":"01"}`, field: "cursor"},
		{name: "store_list: cursor ff, not handed out", subject: api.StoreList.Subject, body: `{"distributor_id":"d-1","cursor":"ff"}`, field: "cursor"},
		{name: "bill_active: cursor 00, not handed out", subject: api.BillActive.Subject, body: `{"distributor_id":"d-1","cursor":"00"}`, field: "cursor"},
		{name: "bill_active: cursor ff, not handed out", subject: api.BillActive.Subject, body: `{"distributor_id":"d-1","limit":10,"cursor":"ff"}`, field: "cursor"},
		{name: "bill_active: cursor of a store ID with a space", subject: api.BillActive.Subject, body: `{"distributor_id":"d-1","cursor":"` + hex.EncodeToString([]byte("s 1")) + `"}`, field: "cursor"},
		{name: "notify_list: status given twice, differently", subject: api.NotifyList.Subject, body: `{"status":"dead","status":"sent"}`, field: "status"},
		{name: "notify_list: recipient given twice, differently", subject: api.NotifyList.Subject, body: `{"recipient":"store:s-1","recipient":"store:s-2"}`, field: "recipient"},
		{name: "notify_list: a misspelt field", subject: api.NotifyList.Subject, body: `{"state":"dead"}`, field: "state"},
		{name: "notify_redrive: missing notification_id", subject: api.NotifyRedrive.Subject, body: `{}`, field: "notification_id"},
		{name: "notify_redrive: only a reason", subject: api.NotifyRedrive.Subject, body: `{"reason":"channel fixed"}`, field: "notification_id"},
		{name: "notify_redrive: notification_id a b", subject: api.NotifyRedrive.Subject, body: `{"notification_id":"a b"}`, field: "notification_id"},
		{name: "notify_redrive: notification_id *", subject: api.NotifyRedrive.Subject, body: `{"notification_id":"*"}`, field: "notification_id"},
		{name: "notify_redrive: reason with a control", subject: api.NotifyRedrive.Subject, body: `{"notification_id":"ntf_000000000000000000000000","reason":"a\u0007b"}`, field: "reason"},
		{name: "notify_redrive: reason of 501 characters", subject: api.NotifyRedrive.Subject, body: `{"notification_id":"ntf_000000000000000000000000","reason":` + jsonString(strings.Repeat("가", 501)) + `}`, field: "reason"},
		{name: "notify_redrive: a misspelt field", subject: api.NotifyRedrive.Subject, body: `{"notification":"ntf_000000000000000000000000"}`, field: "notification"},
		{name: "notify_limiter: a field it does not take", subject: api.NotifyLimiter.Subject, body: `{"scope":"chat"}`, field: "scope"},
		{name: "audit_history: missing aggregate_type", subject: api.AuditHistory.Subject, body: `{"aggregate_id":"exists"}`, field: "aggregate_type"},
		{name: "audit_history: missing aggregate_id", subject: api.AuditHistory.Subject, body: `{"aggregate_type":"order"}`, field: "aggregate_id"},
		{name: "audit_history: cursor not hex", subject: api.AuditHistory.Subject, body: `{"aggregate_type":"order","aggregate_id":"exists","cursor":"00000000000000zz00000000"}`, field: "cursor"},
		{name: "audit_history: cursor of 23 digits", subject: api.AuditHistory.Subject, body: `{"aggregate_type":"order","aggregate_id":"exists","cursor":"00000000000000010000000"}`, field: "cursor"},
		{name: "audit_history: an empty body", subject: api.AuditHistory.Subject, body: ``, field: "aggregate_type"},
		{name: "reconcile_payouts: status pending", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po-1","status":"pending","amount":5,"fee":0,"settled_at":` + jsonString(recent) + `}]`}), field: "lines[0].status"},
		{name: "reconcile_payouts: negative fee", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po-1","status":"settled","amount":5,"fee":-1,"settled_at":` + jsonString(recent) + `}]`}), field: "lines[0].fee"},
		{name: "reconcile_payouts: amount 0", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po-1","status":"settled","amount":0,"fee":0,"settled_at":` + jsonString(recent) + `}]`}), field: "lines[0].amount"},
		{name: "reconcile_payouts: a wildcard payout_id", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po.*","status":"settled","amount":5,"fee":0,"settled_at":` + jsonString(recent) + `}]`}), field: "lines[0].payout_id"},
		{name: "reconcile_payouts: no settled_at", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po-1","status":"settled","amount":5,"fee":0}]`}), field: "lines[0].settled_at"},
		{name: "reconcile_payouts: no fee", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po-1","status":"settled","amount":5,"settled_at":` + jsonString(recent) + `}]`}), field: "lines[0].fee"},
		{name: "reconcile_payouts: a null fee", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[{"payout_id":"po-1","status":"failed","amount":5,"fee":null,"settled_at":` + jsonString(recent) + `}]`}), field: "lines[0].fee"},
		{name: "reconcile_payouts: no lines", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))}, member{"lines", `[]`}), field: "lines"},
		{name: "reconcile_bank: file_sha256 missing", subject: api.ReconcileBank.Subject, body: body(member{"lines", reconcileLine}), field: "file_sha256"},
		{name: "reconcile_bank: file_sha256 in upper case", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("AB", 32))}, member{"lines", reconcileLine}), field: "file_sha256"},
		{name: "reconcile_bank: file_sha256 of 63 digits", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("a", 63))}, member{"lines", reconcileLine}), field: "file_sha256"},
		{name: "reconcile_bank: no lines", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", `[]`}), field: "lines"},
		{name: "reconcile_bank: lines missing", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}), field: "lines"},
		{name: "reconcile_bank: a line with amount 0", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", lineOf("amount", `0`)}), field: "lines[0].amount"},
		{name: "reconcile_bank: a line with a bad account", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", lineOf("account_number", `"a.b"`)}), field: "lines[0].account_number"},
		{name: "reconcile_bank: a line in the far future", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", lineOf("deposited_at", `"2999-01-01T00:00:00Z"`)}), field: "lines[0].deposited_at"},
		{name: "reconcile_bank: a line with a space in bank_txn_id", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", lineOf("bank_txn_id", `"T 1"`)}), field: "lines[0].bank_txn_id"},
		{name: "reconcile_payouts: a line outside the period", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))},
			member{"lines", `[{"payout_id":"po-1","status":"settled","amount":5,"fee":0,"settled_at":` + jsonString(recent) + `}]`},
			member{"period", `{"from":"2020-01-01T00:00:00Z","to":"2020-01-02T00:00:00Z"}`}), field: "lines[0].settled_at"},
		{name: "reconcile_payouts: a period that ends before it starts", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))},
			member{"lines", `[{"payout_id":"po-1","status":"settled","amount":5,"fee":0,"settled_at":` + jsonString(recent) + `}]`},
			member{"period", `{"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`}), field: "period"},
		{name: "reconcile_payouts: a period ending in the far future", subject: api.ReconcilePayouts.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("cd", 32))},
			member{"lines", `[{"payout_id":"po-1","status":"settled","amount":5,"fee":0,"settled_at":` + jsonString(recent) + `}]`},
			member{"period", `{"from":"2020-01-01T00:00:00Z","to":"2999-01-02T00:00:00Z"}`}), field: "period.to"},
		{name: "reconcile_bank: a period that ends before it starts", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", reconcileLine},
			member{"period", `{"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`}), field: "period"},
		{name: "reconcile_bank: a line outside the period", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", reconcileLine},
			member{"period", `{"from":"2020-01-01T00:00:00Z","to":"2020-01-02T00:00:00Z"}`}), field: "lines[0].deposited_at"},
		{name: "reconcile_bank: accounts without a period", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", reconcileLine},
			member{"accounts", `["5001000777"]`}), field: "accounts"},
		{name: "reconcile_bank: a bad account", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", reconcileLine},
			member{"period", `{"from":"2020-01-01T00:00:00Z","to":` + jsonString(recent) + `}`}, member{"accounts", `["a.b"]`}), field: "accounts[0]"},
		{name: "reconcile_bank: a period ending in the far future", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", reconcileLine},
			member{"period", `{"from":"2020-01-01T00:00:00Z","to":"2999-01-02T00:00:00Z"}`}), field: "period.to"},
		{name: "reconcile_bank: a period starting before 2000", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", reconcileLine},
			member{"period", `{"from":"1990-01-01T00:00:00Z","to":` + jsonString(recent) + `}`}), field: "period.from"},
		{name: "reconcile_bank: a line with an unknown field", subject: api.ReconcileBank.Subject, body: body(member{"file_sha256", jsonString(strings.Repeat("ab", 32))}, member{"lines", lineOf("amout", `1`)}), field: "lines[0].amout"},
	} {
		add(c)
	}
	if len(cases) < 139 {
		t.Fatalf("only %d cases", len(cases))
	}
	t.Logf("%d bad inputs", len(cases))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, notesBefore := e.lastSeq(t), e.notificationSeq(t)
			msg := nats.NewMsg(tc.subject)
			msg.Data = []byte(tc.body)
			for k, v := range tc.header {
				msg.Header[k] = v
			}
			resp, err := e.nc.RequestMsg(msg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var reply struct {
				Error *api.Error `json:"error"`
			}
			_ = json.Unmarshal(resp.Data, &reply)
			status, code := resp.Header.Get(micro.ErrorCodeHeader), resp.Header.Get(micro.ErrorHeader)
			if status != fmt.Sprint(tc.status) || code != tc.code || reply.Error == nil || reply.Error.Code != tc.code || reply.Error.Message == "" {
				t.Fatalf("body %.200s\ngot %s %s %.300s\nwant %d %s", tc.body, status, code, resp.Data, tc.status, tc.code)
			}
			if got, _ := reply.Error.Details["field"].(string); tc.field != "" && got != tc.field {
				t.Errorf("details.field %q, want %q (%s)", got, tc.field, reply.Error.Message)
			}
			if after := e.lastSeq(t); after != before {
				t.Fatalf("a refused request wrote: last seq %d → %d", before, after)
			}
			// lastSeq counts the business aggregates only; a refused
			// notify.redrive must not write a notification commit either.
			if after := e.notificationSeq(t); after != notesBefore {
				t.Fatalf("a refused request wrote a notification commit: last seq %d → %d", notesBefore, after)
			}
		})
	}

	// The valid requests the cases were derived from pass validation, so
	// each case was refused for the one thing it changed.
	for _, ep := range api.Endpoints() {
		sh, ok := shapes[ep.Subject]
		if !ok {
			continue
		}
		_, err := e.c.Request(ctxT(t), ep.Subject, []byte(body(sh.valid...)), nil)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status == 400 {
			t.Errorf("%s: the valid request %s is refused: %v", ep.Subject, body(sh.valid...), err)
		}
	}
}

// notificationSeq is the last sequence of a notification commit (0: none
// yet). The table's setup calls for no message, so it stays put unless a
// request writes one.
func (e *testEngine) notificationSeq(t testing.TB) eventstore.Seq {
	t.Helper()
	return eventstore.Seq(e.writes(t, domain.AggregateNotification).Last)
}

// TestChatSimulatorIsServedOnlyWithChatSim: bankbook.sim.chat.messages is
// served, and listed in $SRV.INFO.bankbook, only by an engine running the
// fake chat provider (--chat-sim); the bank simulator alone does not bring
// it, nor the fake chat provider the bank simulator.
func TestChatSimulatorIsServedOnlyWithChatSim(t *testing.T) {
	for _, tc := range []struct {
		name             string
		bankSim, chatSim bool
	}{
		{"bank simulator only", true, false},
		{"chat simulator only", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEngine(t, func(c *engine.Config) { c.BankSim, c.ChatSim = tc.bankSim, tc.chatSim })
			msg, err := e.nc.Request("$SRV.INFO.bankbook", nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var info micro.Info
			if err := json.Unmarshal(msg.Data, &info); err != nil {
				t.Fatal(err)
			}
			listed := map[string]bool{}
			for _, ep := range info.Endpoints {
				listed[ep.Subject] = true
			}
			for subject, served := range map[string]bool{api.SimBankTransfer.Subject: tc.bankSim, api.SimChatMessages.Subject: tc.chatSim} {
				if listed[subject] != served {
					t.Errorf("$SRV.INFO.bankbook lists %s: %v, want %v", subject, listed[subject], served)
				}
				_, err := e.c.Request(ctxT(t), subject, []byte(`{}`), nil)
				switch {
				case served && err != nil:
					var ae *api.Error
					if !errors.As(err, &ae) || ae.Status >= 500 || ae.Status == 403 {
						t.Errorf("%s: want served, got %v", subject, err)
					}
				case !served && !errors.Is(err, nats.ErrNoResponders):
					t.Errorf("%s without its simulator: got %v, want no responders", subject, err)
				}
			}
		})
	}
}
