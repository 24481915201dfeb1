package ops_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bankbook/bankbook/ops"
)

// Config.Console is served under /console/ (GET and POST, its own paths
// whole), /console redirects there, and the other routes are unchanged.
func TestConsoleIsMountedUnderItsPath(t *testing.T) {
	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Console", r.Method+" "+r.URL.Path)
	})
	s, err := ops.New(ops.Config{Readiness: ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { return nil, nil }), Console: console})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/console/", "GET /console/"},
		{"POST", "/console/orphans/d-1/resolve", "POST /console/orphans/d-1/resolve"},
	} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if got := rec.Header().Get("X-Console"); got != c.want {
			t.Errorf("%s %s reached the console as %q, want %q", c.method, c.path, got, c.want)
		}
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/console", nil))
	if rec.Code/100 != 3 || rec.Header().Get("Location") != "/console/" {
		t.Errorf("/console: %d %q, want a redirect to /console/", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("X-Console") != "" {
		t.Errorf("/healthz: %d, console header %q", rec.Code, rec.Header().Get("X-Console"))
	}

	// Without a console, /console/ is not found.
	plain, err := ops.New(ops.Config{Readiness: ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { return nil, nil })})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	plain.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/console/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("no console: /console/ answered %d", rec.Code)
	}
}

// Check is the /readyz report, for in-process readers such as the console.
func TestCheck(t *testing.T) {
	rep := ops.Check(context.Background(), ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) {
		return []ops.PartStatus{{Name: "api", Ready: true}, {Name: "scanner", State: ops.StateFailing, LastError: "boom"}}, nil
	}))
	if rep.Status != "not_ready" || len(rep.NotReady) != 1 || rep.NotReady[0] != "scanner" || rep.Parts[1].Reason != "boom" {
		t.Errorf("report %+v", rep)
	}
	rep = ops.Check(context.Background(), ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { return nil, errors.New("down") }))
	if rep.Status != "not_ready" || rep.Error != "down" || rep.Parts == nil {
		t.Errorf("failed source: %+v", rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release) // the source answers only after Check gave up on it
	rep = ops.Check(ctx, ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) { <-release; return nil, nil }))
	if rep.Status != "not_ready" || rep.Error == "" {
		t.Errorf("a source that never answers: %+v", rep)
	}
}
