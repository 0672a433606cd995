package browsertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLoadReportsProblems serves pages with one fault each and checks that
// Load reports it, and reports nothing for a page without fault.
func TestLoadReportsProblems(t *testing.T) {
	for _, c := range []struct {
		name, csp, body string
		problem         string // contained in a problem; "" for none
	}{
		{"clean", "default-src 'none'; img-src data:", `<p>fine</p>`, ""},
		{"icon refused by CSP", "default-src 'none'", `<p>fine</p>`, "Loading the image 'data:,' violates"},
		{"console error", "", `<script>console.error("boom", 42)</script>`, "console.error: boom 42"},
		{"uncaught exception", "", `<script>throw new Error("oops")</script>`, "Error: oops"},
		{"failed load", "", `<img src="/missing.png" alt="">`, "404"},
		{"CSP violation", "default-src 'none'", `<script>document.title = "ran"</script>`, "Content Security Policy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/" {
					http.NotFound(w, r)
					return
				}
				if c.csp != "" {
					w.Header().Set("Content-Security-Policy", c.csp)
				}
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				io.WriteString(w, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"><title>t</title></head><body>`+c.body+`</body></html>`)
			}))
			defer srv.Close()
			p := Load(t, srv.URL+"/")
			if p.Status != 200 || p.Title != "t" || len(p.Screenshot) == 0 || p.Elements["body"] != 1 {
				t.Errorf("status %d, title %q, %d bytes of screenshot, elements %v", p.Status, p.Title, len(p.Screenshot), p.Elements)
			}
			if c.problem == "" {
				if len(p.Problems) > 0 || !strings.Contains(p.Text, "fine") {
					t.Errorf("problems %q, text %q", p.Problems, p.Text)
				}
				return
			}
			found := false
			for _, msg := range p.Problems {
				found = found || strings.Contains(msg, c.problem)
			}
			if !found {
				t.Errorf("no problem holds %q: %q (warnings %q)", c.problem, p.Problems, p.Warnings)
			}
		})
	}
}
