package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-cm/cairn/agent/status"
)

// fixture is a handler over a registry with one metric, a status document
// and a trigger that counts.
type fixture struct {
	h        http.Handler
	triggers atomic.Int32
	alive    atomic.Bool
	mu       sync.Mutex
	doc      status.Document
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_converged", Help: "1 when converged."})
	g.Set(1)
	reg.MustRegister(g)
	f := &fixture{doc: status.Document{
		Host: "web1", Group: "web", Branch: "main", State: "idle", StateSince: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Applied: &status.Applied{Commit: strings.Repeat("a", 40), Time: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), Steps: 3},
		Target:  &status.Target{Commit: strings.Repeat("b", 40)},
		Drift:   []status.Drift{{Step: "FILE /etc/motd", Source: "site.cairn:3:1", Diff: "-a\n+b\n"}},
		LastRun: &status.Run{Result: "applied", Commit: strings.Repeat("a", 40), Ops: 3, States: []string{"fetching", "applying"}},
	}}
	f.alive.Store(true)
	f.h = Handler(Options{
		Gatherer: reg,
		Status: func() status.Document {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.doc
		},
		Trigger: func() { f.triggers.Add(1) },
		Alive:   f.alive.Load,
	})
	return f
}

func (f *fixture) do(method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestRoutes(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		method, path string
		code         int
		ctype        string // prefix
		allow        string // for 405
		body         string // contained
	}{
		{"GET", "/metrics", 200, "text/plain; version=0.0.4", "", "cairn_converged 1"},
		{"HEAD", "/metrics", 200, "text/plain", "", ""},
		{"POST", "/metrics", 405, "text/plain", "GET, HEAD", ""},
		{"GET", "/healthz", 200, "text/plain", "", "ok"},
		{"DELETE", "/healthz", 405, "text/plain", "GET, HEAD", ""},
		{"GET", "/status", 200, "application/json", "", `"host": "web1"`},
		{"PUT", "/status", 405, "text/plain", "GET, HEAD", ""},
		{"POST", "/trigger", 202, "text/plain", "", "triggered"},
		{"GET", "/trigger", 405, "text/plain", "POST", ""},
		{"PUT", "/trigger", 405, "text/plain", "POST", ""},
		{"GET", "/", 200, "text/html; charset=utf-8", "", "<h1>cairn on web1</h1>"},
		{"HEAD", "/", 200, "text/html", "", ""},
		{"POST", "/", 405, "text/plain", "GET, HEAD", ""},
		{"GET", "/nothing", 404, "text/plain", "", ""},
		{"GET", "/status/", 404, "text/plain", "", ""},
		{"GET", "/metrics/x", 404, "text/plain", "", ""},
	} {
		rec := f.do(c.method, c.path)
		name := c.method + " " + c.path
		if rec.Code != c.code {
			t.Errorf("%s: %d, want %d", name, rec.Code, c.code)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s: Content-Type %q, want %q", name, ct, c.ctype)
		}
		if got := rec.Header().Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", name, got, c.allow)
		}
		if !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s: body lacks %q:\n%s", name, c.body, rec.Body)
		}
	}
	if n := f.triggers.Load(); n != 1 {
		t.Errorf("trigger called %d times, want 1 (for the one POST)", n)
	}
}

func TestHealthz(t *testing.T) {
	f := newFixture(t)
	if rec := f.do("GET", "/healthz"); rec.Code != 200 || rec.Body.String() != "ok" {
		t.Errorf("alive: %d %q", rec.Code, rec.Body)
	}
	f.alive.Store(false)
	if rec := f.do("GET", "/healthz"); rec.Code != 503 {
		t.Errorf("not alive: %d %q, want 503", rec.Code, rec.Body)
	}
}

func TestStatusJSON(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/status")
	var got status.Document
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, rec.Body)
	}
	if !reflect.DeepEqual(got.Applied, f.doc.Applied) || got.Host != "web1" || len(got.Drift) != 1 {
		t.Errorf("decoded %+v, want %+v", got, f.doc)
	}
	if !strings.Contains(rec.Body.String(), `"bad_commits": []`) {
		t.Errorf("bad_commits is not []:\n%s", rec.Body)
	}
}

func TestNilOptions(t *testing.T) {
	h := Handler(Options{Gatherer: prometheus.NewRegistry(), Status: func() status.Document { return status.Document{} }})
	for path, code := range map[string]int{"/healthz": 200, "/trigger": 503, "/": 200, "/status": 200, "/metrics": 200} {
		method := "GET"
		if path == "/trigger" {
			method = "POST"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != code {
			t.Errorf("%s %s without options: %d, want %d", method, path, rec.Code, code)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Handler without a Gatherer did not panic")
		}
	}()
	Handler(Options{})
}

// TestPageEscapes puts markup into every string the page shows.
func TestPageEscapes(t *testing.T) {
	f := newFixture(t)
	evil := `<script>alert(1)</script>"'&`
	f.doc = status.Document{
		Host: evil, Group: evil, Branch: evil, State: evil, Version: evil,
		Held:    &status.Hold{Reason: evil, Commit: evil},
		Applied: &status.Applied{Commit: evil},
		Target:  &status.Target{Commit: evil, Branch: evil},
		Drift:   []status.Drift{{Step: evil, Source: evil, Diff: "</pre>" + evil}},
		RecentRuns: []status.Run{
			{Result: evil, Commit: evil, Error: evil, States: []string{evil}},
		},
		BadCommits: []status.BadCommit{{Commit: evil, Reason: evil, From: evil}},
	}
	rec := f.do("GET", "/")
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("%d: %s", rec.Code, body)
	}
	for _, bad := range []string{"<script", `"'&`} {
		if strings.Contains(body, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	// 21 places, and the full commit again in the title attribute of the
	// run's commit, the bad commit and the commit it came from.
	if n := strings.Count(body, "&lt;script&gt;alert(1)&lt;/script&gt;"); n != 24 {
		t.Errorf("the escaped string shows %d times, want one for each of the 24 places:\n%s", n, body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestPageShowsTheFacts(t *testing.T) {
	f := newFixture(t)
	body := f.do("GET", "/").Body.String()
	for _, want := range []string{"web1", "web", strings.Repeat("a", 40), strings.Repeat("b", 40), "idle", "FILE /etc/motd", "site.cairn:3:1", "fetching → applying", "applied"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "src=") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the page loads something from elsewhere or runs a script")
	}
}
