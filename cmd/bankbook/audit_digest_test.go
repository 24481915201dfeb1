package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/auth"
)

// `audit digest` prints the stream digest at a sequence; `--check N:HEX`
// exits 0 while the stream's digest at N is HEX, and 1 for another digest
// (a rewritten stream) or a stream that ends before N (truncated).
func TestAuditDigestCommand(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	auditor := "--nkey=" + e.SeedFile(auth.Auditor)
	submit := func(key string) {
		t.Helper()
		if _, err := cli(t, "order", "submit", url, "--buyer-id", "u-d", "--buyer-name", "김다이", "--amount", "12000", "--idempotency-key", key); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(args ...string) digestResult {
		t.Helper()
		out, err := cli(t, append([]string{"audit", "digest", url, auditor, "--json"}, args...)...)
		var d digestResult
		if err != nil || json.Unmarshal([]byte(out), &d) != nil {
			t.Fatalf("audit digest %v: %q %v", args, out, err)
		}
		return d
	}
	submit("d-1")
	first := digest()
	if first.Seq == 0 || first.Commits != int(first.Seq) || len(first.Digest) != 64 {
		t.Fatalf("digest %+v", first)
	}
	if at := digest("--at", fmt.Sprint(first.Seq)); at.Digest != first.Digest || at.Seq != first.Seq {
		t.Fatalf("--at %d: %+v, want %+v", first.Seq, at, first)
	}
	submit("d-2")
	later := digest()
	if later.Seq <= first.Seq || later.Digest == first.Digest {
		t.Fatalf("after another commit: %+v, before %+v", later, first)
	}

	good := fmt.Sprintf("%d:%s", first.Seq, first.Digest)
	other := fmt.Sprintf("%d:%s", first.Seq, later.Digest)
	beyond := fmt.Sprintf("%d:%s", later.Seq+1, later.Digest)
	out, err := cli(t, "audit", "digest", url, auditor, "--check", good)
	if err != nil || !strings.Contains(out, "matches the digest given") {
		t.Fatalf("--check %s (what the stream held then): %q %v", good, out, err)
	}
	out, err = cli(t, "audit", "digest", url, auditor, "--check", other)
	if exitCode(err) != exitFailed || !strings.Contains(out, "DIFFERENT") {
		t.Fatalf("--check with another digest: exit %d %q %v", exitCode(err), out, err)
	}
	out, err = cli(t, "audit", "digest", url, auditor, "--check", beyond, "--json")
	var d digestResult
	if exitCode(err) != exitFailed || json.Unmarshal([]byte(out), &d) != nil || d.Match == nil || *d.Match || d.Problem == "" || d.Seq != later.Seq+1 {
		t.Fatalf("--check beyond the end: exit %d %q %v", exitCode(err), out, err)
	}
	out, err = cli(t, "audit", "digest", url, auditor, "--check", strings.ToUpper(good), "--json")
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Match == nil || !*d.Match || d.Expected != first.Digest {
		t.Fatalf("--check in upper case: %q %v", out, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"human output", []string{"--at", "1"}, exitOK},
		{"--at beyond the end", []string{"--at", fmt.Sprint(later.Seq + 1)}, exitUsage},
		{"--at 0", []string{"--at", "0"}, exitUsage},
		{"--at and --check", []string{"--at", "1", "--check", good}, exitUsage},
		{"--check without a digest", []string{"--check", fmt.Sprint(first.Seq)}, exitUsage},
		{"--check with a short digest", []string{"--check", "1:abc"}, exitUsage},
		{"--check at 0", []string{"--check", "0:" + first.Digest}, exitUsage},
		{"an argument", []string{"x"}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cli(t, append([]string{"audit", "digest", url, auditor}, tc.args...)...); exitCode(err) != tc.want {
				t.Fatalf("exit %d, want %d (%v)", exitCode(err), tc.want, err)
			}
		})
	}
}
