package outside

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  account_closed \n", "account_closed"},
		{"closed\x1b[2J\x1b]0;pwned\x07", "closed\uFFFD[2J\uFFFD]0;pwned\uFFFD"},
		{"a\nb\tc\r", "a\uFFFDb\uFFFDc"},
		{"계좌\u202e해지", "계좌\uFFFD해지"},
		{"zero\u200bwidth", "zero\uFFFDwidth"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"FB00000001", "FB00000001"},
	} {
		if got := Text(tc.in, 100); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("가", 100) // 300 bytes
	got := Text(long, 10)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(got) > 10+len("…") || got != "가가가…" {
		t.Errorf("Text of 300 bytes cut to 10: %q", got)
	}
}
