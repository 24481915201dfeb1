package chat

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// unescapeChannel inverts SafeChannelURL.
func unescapeChannel(t *testing.T, ch string) string {
	t.Helper()
	s, ok := strings.CutPrefix(ch, "bb_")
	if !ok {
		t.Fatalf("%q lacks the bb_ prefix", ch)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '_' {
			b.WriteByte('_')
			i++
			continue
		}
		if i+2 >= len(s) {
			t.Fatalf("%q: truncated escape", ch)
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
			t.Fatalf("%q: bad escape %q", ch, s[i+1:i+3])
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String()
}

func TestSafeChannelURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"store:st_1", "bb_store_3Ast__1"},
		{"user:u-9", "bb_user_3Au_2D9"},
		{"a", "bb_a"},
		{"distributor:D1", "bb_distributor_3AD1"},
		{"user:김", "bb_user_3A_EA_B9_80"},
	}
	for _, tc := range tests {
		got, err := SafeChannelURL(tc.in)
		if err != nil || got != tc.want {
			t.Fatalf("SafeChannelURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !validChannelURL(got) {
			t.Fatalf("%q is not a valid Sendbird channel_url", got)
		}
	}
	for _, in := range []string{"", "user:" + strings.Repeat("x", 93)} {
		if _, err := SafeChannelURL(in); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("SafeChannelURL(%q) = %v, want ErrInvalidMessage", in, err)
		}
	}
}

// FuzzSafeChannelURL: every mapping is a valid channel_url, and maps back to
// its recipient (so two recipients never share a channel).
func FuzzSafeChannelURL(f *testing.F) {
	for _, s := range []string{"store:st_1", "user:__", "_3A", "user:김민수", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rcpt string) {
		ch, err := SafeChannelURL(rcpt)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("SafeChannelURL(%q) = %v", rcpt, err)
			}
			return
		}
		if !validChannelURL(ch) {
			t.Fatalf("SafeChannelURL(%q) = %q, not a valid channel_url", rcpt, ch)
		}
		if back := unescapeChannel(t, ch); back != rcpt {
			t.Fatalf("SafeChannelURL(%q) = %q, which maps back to %q", rcpt, ch, back)
		}
	})
}
