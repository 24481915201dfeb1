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

// NormalizeName is the form in which depositor names are compared: white
// space and invisible format characters removed, letters case-folded, Unicode
// NFC. Two names that a bank clerk would call the same ("김민수 042",
// "김민수042", or a decomposed Hangul sequence from a macOS keyboard)
// normalise to the same string. Composition runs last, so characters that
// only become neighbours once the white space is gone are composed too.
func NormalizeName(s string) string {
	return norm.NFC.String(folder.String(stripInvisible(s)))
}

// stripInvisible removes white space and format characters (zero-width
// space, byte-order mark, soft hyphen…), which no one can type into a bank's
// depositor field.
func stripInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}

// ValidateBuyerName checks the buyer name of an order.
func ValidateBuyerName(name string) error {
	if strings.TrimSpace(name) == "" {
		return Invalid("buyer_name", "is required")
	}
	if n := len([]rune(name)); n > MaxBuyerNameLength {
		return Invalid("buyer_name", "must be at most %d characters, got %d", MaxBuyerNameLength, n)
	}
	visible := false
	for _, r := range name {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return Invalid("buyer_name", "must be printable UTF-8")
		}
		visible = visible || unicode.IsLetter(r) || unicode.IsNumber(r)
	}
	if !visible {
		return Invalid("buyer_name", "must contain a letter or a digit")
	}
	return nil
}

// DepositorName builds the name a buyer writes on the transfer: the buyer name
// with white space and invisible characters removed, in NFC, cut so that with the three-digit suffix it
// fits maxRunes (banks truncate the depositor field, often to 10–20
// characters, and a truncated suffix could never match), then the suffix.
func DepositorName(buyerName string, suffix, maxRunes int) string {
	base := []rune(norm.NFC.String(stripInvisible(buyerName)))
	if keep := maxRunes - 3; keep > 0 && len(base) > keep {
		base = base[:keep]
	}
	return fmt.Sprintf("%s%03d", string(base), suffix%DepositorSuffixes)
}

// SuffixOrder returns the order in which the suffixes 0..999 are tried for a
// new order. It is a permutation derived from seed (the order ID), so a retried
// command tries the same names in the same order and finds its own
// reservation first.
func SuffixOrder(seed string) []int {
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
	out := make([]int, DepositorSuffixes)
	for i := range out {
		out[i] = (start + i*stride) % DepositorSuffixes
	}
	return out
}
