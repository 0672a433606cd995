package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/browsertest"
)

// TestPageChromium loads the page in a real Chromium with markup in every
// string of the document: the browser shows it as text, makes no element
// of it, runs nothing, and reports no error and no Content-Security-Policy
// violation. (internal/cli's TestAgentPage does the same with a real agent.)
func TestPageChromium(t *testing.T) {
	f := newFixture(t)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	f.doc.Host = "web1" + evil
	f.doc.Group = evil
	f.doc.Held = &status.Hold{Reason: evil, Commit: evil}
	f.doc.Drift = append(f.doc.Drift, status.Drift{Step: "FILE /srv/" + evil, Source: evil, Diff: "</pre>" + evil})
	f.doc.RecentRuns = []status.Run{{Result: "failed", Commit: evil, From: "c0ffee" + evil, Error: evil, States: []string{evil}}}
	f.doc.LastRun = &f.doc.RecentRuns[0]
	f.doc.BadCommits = []status.BadCommit{{Commit: evil, Reason: evil, From: evil}}
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	p := browsertest.Load(t, srv.URL+"/")
	if p.Status != 200 || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Errorf("status %d, Content-Type %q", p.Status, p.Header.Get("Content-Type"))
	}
	if csp := p.Header.Get("Content-Security-Policy"); csp != pageCSP {
		t.Errorf("Content-Security-Policy %q, want %q", csp, pageCSP)
	}
	if !strings.HasPrefix(p.Title, "web1"+evil+" · not converged") {
		t.Errorf("title %q", p.Title)
	}
	if n := strings.Count(p.Text, evil); n < 10 {
		t.Errorf("the markup shows as text %d times, want at least 10:\n%s", n, p.Text)
	}
	for _, tag := range []string{"script", "img", "iframe", "object", "form"} {
		if n := p.Elements[tag]; n != 0 {
			t.Errorf("the page has %d <%s> elements", n, tag)
		}
	}
	for _, want := range []string{"not converged: held, last run failed, target not applied, 2 steps drifted", "Drift: 2 steps", "site.cairn:3:1"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("the page does not show %q:\n%s", want, p.Text)
		}
	}
	if len(p.Requests) != 1 {
		t.Errorf("the browser asked for %q, want the page alone", p.Requests)
	}
	if len(p.Problems) > 0 {
		t.Errorf("the browser reports problems: %q (warnings %q)", p.Problems, p.Warnings)
	}
}
