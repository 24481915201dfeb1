package logsample

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A burst of 5,000 lines within a second keeps the first 20 and about one
// in a thousand of the rest.
func TestFloodKeepsABurstThenOneInAThousand(t *testing.T) {
	var buf bytes.Buffer
	log := Flood(zerolog.New(&buf))
	for range 5000 {
		log.Error().Msg("flood")
	}
	n := strings.Count(buf.String(), "\n")
	if n < 20 || n > 30 {
		t.Fatalf("%d lines kept of 5000, want 20 and about 5 more", n)
	}
}
