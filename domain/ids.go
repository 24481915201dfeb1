package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// OrderID identifies an order. IDs are used as NATS subject tokens, so they
// are restricted to 1–64 characters of [A-Za-z0-9_-].
type OrderID string

// UserID identifies a buyer (and later a wallet owner).
type UserID string

// MaxIDLength is the longest ID accepted.
const MaxIDLength = 64

// ValidateID checks an ID supplied in field.
func ValidateID(field, id string) error {
	if id == "" {
		return Invalid(field, "is required")
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return Invalid(field, "may contain only letters A-Z a-z, digits, '_' and '-'")
		}
	}
	if len(id) > MaxIDLength { // bytes, and so characters: all are ASCII
		return Invalid(field, "must be at most %d characters", MaxIDLength)
	}
	return nil
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// MaxLedgerAccountLength is the longest ledger account name accepted.
const MaxLedgerAccountLength = 200

// ValidateLedgerAccount checks a ledger account name supplied in field: at
// most 200 characters, segments of [A-Za-z0-9_.-] separated by ':'
// ("liabilities:wallet:u-1", "assets:bank:110123456789"). Every account the
// engine posts to has this shape.
func ValidateLedgerAccount(field, name string) error {
	if name == "" {
		return Invalid(field, "is required")
	}
	for _, seg := range strings.Split(name, ":") {
		if seg == "" {
			return Invalid(field, "must be names separated by ':' (an empty name found)")
		}
		for i := 0; i < len(seg); i++ {
			if !idByte(seg[i]) && seg[i] != '.' {
				return Invalid(field, "may contain only letters A-Z a-z, digits, '_', '-', '.' and ':'")
			}
		}
	}
	if len(name) > MaxLedgerAccountLength { // bytes, and so characters: all are ASCII
		return Invalid(field, "must be at most %d characters", MaxLedgerAccountLength)
	}
	return nil
}

// visibleRune reports whether r prints as a character of its own: a letter,
// digit, punctuation or symbol, and not invisible (the Hangul fillers are
// letters to Unicode) nor the blank Braille pattern, a symbol that prints
// as nothing. (Marks print only on another character; spaces and format
// characters not at all.)
func visibleRune(r rune) bool {
	if r == '\u2800' || invisible(r) {
		return false
	}
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
}

// ValidateText checks a required free-text label supplied in field (a bank
// name, an account holder, a memo): something visible (not only blanks,
// marks or Hangul fillers), valid UTF-8, at most
// maxRunes characters, and nothing invisible or layout-changing: no control
// characters (newlines, tabs, NUL), no format characters (zero-width and
// bidirectional controls) and no line or paragraph separators, which a bank
// would refuse or print misleadingly.
func ValidateText(field, s string, maxRunes int) error {
	if strings.TrimSpace(s) == "" {
		return Invalid(field, "is required")
	}
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return Invalid(field, "must be at most %d characters, got %d", maxRunes, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return Invalid(field, "must not contain control, format or separator characters (found %U)", r)
		}
		if !unicode.IsGraphic(r) {
			// Unassigned, private use: nothing a bank prints.
			return Invalid(field, "must not contain unassigned or private-use characters (found %U)", r)
		}
		if r == unicode.ReplacementChar {
			// What JSON decoding makes of a lone surrogate (\ud800):
			// the text sent was not what would be stored.
			return Invalid(field, "must not contain U+FFFD, the replacement character (a lone surrogate escape decodes to it)")
		}
	}
	if !strings.ContainsFunc(s, visibleRune) {
		return Invalid(field, "must show something: it holds only blanks, marks or fillers")
	}
	return nil
}

// Clip returns s cut to at most n bytes at a rune boundary, with "…" when
// it was cut: what a refusal repeats of a client's value, so that the reply
// stays small however long the value (bill.issue_bulk answers up to 1,000
// lines in one message).
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
