package domain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/bankbook/bankbook/domain"
)

func TestNormalizeNameEquates(t *testing.T) {
	nfd := norm.NFD.String("김민수042")
	if n := utf8.RuneCountInString(nfd); n != 11 { // 김 민: 3 jamo each, 수: 2, and 3 digits
		t.Fatalf("fixture %q has %d runes, want 11 (decomposed)", nfd, n)
	}
	tests := []struct {
		name string
		a, b string
	}{
		{"space before digits", "김민수 042", "김민수042"},
		{"spaces everywhere", " 김 민 수 0 4 2 ", "김민수042"},
		{"decomposed Hangul (NFD, macOS keyboard)", nfd, "김민수042"},
		{"decomposed Hangul with a space", norm.NFD.String("김민수 042"), "김민수042"},
		{"tab", "김민수\t042", "김민수042"},
		{"newline", "김민수\n042", "김민수042"},
		{"no-break space U+00A0", "김민수\u00a0042", "김민수042"},
		{"ideographic space U+3000", "김민수\u3000042", "김민수042"},
		{"em space U+2003", "김민수\u2003042", "김민수042"},
		{"Latin upper and lower case", "KIM", "kim"},
		{"Latin mixed case with digits", "Kim001", "KIM001"},
		{"German sharp s folds to ss", "STRASSE", "straße"},
		{"precomposed and combining accent", "Rene\u0301", "René"},
		{"Greek final sigma", "ΣΟΦΙΑ", "σοφια"},
		// NFKC: what a bank app or an IME may type instead of the plain form.
		{"full-width Latin and digits (NFKC)", "ＢＯＢ１２３", "BOB123"},
		{"full-width Latin, folded", "ｂｏｂ１２３", "BOB123"},
		{"full-width digits after Hangul", "김민수０４２", "김민수042"},
		{"half-width katakana", "ｷﾑﾗ042", "キムラ042"},
		{"ligature", "ﬁona001", "fiona001"},
		{"modifier capital letter folds after NFKC", "ᴮob001", "bob001"},
		{"Cherokee upper and lower case", "ᏣᎳᎩ001", "ꮳꮃꭹ001"},
		// Invisible and bidi controls are removed.
		{"right-to-left override", "BOB\u202e123", "BOB123"},
		{"left-to-right mark", "\u200eBOB123", "BOB123"},
		{"isolates", "\u2066BOB\u2069123", "BOB123"},
		{"zero-width space", "BOB\u200b123", "BOB123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na, nb := domain.NormalizeName(tt.a), domain.NormalizeName(tt.b)
			if na != nb {
				t.Fatalf("NormalizeName(%q) = %q, NormalizeName(%q) = %q; want equal", tt.a, na, tt.b, nb)
			}
		})
	}
}

func TestNormalizeNameDistinguishes(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"different suffix", "김민수042", "김민수043"},
		{"different syllable", "김민수042", "김민서042"},
		{"different Latin letter", "kim001", "kin001"},
		{"extra digit", "kim001", "kim0010"},
		{"full-width and another name", "ＢＯＢ１２３", "BOB124"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if na, nb := domain.NormalizeName(tt.a), domain.NormalizeName(tt.b); na == nb {
				t.Fatalf("NormalizeName(%q) == NormalizeName(%q) == %q; want different", tt.a, tt.b, na)
			}
		})
	}
}

func TestNormalizeNameForm(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"Hangul unchanged", "김민수042", "김민수042"},
		{"NFD composed", norm.NFD.String("김민수"), "김민수"},
		{"white space removed", "\t김 민\u00a0수\u3000 ", "김민수"},
		{"Latin folded", "Kim MINSU", "kimminsu"},
		{"only white space", " \t\u3000", ""},
		{"full-width to ASCII, folded", "ＢＯＢ１２３", "bob123"},
		{"bidi controls removed", "\u202bBOB\u202c\u200f123", "bob123"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.NormalizeName(tt.in); got != tt.want {
				t.Fatalf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNormalizeNameIdempotentAcrossRemovedWhitespace: NormalizeName composes
// (NFC) before it removes white space, so white space that separated a base
// character from a combining mark, or two conjoining Hangul jamo, leaves an
// uncomposed sequence behind. The result is not NFC, is not a fixed point of
// NormalizeName, and differs from the normal form of the canonically
// equivalent composed name.
func TestNormalizeNameIdempotentAcrossRemovedWhitespace(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		composed string
	}{
		{"Latin base, space, combining acute", "Rene \u0301", "René"},
		{"Hangul leading jamo, space, vowel jamo", "\u1100 \u1161", "가"},
		{"decomposed Hangul name with spaces between jamo", "\u1100 \u1175\u11b7민수", "김민수"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			once := domain.NormalizeName(tt.in)
			if twice := domain.NormalizeName(once); twice != once {
				t.Errorf("NormalizeName not idempotent: %q -> %q -> %q", tt.in, once, twice)
			}
			if !norm.NFC.IsNormalString(once) {
				t.Errorf("NormalizeName(%q) = %q is not NFC", tt.in, once)
			}
			if want := domain.NormalizeName(tt.composed); once != want {
				t.Errorf("NormalizeName(%q) = %q, want %q (same as %q once white space is gone)", tt.in, once, want, tt.composed)
			}
		})
	}
}

func TestDepositorName(t *testing.T) {
	long := strings.Repeat("김민수박", 7) + "이준" // 30 runes
	if n := utf8.RuneCountInString(long); n != 30 {
		t.Fatalf("fixture has %d runes, want 30", n)
	}
	tests := []struct {
		name     string
		buyer    string
		suffix   int
		maxRunes int
		want     string
	}{
		{"short name zero-padded suffix", "김민수", 7, 20, "김민수007"},
		{"suffix zero", "김민수", 0, 20, "김민수000"},
		{"suffix 42", "김민수", 42, 20, "김민수042"},
		{"suffix 999", "김민수", 999, 20, "김민수999"},
		{"suffix reduced modulo 1000", "김민수", 1042, 20, "김민수042"},
		{"white space removed", " 김 민\t수\u3000", 42, 20, "김민수042"},
		{"decomposed Hangul composed", norm.NFD.String("김민수"), 42, 20, "김민수042"},
		{"Latin case kept", "Kim Minsu", 1, 20, "KimMinsu001"},
		{"30-rune name cut to 10", long, 42, 10, string([]rune(long)[:7]) + "042"},
		{"30-rune name cut to 20", long, 42, 20, string([]rune(long)[:17]) + "042"},
		{"exactly fits", "김민수박이준이", 5, 10, "김민수박이준이005"},
		{"one rune over", "김민수박이준이김", 5, 10, "김민수박이준이005"},
		{"white space does not count toward the limit", "김 민 수 박 이 준 이", 5, 10, "김민수박이준이005"},
		{"max 4 keeps one rune", "김민수", 5, 4, "김005"},
		{"full-width becomes ASCII (NFKC), case kept", "ＢＯＢ", 42, 10, "BOB042"},
		{"compatibility form expanded before the cut", "㈜뱅크북", 1, 10, "(주)뱅크북001"},
		{"expansion counts toward the limit", "㈜뱅크북입니다", 1, 10, "(주)뱅크북입001"},
		{"bidi controls removed", "\u202eBOB\u202c", 7, 10, "BOB007"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := domain.DepositorName(tt.buyer, tt.suffix, tt.maxRunes)
			if got != tt.want {
				t.Fatalf("DepositorName(%q, %d, %d) = %q, want %q", tt.buyer, tt.suffix, tt.maxRunes, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > tt.maxRunes {
				t.Errorf("result has %d runes, more than %d", n, tt.maxRunes)
			}
		})
	}
}

// TestDepositorNameProperties checks DepositorName on random names: the
// result fits maxRunes (for maxRunes ≥ 4), ends with the three-digit suffix,
// has no white space, is NFC, and is a prefix of the buyer name without white
// space followed by the suffix.
func TestDepositorNameProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	alphabet := []rune("김민수박이준서연지우하은 \t\u3000\u00a0abcXYZ-'.0123456789éÅＢｏ１ｷﾑ㈜\u202e\u200b")
	for i := range 2000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		buyer := b.String()
		if rng.IntN(4) == 0 {
			buyer = norm.NFD.String(buyer)
		}
		maxRunes := 4 + rng.IntN(27)
		suffix := rng.IntN(5000)

		got := domain.DepositorName(buyer, suffix, maxRunes)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("case %d (seed %d): DepositorName(%q, %d, %d) = %q: %s", i, seed, buyer, suffix, maxRunes, got, fmt.Sprintf(format, args...))
		}
		if n := utf8.RuneCountInString(got); n > maxRunes {
			fail("%d runes, more than %d", n, maxRunes)
		}
		if len(got) < 3 {
			fail("shorter than the suffix")
		}
		digits := got[len(got)-3:]
		for _, c := range []byte(digits) {
			if c < '0' || c > '9' {
				fail("does not end with three ASCII digits")
			}
		}
		if want := fmt.Sprintf("%03d", suffix%1000); digits != want {
			fail("suffix %q, want %q", digits, want)
		}
		if strings.IndexFunc(got, unicode.IsSpace) >= 0 {
			fail("contains white space")
		}
		if !norm.NFKC.IsNormalString(got) {
			fail("not NFKC")
		}
		base := strings.Join(strings.Fields(strings.NewReplacer("\u202e", "", "\u200b", "").Replace(norm.NFKC.String(buyer))), "")
		prefix := got[:len(got)-3]
		if !strings.HasPrefix(base, prefix) {
			fail("%q is not a prefix of %q", prefix, base)
		}
		if utf8.RuneCountInString(base) <= maxRunes-3 && prefix != base {
			fail("cut %q although it fits", base)
		}
	}
}

func TestSuffixOrderIsPermutation(t *testing.T) {
	seeds := []string{"", "o-1", "o-2", "01J9Z8X7W6V5T4S3R2Q1P0N9M8", strings.Repeat("x", 64)}
	for i := range 300 {
		seeds = append(seeds, fmt.Sprintf("order-%d", i))
	}
	for _, seed := range seeds {
		order := domain.SuffixOrder(seed, domain.DepositorSuffixes)
		if len(order) != domain.DepositorSuffixes {
			t.Fatalf("SuffixOrder(%q) has %d values, want %d", seed, len(order), domain.DepositorSuffixes)
		}
		seen := make([]bool, domain.DepositorSuffixes)
		for i, v := range order {
			if v < 0 || v >= domain.DepositorSuffixes {
				t.Fatalf("SuffixOrder(%q)[%d] = %d, out of 0..999", seed, i, v)
			}
			if seen[v] {
				t.Fatalf("SuffixOrder(%q) repeats %d at index %d", seed, v, i)
			}
			seen[v] = true
		}
	}
}

func TestSuffixOrderDeterministic(t *testing.T) {
	for _, seed := range []string{"", "o-1", "order-42"} {
		a, b := domain.SuffixOrder(seed, domain.DepositorSuffixes), domain.SuffixOrder(seed, domain.DepositorSuffixes)
		if !slices.Equal(a, b) {
			t.Fatalf("SuffixOrder(%q) differs between calls", seed)
		}
		// A prefix is the start of the whole order; n is clamped.
		if p := domain.SuffixOrder(seed, 64); !slices.Equal(p, a[:64]) {
			t.Fatalf("SuffixOrder(%q, 64) = %v, want the first 64 of %v", seed, p, a)
		}
		if n := len(domain.SuffixOrder(seed, 5000)); n != domain.DepositorSuffixes {
			t.Fatalf("SuffixOrder(%q, 5000) has %d values", seed, n)
		}
		if n := len(domain.SuffixOrder(seed, -1)); n != 0 {
			t.Fatalf("SuffixOrder(%q, -1) has %d values", seed, n)
		}
	}
}

func TestSuffixOrderDependsOnSeed(t *testing.T) {
	seeds := []string{"o-1", "o-2", "o-3", "o-4", "o-5", "o-6", "o-7", "o-8"}
	firsts := map[int]bool{}
	for i, seed := range seeds {
		order := domain.SuffixOrder(seed, domain.DepositorSuffixes)
		firsts[order[0]] = true
		for _, other := range seeds[:i] {
			if slices.Equal(order, domain.SuffixOrder(other, domain.DepositorSuffixes)) {
				t.Errorf("SuffixOrder(%q) == SuffixOrder(%q)", seed, other)
			}
		}
	}
	if len(firsts) < len(seeds)/2 {
		t.Errorf("only %d distinct first suffixes for %d seeds: %v", len(firsts), len(seeds), firsts)
	}
}

// TestValidateBuyerNameRejectsInvisibleNames: ValidateBuyerName promises
// "printable UTF-8" and requires a name, but it rejects only white space and
// Cc controls. A name made only of invisible format characters (Cf: zero-width
// space, word joiner, byte-order mark, soft hyphen) passes, and its depositor
// name is just the three digits behind invisible characters that
// NormalizeName keeps, so a deposit written as the visible "042" never
// matches it.
func TestValidateBuyerNameRejectsInvisibleNames(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"zero-width space", "\u200b"},
		{"zero-width space and word joiner", "\u200b\u2060"},
		{"byte-order mark", "\ufeff"},
		{"soft hyphen", "\u00ad"},
		// Letters to Unicode that show nothing; the depositor name drops them.
		{"Hangul filler", "\u3164"},
		{"Hangul choseong filler", "\u115f"},
		{"half-width Hangul filler", "\uffa0"},
		{"fillers and a variation selector", "\u3164\u1160\ufe0f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(domain.ValidateBuyerName(tt.input), domain.ErrInvalidInput) {
				t.Errorf("ValidateBuyerName(%q) accepts an invisible name; its depositor name is %q",
					tt.input, domain.DepositorName(tt.input, 42, 20))
			}
		})
	}
}

// TestValidateBuyerNameRefusesBidiControls: bidi controls change how a
// name is shown ("BOB\u202e321" shows as "BOB123"), so a buyer name must not
// hold them; other invisible characters are accepted in a visible name and
// removed from its depositor name.
func TestValidateBuyerNameRefusesBidiControls(t *testing.T) {
	refused := []struct{ name, input string }{
		{"right-to-left override", "BOB\u202e321"},
		{"left-to-right embedding", "\u202aBOB\u202c"},
		{"right-to-left isolate", "\u2067김민수\u2069"},
		{"right-to-left mark", "김민수\u200f"},
		{"left-to-right mark", "\u200e김민수"},
		{"Arabic letter mark", "BOB\u061c"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidateBuyerName(tt.input)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if de.Details["field"] != "buyer_name" {
				t.Errorf("details = %v, want field buyer_name", de.Details)
			}
		})
	}
	accepted := []struct{ name, input, depositor string }{
		{"full-width", "ＢＯＢ", "BOB042"},
		{"zero-width space inside", "BOB\u200b", "BOB042"},
		{"zero-width joiner in an emoji", "Kim👩\u200d💻", "Kim👩💻042"},
		// Characters that show nothing but are not format characters:
		// a variation selector, the combining grapheme joiner, a filler.
		{"variation selector", "\ufe0f김", "김042"},
		{"combining grapheme joiner", "김\u034f\u180e", "김042"},
		{"Hangul filler beside a letter", "김\u3164", "김042"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if err := domain.ValidateBuyerName(tt.input); err != nil {
				t.Fatalf("ValidateBuyerName(%q) = %v", tt.input, err)
			}
			if got := domain.DepositorName(tt.input, 42, 20); got != tt.depositor {
				t.Errorf("DepositorName(%q) = %q, want %q", tt.input, got, tt.depositor)
			}
		})
	}
}

func TestSameName(t *testing.T) {
	if !domain.SameName("ＢＯＢ１２３", "bob 123") {
		t.Error(`SameName("ＢＯＢ１２３", "bob 123") = false`)
	}
	// What a buyer typed, as it shows, is the name with invisible characters.
	if !domain.SameName("김226", "\ufe0f김\u034f226") || !domain.SameName("김226", "김\u3164226") {
		t.Error("SameName does not ignore variation selectors, the grapheme joiner or Hangul fillers")
	}
	if domain.SameName("BOB123", "BOB124") {
		t.Error(`SameName("BOB123", "BOB124") = true`)
	}
}

// TestValidateNewBuyerNameNeedsALetterInTheDepositorName: a letter that
// NFKC turns into a space and a combining mark (U+037A GREEK
// YPOGEGRAMMENI, the Arabic isolated vowel forms U+FE70…) shows by itself
// in the buyer name, but the depositor name made of it holds only the bare
// mark before the suffix ("\u0345042"): the buyer is asked to type a
// diacritic on nothing, and a transfer written "042" is an orphan. Such a
// name is refused like a name of Hangul fillers; a name with a letter left
// beside the mark is not.
func TestValidateNewBuyerNameNeedsALetterInTheDepositorName(t *testing.T) {
	refused := []struct{ name, input string }{
		{"Greek ypogegrammeni", "\u037a"},
		{"Arabic fathatan isolated form", "\ufe70"},
		{"Arabic isolated forms with spaces", "\ufe70 \ufe72\u3000\ufe74"},
		{"ypogegrammeni and a Hangul filler", "\u037a\u3164"},
		{"a line separator between letters", "김\u2028민수"},
		{"a paragraph separator after a letter", "김\u2029"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidateNewBuyerName(tt.input)
			if !errors.Is(err, domain.ErrInvalidInput) {
				t.Fatalf("ValidateNewBuyerName(%q) = %v, want invalid input; its depositor name is %q",
					tt.input, err, domain.DepositorName(tt.input, 42, 20))
			}
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if de.Details["field"] != "buyer_name" {
				t.Errorf("details = %v, want field buyer_name", de.Details)
			}
		})
	}
	accepted := []struct{ name, input, depositor string }{
		{"ypogegrammeni after a letter", "a\u037a", "a\u0345042"},
		{"Arabic isolated form after a letter", "\u0628\ufe70", "\u0628\u064b042"},
		{"a letter after a leading mark", "\u0301a", "\u0301a042"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if err := domain.ValidateNewBuyerName(tt.input); err != nil {
				t.Fatalf("ValidateNewBuyerName(%q) = %v", tt.input, err)
			}
			if got := domain.DepositorName(tt.input, 42, 20); got != tt.depositor {
				t.Errorf("DepositorName(%q) = %q, want %q", tt.input, got, tt.depositor)
			}
		})
	}
}
