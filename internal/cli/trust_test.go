package cli_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// TestAgentTrust runs cairn agent --trust over git:// as a process: --once
// applies a signed commit (exit 0) and refuses an unsigned one (exit 2),
// once; the running agent counts a refusal in /metrics, once.
func TestAgentTrust(t *testing.T) {
	r := gittest.New(t)
	signer := gittest.NewSSHSigner(t, "ops@example.org")
	r.SignWith(signer)
	url := gittest.ServeDaemon(t, r.Dir)
	root, state := scratch(t)
	args := []string{"--repo", url, "--host", "web-02", "--root", root, "--state", state,
		"--trust", gittest.TrustFile(t, signer), "--confirm", "0"}
	f00 := func() string {
		b, err := os.ReadFile(filepath.Join(root, "srv/f00"))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	once := func(what string, want int) string {
		t.Helper()
		a := startAgent(t, append(args, "--once")...)
		if code := a.wait(60 * time.Second); code != want {
			t.Errorf("agent --once, %s: exit %d, want %d\n%s", what, code, want, a.logText())
		}
		return a.logText()
	}

	r.Commit("main", fleetFiles(1, "signed\n", ""), "-S")
	once("a signed commit", 0)
	if got := f00(); got != "signed\n" {
		t.Fatalf("srv/f00 = %q after the signed commit", got)
	}
	r.Commit("main", fleetFiles(1, "unsigned\n", ""))
	if log := once("an unsigned commit", 2); !strings.Contains(log, `"result":"refused"`) || !strings.Contains(log, "unsigned") {
		t.Errorf("the refusal is not logged:\n%s", log)
	}
	if got := f00(); got != "signed\n" {
		t.Errorf("srv/f00 = %q after the refused commit", got)
	}
	once("the refused commit again", 0) // not tried again: nothing to do

	// The agent that runs: a signed commit, then an unsigned one.
	c3 := r.Commit("main", fleetFiles(1, "signed again\n", ""), "-S")
	a := startAgent(t, append(args, "--interval", "1h")...)
	a.waitFor("the signed commit", appliedIs(c3))
	c4 := r.Commit("main", fleetFiles(1, "unsigned again\n", ""))
	trigger := func() {
		t.Helper()
		resp, err := http.Post("http://"+a.addr+"/trigger", "text/plain", nil)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /trigger: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	trigger()
	doc := a.waitFor("the refusal", func(d status.Document) bool {
		return d.LastRun != nil && d.LastRun.Commit == c4 && d.State == "idle"
	})
	if doc.LastRun.Result != "refused" || doc.Applied.Commit != c3 {
		t.Errorf("the unsigned commit: %+v, applied %+v", doc.LastRun, doc.Applied)
	}
	const counted = `cairn_refusals_total{reason="unsigned"} 1`
	if _, metrics := a.get("/metrics"); !strings.Contains(metrics, counted) {
		t.Errorf("/metrics lacks %s:\n%s", counted, grepLines(metrics, "cairn_refusals_total"))
	}
	// Not tried again, and so not counted again.
	started := doc.LastRun.Started
	trigger()
	doc = a.waitFor("the run after the refusal", func(d status.Document) bool {
		return d.LastRun != nil && d.LastRun.Started.After(started) && d.State == "idle"
	})
	if doc.LastRun.Result != "unchanged" {
		t.Errorf("the run after the refusal: %+v", doc.LastRun)
	}
	if _, metrics := a.get("/metrics"); !strings.Contains(metrics, counted) {
		t.Errorf("/metrics lacks %s after the next run:\n%s", counted, grepLines(metrics, "cairn_refusals_total"))
	}
	if got := f00(); got != "signed again\n" {
		t.Errorf("srv/f00 = %q, want the signed commit's (not %.12s's)", got, c4)
	}
}
