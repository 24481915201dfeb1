package eventstore_test

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/eventstore"
)

// section returns the text of docs/events.md from the line heading to the
// next heading of the same or a higher level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/events.md has no %q", heading)
	}
	rest := doc[i+len(heading)+2:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func tagNames(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestEventsDocDescribesTheCommit: the commit of docs/events.md (its JSON
// example) and its envelope table name exactly the JSON fields of Commit
// and Envelope.
func TestEventsDocDescribesTheCommit(t *testing.T) {
	b, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)

	commit := section(t, doc, "## Commit (one JetStream message)")
	start := strings.Index(commit, "```json")
	end := strings.Index(commit[start+1:], "```")
	if start < 0 || end < 0 {
		t.Fatal("docs/events.md: no JSON example of a commit")
	}
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`"([a-z_]+)":`).FindAllStringSubmatch(commit[start:start+1+end], -1) {
		keys[m[1]] = true
	}
	if got, want := sortedKeys(keys), tagNames(eventstore.Commit{}); !reflect.DeepEqual(got, want) {
		t.Errorf("docs/events.md: the commit example has the fields %v, eventstore.Commit %v", got, want)
	}

	fields := map[string]bool{}
	name := regexp.MustCompile("`([a-z_]+)`")
	for _, line := range strings.Split(section(t, doc, "## Envelope"), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			fields[m[1]] = true
		}
	}
	if got, want := sortedKeys(fields), tagNames(eventstore.Envelope{}); !reflect.DeepEqual(got, want) {
		t.Errorf("docs/events.md: the envelope table has the fields %v, eventstore.Envelope %v", got, want)
	}
}
