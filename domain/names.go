package domain

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// DepositorSuffixes is how many distinct three-digit suffixes a buyer name has.
const DepositorSuffixes = 1000

// MaxBuyerNameLength is the longest buyer name accepted, in runes.
const MaxBuyerNameLength = 64

var folder = cases.Fold()

// NormalizeName is the form in which depositor names are compared:
// compatibility forms mapped to their plain characters (Unicode NFKC:
// full-width "ＢＯＢ１２３" is "BOB123", half-width katakana is full-width,
// Hangul compatibility jamo are jamo, ligatures are letters), letters
// case-folded, white space and invisible characters (stripInvisible: the
// zero-width space, byte-order mark, soft hyphen, bidi controls, variation
// selectors, Hangul fillers…) removed. Two names
// that a bank clerk would call the same ("김민수 042", "김민수042", a
// decomposed Hangul sequence from a macOS keyboard, or a name a bank app
// typed in full-width) normalise to the same string.
//
// NFKC runs first, because it can produce white space (U+00A8 "¨" is a
// space and a combining diaeresis), and again last, so characters that only
// become neighbours once the white space is gone are composed too; the
// result is a fixed point.
func NormalizeName(s string) string {
	return norm.NFKC.String(strings.Map(foldCherokee, stripInvisible(folder.String(norm.NFKC.String(s)))))
}

// foldCherokee finishes case folding for Cherokee, which Unicode folds to
// its upper case (CaseFolding.txt) and golang.org/x/text/cases.Fold swaps
// with its lower case, so that folding twice would undo it.
func foldCherokee(r rune) rune {
	switch {
	case r >= 0xAB70 && r <= 0xABBF:
		return r - 0xAB70 + 0x13A0
	case r >= 0x13F8 && r <= 0x13FD:
		return r - 8
	}
	return r
}

// SameName reports whether two depositor names are the same name once
// normalised.
func SameName(a, b string) bool { return NormalizeName(a) == NormalizeName(b) }

// stripInvisible removes white space and the characters that show nothing
// (Unicode's default ignorable code points: format characters such as the
// zero-width space, byte-order mark, soft hyphen and bidi controls;
// variation selectors; the combining grapheme joiner; the Hangul fillers),
// which no one can type into a bank's depositor field.
func stripInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || invisible(r) {
			return -1
		}
		return r
	}, s)
}

// invisible reports whether r is a default ignorable code point: one that
// shows nothing where it is not supported, or at all (Unicode's derived
// property, made of Cf, the variation selectors and
// Other_Default_Ignorable_Code_Point).
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// ValidateBuyerName checks the buyer name of an order: 1 to
// MaxBuyerNameLength characters, printable, at least one letter or digit
// that shows (not a Hangul filler: it is removed from the depositor name
// like every invisible character), and no bidirectional control characters
// (Unicode Bidi_Control: U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069). The name is kept as given; the depositor name made from
// it has no invisible characters.
func ValidateBuyerName(name string) error { return ValidateName("buyer_name", name) }

// ValidateName checks a person's name supplied in field by the rules of
// ValidateBuyerName: a depositor name as a bank or an operator gives it.
func ValidateName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return Invalid(field, "is required")
	}
	if n := len([]rune(name)); n > MaxBuyerNameLength {
		return Invalid(field, "must be at most %d characters, got %d", MaxBuyerNameLength, n)
	}
	for _, r := range name {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return Invalid(field, "must be printable UTF-8")
		}
		if unicode.Is(unicode.Bidi_Control, r) {
			// They reorder how the name is shown (U+202E shows "BOB123"
			// as "321BOB"); no name needs them.
			return Invalid(field, "must not contain bidirectional control characters (U+%04X)", r)
		}
	}
	if !hasVisibleLetter(name) {
		return Invalid(field, "must contain a letter or a digit")
	}
	return nil
}

// ValidateNewBuyerName checks the buyer name of a new order: the rules of
// ValidateBuyerName, and nothing a bank's depositor field cannot carry. A
// private-use, unassigned or surrogate code point is neither printable nor
// removed from the depositor name like an invisible character, so the
// buyer could not type the name the order waits for. (A bank's own report
// of such a name, deposit.record, is still taken: the money has arrived.)
func ValidateNewBuyerName(name string) error {
	if err := ValidateBuyerName(name); err != nil {
		return err
	}
	for _, r := range name {
		if unicode.In(r, unicode.Zl, unicode.Zp) {
			// White space to the depositor name, but a line break
			// wherever the buyer name is shown (console, CLI, exports).
			return Invalid("buyer_name", "must not contain line or paragraph separators (found %U)", r)
		}
		if !unicode.IsGraphic(r) && !unicode.IsSpace(r) && !invisible(r) {
			return Invalid("buyer_name", "must be printable: no private-use or unassigned characters (found %U)", r)
		}
	}
	// The letter that shows must survive into the depositor name: NFKC
	// makes some letters a space and a combining mark (U+037A, the Arabic
	// isolated vowel forms U+FE70…), which would leave the buyer a bare
	// diacritic to type before the suffix.
	if !hasVisibleLetter(depositorBase(name)) {
		return Invalid("buyer_name", "must contain a letter or a digit that stays in the depositor name (in NFKC, this one leaves only marks)")
	}
	return nil
}

// hasVisibleLetter reports whether s holds a letter or a digit that shows.
func hasVisibleLetter(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return (unicode.IsLetter(r) || unicode.IsNumber(r)) && !invisible(r) }) >= 0
}

// depositorBase is the buyer name as the depositor name is made of it,
// before the cut and the suffix.
func depositorBase(buyerName string) string {
	return norm.NFKC.String(stripInvisible(norm.NFKC.String(buyerName)))
}

// DepositorName builds the name a buyer writes on the transfer: the buyer
// name in NFKC (full-width and other compatibility forms become the plain
// characters any bank keyboard types) with white space and invisible
// characters removed, cut so that with the three-digit suffix it fits
// maxRunes (banks truncate the depositor field, often to 10–20 characters,
// and a truncated suffix could never match), then the suffix. Letter case is
// kept: it is what the buyer sees.
func DepositorName(buyerName string, suffix, maxRunes int) string {
	base := []rune(depositorBase(buyerName))
	if keep := maxRunes - 3; keep > 0 && len(base) > keep {
		base = base[:keep]
	}
	return fmt.Sprintf("%s%03d", string(base), suffix%DepositorSuffixes)
}

// SuffixOrder returns the first n (at most DepositorSuffixes) of the order
// in which the suffixes 0..999 are tried for a new order. It is a
// permutation derived from seed (the order ID), so a retried command tries
// the same names in the same order and finds its own reservation first.
func SuffixOrder(seed string, n int) []int {
	// FNV-1a of the seed picks a start and a stride coprime with 1000 (odd
	// and not a multiple of 5), which visits every suffix exactly once.
	f := fnv.New64a()
	f.Write([]byte(seed))
	h := f.Sum64()
	start := int(h % DepositorSuffixes)
	stride := int((h>>32)%500)*2 + 1
	if stride%5 == 0 {
		stride += 2
	}
	out := make([]int, min(max(n, 0), DepositorSuffixes))
	for i := range out {
		out[i] = (start + i*stride) % DepositorSuffixes
	}
	return out
}
