package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxDepth bounds how deeply a request body may nest objects and arrays.
// No request type nests more than three levels.
const maxDepth = 16

// decodeStrict decodes one JSON object into v, with a 400 invalid_input that
// names the problem (details.field: its JSON path) for anything but exactly
// one well-formed object of v's shape:
//   - a body that is not valid UTF-8, not an object, or has trailing data;
//   - a member name that is not exactly a field name of v — encoding/json
//     would match "Amount" to "amount"; here names are case-sensitive;
//   - a member that appears twice in one object, at any depth — encoding/json
//     would silently keep the last;
//   - a value of the wrong type.
//
// Names and repeats are checked by one pass over the tokens (checkMembers)
// against v's type, before encoding/json decodes the body.
//
// maxBody is the endpoint's limit on the body's size (api.Info.MaxBodyBytes).
func decodeStrict(data []byte, v any, maxBody int) error {
	if len(data) > maxBody {
		return badRequest("invalid_input", fmt.Sprintf("request body is larger than %d KiB", maxBody>>10), nil)
	}
	if !utf8.Valid(data) {
		return badRequest("invalid_input", "request body must be valid UTF-8", nil)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return badRequest("invalid_input", "request body must be a JSON object", nil)
	}
	if err := checkMembers(trimmed, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
			return malformed(err)
		case errors.As(err, &typ):
			field := jsonPath(typ.Field)
			return badRequest("invalid_input", field+": must be "+jsonKind(typ.Type.Kind().String()), map[string]any{"field": field})
		}
		return badRequest("invalid_input", "invalid request: "+err.Error(), nil)
	}
	return nil
}

func malformed(err error) error {
	return badRequest("invalid_input", "malformed JSON: "+err.Error(), nil)
}

// checkMembers reads the one JSON value of data and refuses member names
// that are not fields of t (compared exactly), members repeated within an
// object, values that t's own decoders refuse (a malformed time), nesting
// deeper than maxDepth, malformed JSON and trailing data.
func checkMembers(data []byte, t reflect.Type) error {
	c := checker{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	c.dec.UseNumber()
	if err := c.value(t, "", 0); err != nil {
		return err
	}
	if _, err := c.dec.Token(); err != io.EOF {
		return badRequest("invalid_input", "unexpected data after the JSON object", nil)
	}
	return nil
}

// checker walks a request body's tokens.
type checker struct {
	dec  *json.Decoder
	data []byte
}

// value reads one value. t is the Go type it decodes into; nil means a
// type whose members are not known here (an interface, a map's unknown
// element), where only repeats are refused.
func (c *checker) value(t reflect.Type, path string, depth int) error {
	start := c.dec.InputOffset()
	tok, err := c.dec.Token()
	if err != nil {
		return malformed(err)
	}
	if tok == nil && strings.HasSuffix(path, "]") && t != nil && t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		// null stands for an absent member; an array has no absent
		// elements, and a null object would be read as an empty one.
		return badRequest("invalid_input", path+": must be an object, not null", map[string]any{"field": path})
	}
	delim, isDelim := tok.(json.Delim)
	t, self := shapeOf(t)
	if isDelim {
		if depth >= maxDepth {
			return badRequest("invalid_input", "request body nests deeper than "+strconv.Itoa(maxDepth)+" levels", nil)
		}
		if err := c.members(delim, t, path, depth); err != nil {
			return err
		}
	}
	if self == nil {
		return scalarFits(tok, t, path)
	}
	// A type that decodes itself (time.Time): decode the value here, where
	// its field is known, so the error names it.
	raw := bytes.TrimLeft(c.data[start:c.dec.InputOffset()], " \t\r\n:,")
	err = reflect.New(self).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
	if err == nil && self == reflect.TypeFor[time.Time]() && !offsetInRange(raw) {
		err = errors.New("offset out of range")
	}
	if err != nil {
		msg := "is not valid: " + err.Error()
		if self == reflect.TypeFor[time.Time]() {
			msg = "must be an RFC 3339 time with an offset, such as 2026-11-22T01:14:44Z"
		}
		return badRequest("invalid_input", path+": "+msg, map[string]any{"field": path})
	}
	return nil
}

// offsetInRange reports whether the RFC 3339 time raw (a JSON string that
// time.Time decoded) has an offset RFC 3339 allows: Z, or ±HH:MM to
// ±23:59. encoding/json takes +24:00 and +23:60 (go.dev/issue/54580).
func offsetInRange(raw []byte) bool {
	s := strings.TrimSuffix(string(raw), `"`)
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") || len(s) < len("+00:00") {
		return true
	}
	off := s[len(s)-len("+00:00"):]
	return off[3] == ':' && off[1:3] <= "23" && off[4:6] <= "59"
}

// members reads the rest of an object or array whose opening delim was read.
func (c *checker) members(delim json.Delim, t reflect.Type, path string, depth int) error {
	switch delim {
	case '{':
		var members structMembers
		if t != nil && t.Kind() == reflect.Struct {
			members = membersOf(t)
		}
		fields, required := members.fields, members.required
		seen := map[string]bool{}
		var given map[string]bool // the required members given, not null
		if len(required) > 0 {
			given = map[string]bool{}
		}
		for c.dec.More() {
			tok, err := c.dec.Token()
			if err != nil {
				return malformed(err)
			}
			name, _ := tok.(string)
			field := joinPath(path, name)
			if seen[name] {
				return badRequest("invalid_input", "field "+strconv.Quote(field)+" appears more than once", map[string]any{"field": field})
			}
			seen[name] = true
			var ft reflect.Type
			switch {
			case fields != nil:
				var known bool
				if ft, known = fields[name]; !known {
					return unknownField(field, name, fields)
				}
			case t != nil && t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			start := c.dec.InputOffset()
			if err := c.value(ft, field, depth+1); err != nil {
				return err
			}
			if given != nil {
				raw := bytes.TrimLeft(c.data[start:c.dec.InputOffset()], " \t\r\n:")
				given[name] = !bytes.Equal(raw, []byte("null"))
			}
		}
		for _, name := range required {
			if !given[name] {
				field := joinPath(path, name)
				return badRequest("invalid_input", field+": is required", map[string]any{"field": field})
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; c.dec.More(); i++ {
			if err := c.value(elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := c.dec.Token(); err != nil { // the closing delimiter
		return malformed(err)
	}
	return nil
}

func unknownField(field, name string, fields map[string]reflect.Type) error {
	for known := range fields {
		if strings.EqualFold(known, name) {
			return badRequest("invalid_input", "unknown field "+strconv.Quote(field)+": field names are case-sensitive (did you mean "+strconv.Quote(known)+"?)",
				map[string]any{"field": field})
		}
	}
	return badRequest("invalid_input", "unknown field "+strconv.Quote(field), map[string]any{"field": field})
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// shapeOf returns, for a value decoded into t, the type whose members are
// checked (pointers followed; nil for a type that decodes itself or is not
// known) and the type that decodes itself (nil if none), whose
// UnmarshalJSON then checks the value.
func shapeOf(t reflect.Type) (shape, self reflect.Type) {
	for t != nil {
		if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
			return nil, t
		}
		if t.Kind() != reflect.Pointer {
			return t, nil
		}
		t = t.Elem()
	}
	return nil, nil
}

// structMembers is what the strict decoder knows of a struct type: its JSON
// members and their types, as encoding/json names them (the json tag's
// name or the Go name, "-" left out, the fields of untagged embedded
// structs promoted, a field of the outer struct winning over a promoted
// one of the same name), and those of them that must be given, not null:
// the fields tagged bankbook:"required", where the zero value would pass
// validation and so cannot tell a missing member from one given as 0 (a
// payout report line's fee).
type structMembers struct {
	fields   map[string]reflect.Type
	required []string
}

// requiredTag is the tag key of a field that must be given (structMembers).
const requiredTag = "bankbook"

// structMembersCache caches membersOf by type.
var structMembersCache sync.Map // reflect.Type → structMembers

// membersOf returns the members of struct type t.
func membersOf(t reflect.Type) structMembers {
	if s, ok := structMembersCache.Load(t); ok {
		return s.(structMembers)
	}
	s := structMembers{fields: map[string]reflect.Type{}}
	var promoted []structMembers
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				promoted = append(promoted, membersOf(ft))
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s.fields[name] = f.Type
		if f.Tag.Get(requiredTag) == "required" {
			s.required = append(s.required, name)
		}
	}
	for _, p := range promoted {
		for _, name := range p.required {
			if _, shadowed := s.fields[name]; !shadowed && !slices.Contains(s.required, name) {
				s.required = append(s.required, name)
			}
		}
		for name, ft := range p.fields {
			if _, ok := s.fields[name]; !ok {
				s.fields[name] = ft
			}
		}
	}
	structMembersCache.Store(t, s)
	return s
}

// scalarFits refuses a scalar token (or an object or array) where t, a
// number, string or bool, wants another, naming the value by its whole path
// (lines[3].amount; encoding/json would say lines.amount). null is left to
// encoding/json, which leaves the field as it is.
func scalarFits(tok json.Token, t reflect.Type, path string) error {
	if t == nil || tok == nil {
		return nil
	}
	var ok bool
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, isNum := tok.(json.Number)
		_, err := strconv.ParseInt(string(n), 10, t.Bits())
		ok = isNum && err == nil
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		n, isNum := tok.(json.Number)
		_, err := strconv.ParseUint(string(n), 10, t.Bits())
		ok = isNum && err == nil
	case reflect.String:
		_, ok = tok.(string)
	case reflect.Bool:
		_, ok = tok.(bool)
	case reflect.Struct, reflect.Map:
		ok = tok == json.Delim('{')
	case reflect.Slice, reflect.Array:
		ok = tok == json.Delim('[')
	default:
		return nil
	}
	if ok {
		return nil
	}
	return badRequest("invalid_input", path+": must be "+jsonKind(t.Kind().String()), map[string]any{"field": path})
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "an integer in range"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "of another type"
}

// jsonPath turns encoding/json's field path into the request's: the names
// of embedded Go structs (PageRequest.ReadAfter.min_seq) are not part of the
// JSON, whose names are lower-case.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" && !unicode.IsUpper(rune(p[0])) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ".")
}
