package subject_test

import (
	"testing"

	"github.com/bankbook/bankbook/internal/subject"
)

func TestToken(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"order", true},
		{"o-1_X", true},
		{"김민수", true},
		{"", false},
		{"a.b", false},
		{".", false},
		{"*", false},
		{">", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"a\tb", false},
		{"a\rb", false},
		{"a\nb", false},
	} {
		if got := subject.Token(c.s); got != c.want {
			t.Errorf("Token(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}
