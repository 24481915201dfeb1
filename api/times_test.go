package api_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

var marshaler = reflect.TypeFor[json.Marshaler]()

// rawTimes lists the paths under t to a time.Time that encoding/json would
// write itself, with as few fractional digits as the value needs, instead
// of in domain.TimeLayout. A type with its own MarshalJSON is trusted to
// write its times (TestReconcileReplyWritesTimesInTheAPILayout tests the
// one there is).
func rawTimes(t reflect.Type, path string, seen map[reflect.Type]bool) []string {
	if t == reflect.TypeFor[time.Time]() {
		return []string{path}
	}
	if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) || seen[t] {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return rawTimes(t.Elem(), path+"[]", seen)
	case reflect.Struct:
		var out []string
		for f := range t.Fields() {
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			out = append(out, rawTimes(f.Type, path+"."+f.Name, seen)...)
		}
		return out
	}
	return nil
}

// Every reply writes its times as API.md says: RFC 3339 in UTC with
// fractional seconds, which a time.Time field does not (a whole second has
// none).
func TestRepliesWriteTimesInTheAPILayout(t *testing.T) {
	eps := api.Endpoints()
	for i, rt := range api.ReplyTypes() {
		for _, p := range rawTimes(rt, rt.String(), map[reflect.Type]bool{}) {
			t.Errorf("%s: reply field %s is a time.Time encoding/json writes itself", eps[i].Subject, p)
		}
	}
	if len(api.ReplyTypes()) != len(eps) {
		t.Fatalf("%d reply types for %d endpoints", len(api.ReplyTypes()), len(eps))
	}
}

// fill sets every exported field under v to a value that is not its zero:
// strings name their field, numbers are 7, times a whole second (the case
// encoding/json writes without a fraction), and slices and pointers hold one.
func fill(v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(name)
	case reflect.Int, reflect.Int64, reflect.Uint64:
		if v.CanInt() {
			v.SetInt(7)
		} else {
			v.SetUint(7)
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), name)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(v.Field(i), f.Name)
			}
		}
	default:
		panic("fill: no value for " + v.Type().String())
	}
}

var apiTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// stringsIn calls f with every string value under v (a decoded JSON value)
// and its path.
func stringsIn(v any, path string, f func(path, s string)) {
	switch v := v.(type) {
	case string:
		f(path, v)
	case []any:
		for _, e := range v {
			stringsIn(e, path+"[]", f)
		}
	case map[string]any:
		for k, e := range v {
			stringsIn(e, path+"."+k, f)
		}
	}
}

// A reconciliation's reply writes each of its times in domain.TimeLayout
// and loses nothing on the way: decoded, it is the run it encoded.
func TestReconcileReplyWritesTimesInTheAPILayout(t *testing.T) {
	var in api.ReconcileReply
	fill(reflect.ValueOf(&in).Elem(), "")
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out api.ReconcileReply
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("decoded reply differs from the one encoded:\n%s", b)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	times := 0
	stringsIn(tree, "", func(path, s string) {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return
		}
		times++
		if !apiTime.MatchString(s) {
			t.Errorf("%s = %q, want %s", path, s, domain.TimeLayout)
		}
	})
	// completed_at, period.from and .to, accounts[]: from, to,
	// scan_watermark, gap_from, and the at of one item in each of six lists.
	if times != 13 {
		t.Errorf("%d times in the reply, want 13:\n%s", times, b)
	}
}
