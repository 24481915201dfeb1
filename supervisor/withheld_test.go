package supervisor_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/supervisor"
)

type providerError struct{ body string }

func (e *providerError) Error() string        { return "provider answered 500: " + e.body }
func (e *providerError) WithheldText() string { return e.body }

// Text keeps an error's message but a provider's words, wherever in the
// tree its error is (wrapped, joined), and keeps other errors whole.
func TestTextWithholdsAProvidersWords(t *testing.T) {
	words := "holder 김민수"
	err := errors.Join(fmt.Errorf("3 scans failed: %w", &providerError{body: words}), errors.New("second: "+words+" of ours"))
	got := supervisor.Text(err)
	if strings.Contains(got, words) || !strings.Contains(got, "3 scans failed: provider answered 500: ") || !strings.Contains(got, "second: ") {
		t.Fatalf("Text: %q", got)
	}
	if plain := errors.New("no provider here"); supervisor.Text(plain) != plain.Error() {
		t.Fatalf("Text of a plain error: %q", supervisor.Text(plain))
	}
}
