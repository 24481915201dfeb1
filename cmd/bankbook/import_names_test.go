package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A depositor name the engine refuses (no letter or digit, a replacement
// character left by a CP949 file re-saved as UTF-8, a bidi control) must
// make the statement refused up front, with its line, not recorded up to
// that row and then stopped.
func TestDepositImportRefusesNamesTheEngineRefusesUpFront(t *testing.T) {
	e, cfg := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i, name := range []string{"김\uFFFD수", "***", "\u202E김민수"} {
		p := filepath.Join(t.TempDir(), "s.csv")
		body := "bank_txn_id,account_number,depositor_name,amount,deposited_at\r\n" +
			"A" + string(rune('0'+i)) + "," + cfg.CollectNumber + ",홍길동,1000," + now + "\r\n" +
			"B" + string(rune('0'+i)) + "," + cfg.CollectNumber + "," + name + ",2000," + now + "\r\n" +
			"C" + string(rune('0'+i)) + "," + cfg.CollectNumber + ",이영희,3000," + now + "\r\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		before := engineWrites(t, e).Last
		out, err := cli(t, "deposit", "import", url, p)
		if after := engineWrites(t, e).Last; after != before {
			t.Errorf("name %q: a statement the engine refuses a row of recorded rows (%q, %v)", name, out, err)
		}
		if err == nil || !strings.Contains(err.Error(), "nothing imported") || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("name %q: want the file refused naming line 3, got %q %v", name, out, err)
		}
	}
}
