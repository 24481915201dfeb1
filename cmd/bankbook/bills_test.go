package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/engine"
)

func TestParseBillCSV(t *testing.T) {
	good := []struct {
		name string
		in   string
		want []csvBill
	}{
		{"plain", "store_id,amount,memo\ns-1,39000,11월분\ns-2,1200,\n",
			[]csvBill{{2, api.BillLine{StoreID: "s-1", Amount: 39000, Memo: "11월분"}}, {3, api.BillLine{StoreID: "s-2", Amount: 1200}}}},
		{"no memo column, any order, any case, BOM, CRLF, blank lines", "\uFEFFAmount, Store_ID\r\n39000,s-1\r\n\r\n 7 , s-2 \r\n",
			[]csvBill{{2, api.BillLine{StoreID: "s-1", Amount: 39000}}, {4, api.BillLine{StoreID: "s-2", Amount: 7}}}},
		{"quoted thousands separators", "store_id,amount\ns-1,\"39,000\"\ns-2,\"1,234,567\"\ns-3,\"100\"\n",
			[]csvBill{{2, api.BillLine{StoreID: "s-1", Amount: 39000}}, {3, api.BillLine{StoreID: "s-2", Amount: 1234567}}, {4, api.BillLine{StoreID: "s-3", Amount: 100}}}},
		{"quoted memo with a comma and a doubled quote", "store_id,amount,memo\ns-1,5000,\"쌀, 20kg \"\"특\"\"\"\n",
			[]csvBill{{2, api.BillLine{StoreID: "s-1", Amount: 5000, Memo: `쌀, 20kg "특"`}}}},
		{"the example of docs/operations.md", "store_id,amount,memo\ns-1001,\"39,000\",12월 식자재\ns-1002,1200000,\ns-1003,58000,\"쌀 20kg, 2포\"\n",
			[]csvBill{{2, api.BillLine{StoreID: "s-1001", Amount: 39000, Memo: "12월 식자재"}}, {3, api.BillLine{StoreID: "s-1002", Amount: 1200000}}, {4, api.BillLine{StoreID: "s-1003", Amount: 58000, Memo: "쌀 20kg, 2포"}}}},
		{"no final newline", "store_id,amount\ns-1,1", []csvBill{{2, api.BillLine{StoreID: "s-1", Amount: 1}}}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBillCSV(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}

	bad := []struct {
		name string
		in   string
		want []string // every problem, in file order
	}{
		{"empty", "", []string{"line 1: the file is empty"}},
		{"header only", "store_id,amount,memo\n", []string{"line 2: the file holds no bills"}},
		{"unknown and missing columns", "store,amount,amount\n", []string{`line 1: unknown column "store"`, "line 1: amount: appears twice", "line 1: store_id: missing"}},
		{"malformed amounts", "store_id,amount\ns-1,39000\ns-2,12x\ns-3,\"1,00\"\ns-4,\"39.000\"\ns-5,-5\ns-6,0\ns-7,\n",
			[]string{`line 3: amount: "12x" is not an amount`, `line 4: amount: "1,00" is not an amount`, `line 5: amount: "39.000" is not an amount`,
				`line 6: amount: "-5" is not an amount`, "line 7: amount: must be greater than 0", "line 8: amount: is required"}},
		{"more groupings refused", "store_id,amount\ns-1,\"039,000\"\ns-2,\",000\"\ns-3,\"1,0000\"\ns-4,\"1 000\"\ns-5,99999999999999999999\ns-6,00012\n",
			[]string{`line 2: amount: "039,000"`, `line 3: amount: ",000"`, `line 4: amount: "1,0000"`, `line 5: amount: "1 000"`, "line 6: amount: \"99999999999999999999\" is out of range", `line 7: amount: "00012"`}},
		{"signs, exponents, full-width digits and amounts past the bounds refused", "store_id,amount\ns-1,+5\ns-2,1e3\ns-3,１２３\ns-4,\"３９,０００\"\ns-5,\"1,000,000,000,000,001\"\ns-6,\"9,223,372,036,854,775,808\"\n",
			[]string{`line 2: amount: "+5" is not an amount`, `line 3: amount: "1e3" is not an amount`, `line 4: amount: "１２３" is not an amount`, `line 5: amount: "３９,０００" is not an amount`,
				"line 6: amount: must not exceed 1000000000000000", `line 7: amount: "9,223,372,036,854,775,808" is out of range`}},
		{"an unquoted thousands separator", "store_id,amount,memo\ns-1,39,000,x\n", []string{"line 2: the row has 4 fields, the header 3 (a value holding a comma"}},
		{"too few fields", "store_id,amount,memo\ns-1\n", []string{"line 2: the row has 1 fields, the header 3"}},
		{"every bad cell of a row", "store_id,amount,memo\nS 1,0,\"\x01\"\n", []string{"line 2: store_id: may contain only", "line 2: amount: must be greater than 0", "line 2: memo: must not contain control"}},
		{"memo too long", "store_id,amount,memo\ns-1,5," + strings.Repeat("가", api.MaxMemo+1) + "\n", []string{"line 2: memo: must be at most 200 characters"}},
		{"a multi-line memo, a stray quote, and lines counted after them", "store_id,amount,memo\ns-1,5,\"a\nb\"\ns-2,5,x\"y\ns-3,x,\n",
			[]string{"line 2: memo: must not contain control", "line 4: malformed CSV", "line 5: amount:"}},
		{"a store named twice, exactly as written (S-1 is another store); a row refused for its amount names its store too", "store_id,amount,memo\ns-1,1000,\ns-2,2000,\nS-1,3000,\ns-1,\"1,0\",\"a\nb\"\ns-2,4000,\ns-1,5000,\n",
			[]string{"line 2: store_id: s-1 is also on lines 5, 8;", "line 3: store_id: s-2 is also on line 7;", "line 5: store_id: s-1 is also on lines 2, 8;", `line 5: amount: "1,0" is not an amount`,
				"line 5: memo: must not contain control", "line 7: store_id: s-2 is also on line 3;", "line 8: store_id: s-1 is also on lines 2, 5;"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBillCSV(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("accepted: %v", got)
			}
			if got != nil || !errors.Is(err, errBadBillFile) {
				t.Fatalf("got %v, %v", got, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want it to start with %q", i+1, lines[i], w)
				}
			}
		})
	}
}

// FuzzParseBillCSV: any input is either refused with line-numbered
// problems or gives bills that the engine's validation accepts, in file
// order.
func FuzzParseBillCSV(f *testing.F) {
	for _, s := range []string{"store_id,amount,memo\ns-1,39000,11월분\n", "\uFEFFamount,store_id\r\n\"1,000\",s\r\n", "store_id,amount\ns,\"1,00\"\n", "store_id,amount,memo\ns,1,\"a\nb\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		bills, err := parseBillCSV(strings.NewReader(in))
		if err != nil {
			if bills != nil || !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("refused as %v with %v", err, bills)
			}
			return
		}
		last := 1
		for _, b := range bills {
			if err := b.Validate(); err != nil {
				t.Fatalf("line %d accepted but invalid: %v", b.Line, err)
			}
			if b.Line <= last {
				t.Fatalf("line %d after line %d", b.Line, last)
			}
			last = b.Line
		}
	})
}

func TestChunkBills(t *testing.T) {
	t.Run("by line count", func(t *testing.T) {
		chunks := chunkBills("d-1", makeBills(2500, ""))
		if len(chunks) != 3 || len(chunks[0].lines) != 1000 || len(chunks[1].lines) != 1000 || len(chunks[2].lines) != 500 {
			t.Fatalf("chunks of %v", chunkSizes(chunks))
		}
		if chunks[1].lines[0] != 1002 || chunks[1].req.Bills[0].StoreID != "s-1000" || chunks[2].req.DistributorID != "d-1" {
			t.Fatalf("second chunk starts at line %d with %+v", chunks[1].lines[0], chunks[1].req.Bills[0])
		}
	})
	t.Run("by body size", func(t *testing.T) {
		// 200 characters that JSON escapes (6 bytes each) make a line
		// too big for 1,000 of them to fit one request.
		chunks := chunkBills("d-1", makeBills(1500, strings.Repeat("<", api.MaxMemo)))
		total := 0
		for _, ch := range chunks {
			body, err := json.Marshal(ch.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) > api.BillIssueBulk.MaxBodyBytes || len(ch.lines) > api.MaxBulkBills || len(ch.lines) != len(ch.req.Bills) {
				t.Fatalf("a chunk of %d lines is %d bytes", len(ch.lines), len(body))
			}
			total += len(ch.lines)
		}
		if len(chunks) < 3 || total != 1500 {
			t.Fatalf("chunks of %v", chunkSizes(chunks))
		}
	})
}

func TestImportKeyFollowsTheBillsNotTheBytes(t *testing.T) {
	parse := func(s string) []csvBill {
		t.Helper()
		b, err := parseBillCSV(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := parse("store_id,amount,memo\ns-1,39000,x\ns-2,5,\n")
	same := parse("\uFEFFstore_id,amount\r\n\r\n\"s-1\",\"39,000\"\r\ns-2,5\r\n")
	same[0].Memo = "x" // the second file has no memo column; give it the same memo
	if importKey("d-1", a) != importKey("d-1", same) {
		t.Fatal("the same bills in another spelling give another key")
	}
	if importKey("d-1", a) == importKey("d-2", a) {
		t.Fatal("two distributors share a key")
	}
	if k := importKey("d-1", a); k == importKey("d-1", parse("store_id,amount,memo\ns-1,39001,x\ns-2,5,\n")) || len(k) > 200 {
		t.Fatalf("key %q", k)
	}
}

func TestBillCommandsAgainstARunningEngine(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()

	var links [2]api.LinkStoreReply
	for i, store := range []string{"s-1", "s-2"} {
		out, err := cli(t, "store", "link", url, "--distributor-id", "d-1", "--store-id", store, "--store-name", "한울식당 "+store, "--json")
		if err != nil || json.Unmarshal([]byte(out), &links[i]) != nil || links[i].DedicatedAccount.Number == "" {
			t.Fatalf("link %s: %q %v", store, out, err)
		}
	}
	if links[0].DedicatedAccount.Number == links[1].DedicatedAccount.Number {
		t.Fatal("two stores share a dedicated account")
	}
	out, err := cli(t, "store", "link", url, "--distributor-id", "d-1", "--store-id", "s-1", "--store-name", "other name")
	if err != nil || !strings.Contains(out, "dedicated account: ") || !strings.Contains(out, links[0].DedicatedAccount.Number) || !strings.Contains(out, links[0].LinkID) ||
		!strings.Contains(out, "a repeat does not rename it to other name") {
		t.Fatalf("link again: %q %v", out, err)
	}
	out, err = cli(t, "store", "link", url, "--distributor-id", "d-1", "--store-id", "s-1", "--store-name", "한울식당 s-1")
	if err != nil || strings.Contains(out, "a repeat does not") {
		t.Fatalf("link again under its name: %q %v", out, err)
	}

	out, err = cli(t, "bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-1", "--amount", "39000", "--memo", "11월분", "--json")
	var first api.IssueBillReply
	if err != nil || json.Unmarshal([]byte(out), &first) != nil || first.Status != "active" || first.Amount != 39000 {
		t.Fatalf("issue: %q %v", out, err)
	}
	out, err = cli(t, "bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-1", "--amount", "41000", "--idempotency-key", "b-2")
	if err != nil || !strings.Contains(out, "41,000") || !strings.Contains(out, "supersedes "+first.BillID) || !strings.Contains(out, links[0].DedicatedAccount.Number) {
		t.Fatalf("issue the next bill: %q %v", out, err)
	}
	second := strings.Fields(out)[1]
	out, err = cli(t, "bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-1", "--amount", "41000", "--idempotency-key", "b-2")
	if err != nil || !strings.Contains(out, second) || !strings.Contains(out, "replayed") {
		t.Fatalf("repeated issue: %q %v", out, err)
	}

	out, err = cli(t, "bill", "cancel", url, "--bill-id", second, "--reason", "wrong amount")
	if err != nil || out != fmt.Sprintf("bill %s  cancelled  (seq %d)\n", second, seqOf(t, out)) {
		t.Fatalf("cancel: %q %v", out, err)
	}

	cases := []struct {
		name string
		args []string
		want int
	}{
		{"cancel a bill no longer current", []string{"bill", "cancel", url, "--bill-id", first.BillID}, exitRefused},
		{"cancel again", []string{"bill", "cancel", url, "--bill-id", second}, exitRefused},
		{"issue to a store not linked", []string{"bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-9", "--amount", "1000"}, exitNotFound},
		{"issue to another distributor's store", []string{"bill", "issue", url, "--distributor-id", "d-2", "--store-id", "s-1", "--amount", "1000"}, exitNotFound},
		{"issue without an amount", []string{"bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-1"}, exitUsage},
		{"issue of nothing", []string{"bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-1", "--amount", "0"}, exitRefused},
		{"link without a name", []string{"store", "link", url, "--distributor-id", "d-1", "--store-id", "s-3"}, exitUsage},
		{"link with a blank name", []string{"store", "link", url, "--distributor-id", "d-1", "--store-id", "s-3", "--store-name", " "}, exitRefused},
		{"an amount with a separator on the command line", []string{"bill", "issue", url, "--distributor-id", "d-1", "--store-id", "s-1", "--amount", "1,000"}, exitUsage},
		{"import without a file", []string{"bill", "import", url, "--distributor-id", "d-1"}, exitUsage},
		{"import without a distributor", []string{"bill", "import", url, "x.csv"}, exitUsage},
		{"import with no engine", []string{"bill", "import", "--nats-url", "nats://127.0.0.1:1", "--distributor-id", "d-1", writeBills(t, "store_id,amount\ns-1,5\n")}, exitUnavailable},
		{"import of a missing file", []string{"bill", "import", url, "--distributor-id", "d-1", filepath.Join(t.TempDir(), "none.csv")}, exitFailed},
		{"unknown subcommand", []string{"bill", "frobnicate"}, exitUsage},
		{"group help", []string{"store", "-h"}, exitOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d, want %d (%v)", got, tc.want, err)
			}
		})
	}
}

// TestStoreLinkWithADistributorName: store link --distributor-name records
// the name the store's messages give the distributor, shows it, and says
// when a repeat keeps the first (or none); bill get shows it with the
// store's name.
func TestStoreLinkWithADistributorName(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	link := func(store string, more ...string) (string, error) {
		return cli(t, append([]string{"store", "link", url, "--distributor-id", "d-n", "--store-id", store, "--store-name", "행복식당"}, more...)...)
	}
	out, err := link("s-n", "--distributor-name", " 한울유통 ")
	if err != nil || !strings.Contains(out, "of distributor d-n (한울유통): link ") || strings.Contains(out, "a repeat") {
		t.Fatalf("link with a distributor name: %q %v", out, err)
	}
	out, err = link("s-n", "--distributor-name", "다른유통")
	if err != nil || !strings.Contains(out, "(한울유통)") || !strings.Contains(out, "a repeat does not change it to 다른유통; 'bankbook store rename' does") {
		t.Fatalf("link again with another distributor name: %q %v", out, err)
	}
	if out, err = link("s-n"); err != nil || !strings.Contains(out, "(한울유통)") || strings.Contains(out, "a repeat") {
		t.Fatalf("link again without a distributor name: %q %v", out, err)
	}
	out, err = link("s-p")
	if err != nil || !strings.Contains(out, "of distributor d-n: link ") {
		t.Fatalf("link without a distributor name: %q %v", out, err)
	}
	out, err = link("s-p", "--distributor-name", "한울유통", "--json")
	var rep api.LinkStoreReply
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.DistributorName != "" {
		t.Fatalf("link again, now with a distributor name: %q %v", out, err)
	}
	if out, err = link("s-p", "--distributor-name", "한울유통"); err != nil || !strings.Contains(out, "linked before without a distributor name: a repeat does not add 한울유통; 'bankbook store rename' does") {
		t.Fatalf("link again, now with a distributor name: %q %v", out, err)
	}
	for what, name := range map[string]string{"of 101 characters": strings.Repeat("유", 101), "with a newline": "한울\n유통"} {
		if _, err := link("s-z", "--distributor-name", name); exitCode(err) != exitRefused {
			t.Errorf("a distributor name %s: %v, want refused", what, err)
		}
	}
	out, err = cli(t, "bill", "issue", url, "--distributor-id", "d-n", "--store-id", "s-n", "--amount", "50000", "--json")
	var bill api.IssueBillReply
	if err != nil || json.Unmarshal([]byte(out), &bill) != nil {
		t.Fatalf("issue: %q %v", out, err)
	}
	out, err = cli(t, "bill", "get", url, "--bill-id", bill.BillID, "--min-seq", fmt.Sprint(bill.Seq))
	if err != nil || !strings.Contains(out, "store s-n (행복식당) of d-n (한울유통)") {
		t.Fatalf("bill get: %q %v", out, err)
	}
}

// TestStoreRenameGetAndList: `store rename` sends only the names given (a
// --distributor-name of "" removes it), and refuses a line with neither;
// `store get` and `store list` show the links as they are now.
func TestStoreRenameGetAndList(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	for _, s := range []string{"s-1", "s-2"} {
		if out, err := cli(t, "store", "link", url, "--distributor-id", "d-r", "--store-id", s, "--store-name", "가게 "+s, "--distributor-name", "한울유통"); err != nil {
			t.Fatalf("link %s: %q %v", s, out, err)
		}
	}
	rename := func(more ...string) (api.RenameStoreReply, error) {
		out, err := cli(t, append([]string{"store", "rename", url, "--distributor-id", "d-r", "--store-id", "s-1", "--json"}, more...)...)
		var rep api.RenameStoreReply
		if err == nil {
			err = json.Unmarshal([]byte(out), &rep)
		}
		return rep, err
	}
	if rep, err := rename("--store-name", "행복식당"); err != nil || rep.Status != api.StoreStatusRenamed || rep.StoreName != "행복식당" || rep.DistributorName != "한울유통" {
		t.Fatalf("rename the store: %+v %v", rep, err)
	}
	rep, err := rename("--distributor-name", "")
	if err != nil || rep.Status != api.StoreStatusRenamed || rep.StoreName != "행복식당" || rep.DistributorName != "" {
		t.Fatalf("remove the distributor name: %+v %v", rep, err)
	}
	if _, err := rename(); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "give --store-name, --distributor-name or both") {
		t.Errorf("rename with neither name: %v, want a usage error", err)
	}
	out, err := cli(t, "store", "get", url, "--distributor-id", "d-r", "--store-id", "s-1", "--min-seq", fmt.Sprint(rep.Seq))
	if err != nil || !strings.Contains(out, "store s-1 (행복식당) of distributor d-r: link ") || !strings.Contains(out, "renamed at ") {
		t.Errorf("store get: %q %v", out, err)
	}
	if _, err := cli(t, "store", "get", url, "--distributor-id", "d-r", "--store-id", "s-9"); exitCode(err) != exitNotFound {
		t.Errorf("store get of a store not linked: %v, want exit %d", err, exitNotFound)
	}
	out, err = cli(t, "store", "list", url, "--distributor-id", "d-r", "--limit", "1")
	if err != nil || !strings.Contains(out, "s-1        행복식당") || strings.Contains(out, "s-2") || !strings.Contains(out, "more: --cursor ") {
		t.Errorf("store list, a page of 1: %q %v", out, err)
	}
	cursor := out[strings.Index(out, "more: --cursor ")+len("more: --cursor "):]
	out, err = cli(t, "store", "list", url, "--distributor-id", "d-r", "--cursor", strings.TrimSpace(cursor))
	if err != nil || !strings.Contains(out, "s-2        가게 s-2") || strings.Contains(out, "s-1 ") || strings.Contains(out, "more:") {
		t.Errorf("store list, the next page: %q %v", out, err)
	}
}

func TestBillImport(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.BankSim = false })
	url := "--nats-url=" + e.ClientURL()
	ctx := context.Background()
	const stores = 49
	for i := 1; i <= stores; i++ {
		if _, err := e.Commands.Links.LinkStore(ctx, commands.Meta{}, api.LinkStoreRequest{DistributorID: "d-1", StoreID: fmt.Sprintf("s-%d", i), StoreName: fmt.Sprintf("가게 %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// written counts business commits (a notification is recorded a
	// moment after each bill, whenever the reactor gets to it).
	written := func() uint64 {
		t.Helper()
		return engineWrites(t, e).Count
	}

	// A file with a malformed line sends nothing and lists every bad line.
	before := written()
	bad := writeBills(t, "store_id,amount,memo\ns-1,39000,ok\ns-2,39.000,\ns-3,\"12,000\",ok\ns-4,,\n")
	_, err := cli(t, "bill", "import", url, "--distributor-id", "d-1", bad)
	if exitCode(err) != exitFailed || err == nil || !strings.Contains(err.Error(), "nothing imported") ||
		!strings.Contains(err.Error(), `line 3: amount: "39.000"`) || !strings.Contains(err.Error(), "line 5: amount: is required") || strings.Contains(err.Error(), "line 4") {
		t.Fatalf("bad file: exit %d: %v", exitCode(err), err)
	}
	if written() != before {
		t.Fatal("a bad file issued something")
	}
	// So does a file that names a store on two lines: which amount is
	// meant? Every line naming it is listed.
	twice := writeBills(t, "store_id,amount,memo\ns-1,39000,\ns-2,1000,\ns-1,41000,\n")
	_, err = cli(t, "bill", "import", url, "--distributor-id", "d-1", twice)
	if exitCode(err) != exitFailed || err == nil || !strings.Contains(err.Error(), "nothing imported") ||
		!strings.Contains(err.Error(), "line 2: store_id: s-1 is also on line 4;") || !strings.Contains(err.Error(), "line 4: store_id: s-1 is also on line 2;") || strings.Contains(err.Error(), "line 3") {
		t.Fatalf("a store twice: exit %d: %v", exitCode(err), err)
	}
	if written() != before {
		t.Fatal("a file naming a store twice issued something")
	}

	// 50 lines, line 27 for a store that is not linked: refused, the
	// others issued, exit 1 naming it.
	var b strings.Builder
	b.WriteString("store_id,amount,memo\n")
	for i := 1; i <= 50; i++ {
		store := fmt.Sprintf("s-%d", i)
		switch {
		case i == 26:
			store = "s-unlinked"
		case i > 26:
			store = fmt.Sprintf("s-%d", i-1)
		}
		fmt.Fprintf(&b, "%s,\"%s\",12월 %d\n", store, itoa(int64(1000*i)), i)
	}
	file := writeBills(t, b.String())
	out, err := cli(t, "bill", "import", url, "--distributor-id", "d-1", file)
	if exitCode(err) != exitFailed || err == nil || !strings.Contains(err.Error(), "1 of 50 lines refused by the engine (line 27)") {
		t.Fatalf("import: exit %d: %v\n%s", exitCode(err), err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 51 || !strings.HasPrefix(lines[25], "line 27 ") || !strings.Contains(lines[25], "s-unlinked") || !strings.Contains(lines[25], "refused store_not_linked") ||
		!strings.Contains(lines[0], "line 2 ") || !strings.Contains(lines[0], "bill_") || lines[50] != "50 lines: 49 issued, 1 refused (in 1 request)" {
		t.Fatalf("import output:\n%s", out)
	}
	afterFirst := written()
	if afterFirst != before+49 {
		t.Fatalf("the import appended %d commits, want 49", afterFirst-before)
	}

	// The same file again: the same bills, nothing appended.
	out, err = cli(t, "bill", "import", url, "--distributor-id", "d-1", "--json", file)
	var again struct {
		Lines    []api.BulkResult `json:"lines"`
		Issued   int              `json:"issued"`
		Failed   int              `json:"failed"`
		Replayed int              `json:"replayed"`
	}
	if exitCode(err) != exitFailed || json.Unmarshal([]byte(out), &again) != nil || len(again.Lines) != 50 || again.Issued != 49 || again.Failed != 1 || again.Replayed != 1 {
		t.Fatalf("import again: exit %d %v: %s", exitCode(err), err, tail(out))
	}
	for i, l := range again.Lines {
		if l.Line != i+2 {
			t.Fatalf("result %d is for line %d", i, l.Line)
		}
		if l.Error == nil && !strings.Contains(lines[i], " "+l.BillID+" ") {
			t.Fatalf("line %d: bill %s now, first %q", l.Line, l.BillID, lines[i])
		}
	}
	if got := written(); got != afterFirst {
		t.Fatalf("importing the same file again appended %d commits", got-afterFirst)
	}

	// The refused line, linked and issued on its own, in another file.
	if _, err := cli(t, "store", "link", url, "--distributor-id", "d-1", "--store-id", "s-unlinked", "--store-name", "새 가게"); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "bill", "import", url, "--distributor-id", "d-1", writeBills(t, "store_id,amount,memo\ns-unlinked,\"26,000\",12월 26\n"))
	if err != nil || !strings.Contains(out, "1 line: 1 issued, 0 refused") || strings.Contains(out, "replayed") {
		t.Fatalf("the corrected line: %q %v", out, err)
	}
}

// TestBillImportRefusedRequestSaysARepeatIsRefusedToo: a whole request the
// engine refuses (an --idempotency-key used for other bills) exits 4, and
// the error does not tell the operator that running the same import again
// finishes it: the repeat gets the same answer.
func TestBillImportRefusedRequestSaysARepeatIsRefusedToo(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.BankSim = false })
	url := "--nats-url=" + e.ClientURL()
	if _, err := e.Commands.Links.LinkStore(context.Background(), commands.Meta{}, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1", StoreName: "가게"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "bill", "import", url, "--distributor-id", "d-1", "--idempotency-key", "erp-1", writeBills(t, "store_id,amount\ns-1,1000\n")); err != nil {
		t.Fatal(err)
	}
	other := writeBills(t, "store_id,amount\ns-1,2000\n")
	for range 2 {
		_, err := cli(t, "bill", "import", url, "--distributor-id", "d-1", "--idempotency-key", "erp-1", other)
		if exitCode(err) != exitRefused || err == nil || !strings.Contains(err.Error(), "idempotency_key_reused") {
			t.Fatalf("import under a used key: exit %d: %v", exitCode(err), err)
		}
		if msg := err.Error(); strings.Contains(msg, "run the same import again to finish") || !strings.Contains(msg, "running the same import again gets the same answer") {
			t.Fatalf("the refusal's advice: %v", err)
		}
	}
}

// TestBillImportOfMoreThanOneRequest: 1,001 lines (one per store: a file
// names a store once) go as two requests, and the same file again replays
// both.
func TestBillImportOfMoreThanOneRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("issues 1,001 bills")
	}
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	ctx := context.Background()
	// Every 125th line is for a linked store, the first and the last
	// (line 1002, in the second request) among them; the others are for
	// stores the distributor never linked.
	const every = 125
	for i := 0; i <= api.MaxBulkBills; i += every {
		if _, err := e.Commands.Links.LinkStore(ctx, commands.Meta{}, api.LinkStoreRequest{DistributorID: "d-1", StoreID: fmt.Sprintf("s-%d", i), StoreName: "가게"}); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	b.WriteString("store_id,amount\n")
	refused := 0
	for i := range api.MaxBulkBills + 1 {
		store := fmt.Sprintf("s-%d", i)
		if i%every != 0 {
			store, refused = fmt.Sprintf("s-unlinked-%d", i), refused+1
		}
		fmt.Fprintf(&b, "%s,%d\n", store, 1000+i)
	}
	file := writeBills(t, b.String())
	out, err := cli(t, "bill", "import", url, "--distributor-id", "d-1", file)
	want := fmt.Sprintf("1001 lines: %d issued, %d refused (in 2 requests)\n", 1001-refused, refused)
	if exitCode(err) != exitFailed || !strings.HasSuffix(out, want) {
		t.Fatalf("import: %v\n%s\nwant the summary %q", err, tail(out), want)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if first, last := lines[0], lines[api.MaxBulkBills]; !strings.HasPrefix(first, "line 2 ") || !strings.Contains(first, " bill_") ||
		!strings.HasPrefix(last, "line 1002 ") || !strings.Contains(last, " bill_") || !strings.Contains(lines[1], "refused store_not_linked") {
		t.Fatalf("line 2: %q, line 3: %q, line 1002: %q", first, lines[1], last)
	}
	seq := engineWrites(t, e).Last
	out, err = cli(t, "bill", "import", url, "--distributor-id", "d-1", file)
	again := strings.Split(strings.TrimSpace(out), "\n")
	if exitCode(err) != exitFailed || !strings.Contains(out, "this file was imported before; nothing new happened") || len(again) != len(lines)+1 || !slices.Equal(again[:len(lines)], lines) {
		t.Fatalf("import again: %v\n%s", err, tail(out))
	}
	if again := engineWrites(t, e).Last; again != seq {
		t.Fatalf("importing the same file again appended %d commits", again-seq)
	}
}

func makeBills(n int, memo string) []csvBill {
	bills := make([]csvBill, n)
	for i := range bills {
		bills[i] = csvBill{Line: i + 2, BillLine: api.BillLine{StoreID: fmt.Sprintf("s-%d", i), Amount: int64(1000 + i), Memo: memo}}
	}
	return bills
}

func chunkSizes(chunks []billChunk) []int {
	sizes := make([]int, len(chunks))
	for i, ch := range chunks {
		sizes[i] = len(ch.lines)
	}
	return sizes
}

// writeBills writes a bill file.
func writeBills(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "erp.csv")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seqOf is the seq a command's human output names.
func seqOf(t *testing.T, out string) uint64 {
	t.Helper()
	_, rest, ok := strings.Cut(out, "(seq ")
	var seq uint64
	if !ok {
		t.Fatalf("no seq in %q", out)
	}
	if _, err := fmt.Sscanf(rest, "%d)", &seq); err != nil {
		t.Fatalf("no seq in %q: %v", out, err)
	}
	return seq
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// What a distributor reads: a bill, its current bills, the payments and the
// expected settlement; and the unpaid reminder.
func TestBillQueriesAgainstARunningEngine(t *testing.T) {
	e, _ := startEngine(t, func(c *engine.Config) { c.StoreFeeBps = 100 })
	url := "--nats-url=" + e.ClientURL()
	out, err := cli(t, "store", "link", url, "--distributor-id", "d-q", "--store-id", "s-q", "--store-name", "한울식당", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var link api.LinkStoreReply
	if err := json.Unmarshal([]byte(out), &link); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "bill", "issue", url, "--distributor-id", "d-q", "--store-id", "s-q", "--amount", "50000", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bill api.IssueBillReply
	if err := json.Unmarshal([]byte(out), &bill); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Commands.Deposits.RecordDeposit(context.Background(), commands.Meta{}, api.RecordDepositRequest{
		BankTxnID: "t-q1", AccountNumber: link.DedicatedAccount.Number, DepositorName: "한울식당", Amount: 20000, DepositedAt: time.Now().UTC()})
	if err != nil || rep.BillID != bill.BillID {
		t.Fatalf("payment: %+v %v", rep, err)
	}
	seq := fmt.Sprint(rep.Seq)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"bill", "get", "--bill-id", bill.BillID, "--min-seq", seq}, []string{"partially_paid", "outstanding 30,000", "fee 200"}},
		{[]string{"bill", "active", "--distributor-id", "d-q", "--min-seq", seq}, []string{bill.BillID, "partially_paid"}},
		{[]string{"payment", "list", "--distributor-id", "d-q", "--min-seq", seq}, []string{"20,000", bill.BillID}},
		{[]string{"payment", "list", "--store-id", "s-q", "--min-seq", seq}, []string{"20,000"}},
		{[]string{"deposit", "get", "--deposit-id", string(rep.DepositID), "--min-seq", seq}, []string{"store_payment", "bill " + bill.BillID}},
		{[]string{"settlement", "expected", "--distributor-id", "d-q", "--min-seq", seq}, []string{"gross       20,000", "net       19,800"}},
		{[]string{"bill", "remind", "--distributor-id", "d-q"}, []string{"reminded 1 store(s): s-q"}},
		{[]string{"bill", "remind", "--distributor-id", "d-q", "--store-id", "s-q", "--store-id", "s-none"}, []string{"reminded 1 store(s): s-q", "  not s-none: not linked"}},
		{[]string{"bill", "remind", "--distributor-id", "d-q", "--store-id", "s-none"}, []string{"no store reminded\n  not s-none: not linked"}},
	} {
		out, err := cli(t, append(c.args, url)...)
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: %q lacks %q", c.args, out, w)
			}
		}
	}
	if _, err := cli(t, "payment", "list", url); exitCode(err) != exitUsage {
		t.Errorf("payment list without a distributor or a store: %v", err)
	}
}
