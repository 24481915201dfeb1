package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 64 << 10

// decodeStrict decodes one JSON object into v, rejecting unknown fields,
// wrong types and trailing data with a 400 that names the problem.
func decodeStrict(data []byte, v any) error {
	if len(data) > MaxBodyBytes {
		return badRequest("invalid_input", "request body is larger than 64 KiB", nil)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return badRequest("invalid_input", "request body must be a JSON object", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("invalid_input", "malformed JSON: "+err.Error(), nil)
		case errors.As(err, &typ):
			field := jsonPath(typ.Field)
			return badRequest("invalid_input", field+": must be "+jsonKind(typ.Type.Kind().String()), map[string]any{"field": field})
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// encoding/json has no typed error for unknown fields.
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest("invalid_input", "unknown field "+field, map[string]any{"field": field})
		}
		return badRequest("invalid_input", "invalid request: "+err.Error(), nil)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_input", "unexpected data after the JSON object", nil)
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint64":
		return "an integer in range"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
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
