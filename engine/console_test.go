package engine_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
)

// The engine serves the ops console on its HTTP listener: an operator logs
// in with the generated seed and sees the health of every part from the
// engine's own readiness source; --console=false serves none.
func TestConsoleOnTheHTTPListener(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	base := "http://" + e.HTTPAddr().String()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(base + "/console")
	if code != http.StatusOK || !strings.Contains(body, `data-testid="login-form"`) {
		t.Fatalf("/console: %d, want the login page:\n%s", code, body)
	}
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)[1]
	seed, err := os.ReadFile(e.SeedFile(auth.Operator))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.PostForm(base+"/console/login", url.Values{"csrf": {token}, "name": {"operator"}, "secret": {strings.TrimSpace(string(seed))}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`data-testid="user-role">operator<`, `data-testid="health-part-readmodels"`, `data-testid="health-part-projections"`, `data-testid="count-orphans-value">0<`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("after login: %d, lacks %q:\n%s", resp.StatusCode, want, b)
		}
	}
	if code, _ := get(base + "/readyz"); code != http.StatusOK && code != http.StatusServiceUnavailable {
		t.Errorf("/readyz beside the console: %d", code)
	}

	// A host name is answered only when configured (--console-hosts).
	byName := func(base, host string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/console/login", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := byName(base, "console.example"); code != http.StatusMisdirectedRequest {
		t.Errorf("an unconfigured host name: %d, want 421", code)
	}

	cfg2 := testConfig(t)
	cfg2.Console = false
	e2, err := engine.Start(context.Background(), cfg2, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e2.Stop(context.Background()) }()
	if code, _ := get("http://" + e2.HTTPAddr().String() + "/console/"); code != http.StatusNotFound {
		t.Errorf("--console=false: /console/ answered %d, want 404", code)
	}
	cfg3 := testConfig(t)
	cfg3.ConsoleHosts = "console.example, ops.example"
	e3, err := engine.Start(context.Background(), cfg3, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e3.Stop(context.Background()) }()
	if code := byName("http://"+e3.HTTPAddr().String(), "ops.example"); code != http.StatusOK {
		t.Errorf("a configured host name: %d, want 200", code)
	}
}
