package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/browsertest"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// screenshotEnv names the variable that makes TestAgentPage write its
// screenshot to screenshotFile, for the docs; other runs leave the file be.
const (
	screenshotEnv  = "CAIRN_UPDATE_SCREENSHOT"
	screenshotFile = "../../docs/img/agent-page.png"
)

// TestAgentPage runs a real agent, lets a managed file drift, and loads
// the agent's page in a real headless Chromium: the page shows the host,
// the applied commit, the state and the drift, escapes what it shows, and
// the browser reports no console error, no uncaught exception, no failed
// load and no Content-Security-Policy violation.
func TestAgentPage(t *testing.T) {
	for _, c := range []struct {
		name, host, drifted string // drifted: the managed file edited by hand
		screenshot          bool
	}{
		{"plain", "web-02", "/srv/f00", true},
		// The host name comes from --host, and the drifted step names a
		// path: both can hold markup, which must show as text.
		{"markup", `web-<script>alert(1)</script>`, `/srv/<img src=x onerror=alert(2)>`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			extra := ""
			if c.drifted != "/srv/f00" {
				extra = "file \"" + c.drifted + "\" {\n  content = \"mine\\n\"\n}\n"
			}
			r := gittest.New(t)
			c1 := r.Commit("main", fleetFiles(2, "one\n", extra))
			root, state := scratch(t)
			a := startAgent(t, "--repo", r.Dir, "--host", c.host, "--group", "web", "--root", root, "--state", state,
				"--allow-unsigned", "--interval", "1h", "--confirm", "0")
			a.waitFor("the first commit", appliedIs(c1))
			c2 := r.Commit("main", fleetFiles(2, "two\n", extra))
			a.cmd.Process.Signal(syscall.SIGHUP)
			a.waitFor("the second commit", appliedIs(c2))
			if err := os.WriteFile(filepath.Join(root, c.drifted), []byte("edited by hand\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			a.cmd.Process.Signal(syscall.SIGHUP)
			doc := a.waitFor("the drift", func(d status.Document) bool { return len(d.Drift) == 1 && d.State == "idle" })

			p := browsertest.Load(t, "http://"+a.addr+"/")
			if p.Status != 200 {
				t.Fatalf("GET / in Chromium: %d\n%s", p.Status, p.Text)
			}
			if ct := p.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if cc := p.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if want := c.host + " · not converged"; !strings.HasPrefix(p.Title, want) {
				t.Errorf("title %q, want it to start with %q", p.Title, want)
			}
			for _, want := range []string{
				"cairn on " + c.host,
				"not converged: 1 step drifted",
				"web (branch main)",
				"state\tidle since",
				"applied\t" + c2,
				"Drift: 1 step",
				doc.Drift[0].Source,
				doc.Drift[0].Step,
				c.drifted,
				c1[:12], // the first run, in the last runs
			} {
				if !strings.Contains(p.Text, want) {
					t.Errorf("the page does not show %q:\n%s", want, p.Text)
				}
			}
			for _, tag := range []string{"script", "img"} {
				if n := p.Elements[tag]; n != 0 {
					t.Errorf("the page has %d <%s> elements", n, tag)
				}
			}
			if len(p.Requests) != 1 {
				t.Errorf("the browser asked for %q, want the page alone", p.Requests)
			}
			if len(p.Problems) > 0 {
				t.Errorf("the browser reports problems: %q (warnings %q)", p.Problems, p.Warnings)
			}
			if c.screenshot && os.Getenv(screenshotEnv) == "1" {
				if err := os.WriteFile(screenshotFile, p.Screenshot, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", screenshotFile)
			}
		})
	}
}
