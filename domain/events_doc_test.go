package domain

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docEvent is what docs/events.md says of one event type: the schema
// version of its heading and the rows of its field table.
type docEvent struct {
	version int
	fields  map[string]docField
}

type docField struct {
	typ      string // the type column, e.g. "int, optional"
	optional bool
}

var (
	docHeading = regexp.MustCompile("^### `([a-z_]+\\.[a-z_]+)` \\(v([0-9]+)\\)\\s*$")
	docName    = regexp.MustCompile("`([a-z0-9_]+)`")
	docKey     = regexp.MustCompile(`[{,]\s*"([a-z0-9_]+)"`)
)

// parseEventsDoc reads the "### `type` (vN)" sections of docs/events.md and
// the field table under each; the first column may name several fields.
func parseEventsDoc(t *testing.T) (map[string]docEvent, string) {
	t.Helper()
	b, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]docEvent{}
	var cur *docEvent
	for _, line := range strings.Split(string(b), "\n") {
		if m := docHeading.FindStringSubmatch(line); m != nil {
			if _, dup := doc[m[1]]; dup {
				t.Errorf("docs/events.md: two sections for %s", m[1])
			}
			v, _ := strconv.Atoi(m[2])
			doc[m[1]] = docEvent{version: v, fields: map[string]docField{}}
			e := doc[m[1]]
			cur = &e
			continue
		}
		if strings.HasPrefix(line, "#") {
			cur = nil
			continue
		}
		if cur == nil || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 2 {
			t.Errorf("docs/events.md: a field row without a type: %s", line)
			continue
		}
		typ := strings.TrimSpace(cells[1])
		for _, n := range docName.FindAllStringSubmatch(cells[0], -1) {
			if _, dup := cur.fields[n[1]]; dup {
				t.Errorf("docs/events.md: field %s listed twice in one table", n[1])
			}
			cur.fields[n[1]] = docField{typ: typ, optional: strings.Contains(typ, "optional")}
		}
	}
	return doc, string(b)
}

// jsonFields returns the JSON fields of struct type rt as encoding/json
// writes them, embedded structs flattened, with whether each may be absent.
func jsonFields(rt reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func omitted(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
	for _, o := range strings.Split(opts, ",") {
		if o == "omitempty" || o == "omitzero" {
			return true
		}
	}
	return false
}

var timeType = reflect.TypeOf(time.Time{})

// docType is the word docs/events.md uses for a Go type.
func docType(rt reflect.Type) string {
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	switch {
	case rt == timeType:
		return "time"
	case rt.Kind() == reflect.String:
		return "string"
	case rt.Kind() == reflect.Bool:
		return "bool"
	case rt.Kind() >= reflect.Int && rt.Kind() <= reflect.Uint64:
		return "int"
	case rt.Kind() == reflect.Slice:
		return "list"
	case rt.Kind() == reflect.Struct, rt.Kind() == reflect.Map:
		return "object"
	}
	return rt.String()
}

// TestEventsDocMatchesCodec: docs/events.md has a section for every event
// type domain.Events() registers, at its schema version, whose table names
// exactly the payload's JSON fields, each with its type, and "optional"
// exactly for the fields the encoding omits when empty. An object written
// inline ({"bank","number","holder"}) names the nested struct's fields.
func TestEventsDocMatchesCodec(t *testing.T) {
	doc, text := parseEventsDoc(t)
	c := Events()
	names := make([]string, 0, len(c.types))
	for n := range c.types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		et := c.types[name]
		e, err := et.decode(json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		d, ok := doc[name]
		if !ok {
			t.Errorf("docs/events.md has no section \"### `%s` (v%d)\"", name, et.version)
			continue
		}
		if !strings.Contains(text, "| `"+name+"` |") {
			t.Errorf("docs/events.md: %s is missing from the table of event types", name)
		}
		if d.version != et.version {
			t.Errorf("docs/events.md: %s is documented at v%d, registered at v%d", name, d.version, et.version)
		}
		fields := jsonFields(reflect.TypeOf(e))
		for fname, f := range fields {
			df, ok := d.fields[fname]
			if !ok {
				t.Errorf("docs/events.md: %s: field %s (%s) is not documented", name, fname, f.Type)
				continue
			}
			if df.optional != omitted(f) {
				t.Errorf("docs/events.md: %s: field %s: documented optional=%v, but the JSON tag is %q", name, fname, df.optional, f.Tag.Get("json"))
			}
			want := docType(f.Type)
			got := strings.TrimSpace(strings.Split(strings.Trim(df.typ, "`"), ",")[0])
			switch {
			case strings.HasPrefix(df.typ, "`{"):
				got = "object"
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				var keys []string
				for _, k := range docKey.FindAllStringSubmatch(df.typ, -1) {
					keys = append(keys, k[1])
				}
				var wantKeys []string
				if ft.Kind() == reflect.Struct {
					for k := range jsonFields(ft) {
						wantKeys = append(wantKeys, k)
					}
				}
				sort.Strings(keys)
				sort.Strings(wantKeys)
				if !reflect.DeepEqual(keys, wantKeys) {
					t.Errorf("docs/events.md: %s: field %s is documented as %s, the struct has %v", name, fname, df.typ, wantKeys)
				}
			case strings.HasPrefix(got, "object"):
				got = "object"
			}
			if got != want {
				t.Errorf("docs/events.md: %s: field %s is documented as %q, but it is a %s (%s)", name, fname, df.typ, want, f.Type)
			}
		}
		for fname := range d.fields {
			if _, ok := fields[fname]; !ok {
				t.Errorf("docs/events.md: %s: documented field %s is not in %T", name, fname, e)
			}
		}
	}
	for name := range doc {
		if _, ok := c.types[name]; !ok {
			t.Errorf("docs/events.md documents %s, which domain.Events() does not register", name)
		}
	}
}
