package main

import (
	"strings"
	"testing"

	verification "github.com/bankbook/bankbook/audit"
)

// The human output says how many commits predate the hash chains, as the
// JSON output does (checked.unchained): those are not checked by hash.
func TestVerifyTextCountsCommitsWithoutHashChains(t *testing.T) {
	rep := verification.Report{OK: true}
	rep.Checked.LastSeq, rep.Checked.Commits, rep.Checked.Unchained = 40, 40, 33
	if out := verifyText(rep); !strings.Contains(out, "commits of format 1 (written before the hash chains): 33") {
		t.Fatalf("output:\n%s", out)
	}
	rep.Checked.Unchained = 0
	if out := verifyText(rep); strings.Contains(out, "format 1") {
		t.Fatalf("output without format-1 commits:\n%s", out)
	}
}
