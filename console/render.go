package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// view is what every page template gets.
type view struct {
	Title string
	// Nav names the menu entry to highlight.
	Nav  string
	User *userView
	// Err is the failure to show (an API error: code and message).
	Err *errView
	// Result is the outcome of an action, on success.
	Result *resultView
	Data   any
}

type userView struct {
	Name   string
	Role   string
	CanAct bool
	CSRF   string
}

// resultView is a successful action: what the API said.
type resultView struct {
	What     string
	Seq      api.Seq
	Replayed bool
	Detail   string
}

// pages are the parsed templates, one set per page: the layout plus the page.
type pages struct {
	sets map[string]*template.Template
}

var funcs = template.FuncMap{
	"won": won,
	"ts":  ts,
	"tstime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"num": func(n int) string { return domain.GroupThousands(int64(n)) },
	"q": func(kv ...string) template.URL { // a query string from pairs
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
	"path": url.PathEscape,
	"join": strings.Join,
}

func parsePages() (*pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		p.sets[base] = t
	}
	return p, nil
}

// render writes page name with v, the session's user and CSRF token filled in.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, v view) {
	if s != nil {
		v.User = &userView{Name: s.name, Role: string(s.role), CanAct: s.canAct(), CSRF: s.csrf}
	}
	t := c.pages.sets[name]
	var buf bytes.Buffer
	if t == nil {
		c.cfg.Log.Error().Str("page", name).Msg("console: no such template")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.cfg.Log.Error().Err(err).Str("page", name).Msg("console: rendering failed")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf is the HTTP status a page shows an API error with.
func statusOf(e *errView) int {
	if e == nil {
		return http.StatusOK
	}
	if e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusBadGateway
}

// won formats an amount of KRW: ₩12,000.
func won(n int64) string {
	s := domain.GroupThousands(n)
	if n < 0 {
		// The sign moves before the unit. The digits are not negated:
		// -2^63 has no positive int64.
		return "-₩" + s[1:]
	}
	return "₩" + s
}

// ts shows an API time (RFC 3339) to the second, in UTC.
func ts(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// pager is a list page's navigation: the API's cursors are forward-only,
// so a page links to the next one and back to the first.
type pager struct {
	Next  string
	First string
}

// newPager builds the links of a list at path with query q: Next when the
// API handed out a cursor, First when this is not the first page.
func newPager(path string, q url.Values, cursor, next string) pager {
	var p pager
	link := func(cur string) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "cursor" && len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		if cur != "" {
			v.Set("cursor", cur)
		}
		if e := v.Encode(); e != "" {
			return path + "?" + e
		}
		return path
	}
	if next != "" {
		p.Next = link(next)
	}
	if cursor != "" {
		p.First = link("")
	}
	return p
}

// pageLimit is the page size a list page asks for: def without ?limit=,
// else ?limit=, which the query checks against its own range (what is not
// a number of 1 or more is asked for as -1, which every query refuses), so
// that the page shows the query's 400. The pager keeps it in its links.
func pageLimit(r *http.Request, def int) int {
	q := r.URL.Query().Get("limit")
	if q == "" {
		return def
	}
	if n, err := strconv.Atoi(q); err == nil && n >= 1 {
		return n
	}
	return -1
}
