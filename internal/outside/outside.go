// Package outside makes text an outside service wrote (a provider's
// failure reason or reference, an error body) safe to record and to show:
// the engine keeps it in events and prints it in the CLI, the console and
// the logs, and a provider, mistaken or hostile, could otherwise put
// terminal escape sequences, bidi overrides or megabytes there.
package outside

import (
	"strings"
	"unicode"
)

// Text returns s trimmed, with each control or format character (a
// terminal escape's ESC, a line break, a bidi override, a zero-width
// space) and each invalid UTF-8 byte replaced by U+FFFD, and cut to at
// most max bytes on a character boundary, "…" marking the cut.
func Text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return unicode.ReplacementChar
		}
		return r
	}, strings.ToValidUTF8(strings.TrimSpace(s), string(unicode.ReplacementChar)))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Snippet is Text of an answer's body.
func Snippet(b []byte, max int) string { return Text(string(b), max) }
