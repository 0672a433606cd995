package cli_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-cm/cairn/agent/fleet"
)

// fleetRow returns the fields of the line of out whose first field is
// first, nil when there is none.
func fleetRow(out, first string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

// TestFleet: cairn fleet reads three real agents through a real
// Prometheus: every host at its group's tip (exit 0); then a commit that
// only one of the two web hosts fetched, so that the other lags (exit 1),
// in the table and in --json.
func TestFleet(t *testing.T) {
	needTool(t, "prometheus")
	f := startTwoAgents(t)
	root3, state3 := scratch(t)
	web03 := startAgent(t, "--repo", "file://"+f.repo.Dir, "--allow-unsigned", "--interval", "1h", "--confirm", "0",
		"--host", "web-03", "--root", root3, "--state", state3)
	web03.waitFor("main's commit on web-03", appliedIs(f.cMain))
	prom := startPrometheus(t, f.web02.addr, f.web01.addr, web03.addr)
	prom.waitQuery("three converged hosts with their groups", `count(cairn_converged == 1 and on (instance) cairn_host_info{group!=""})`, oneValue("3"))

	short := func(c string) string { return c[:8] }
	code, out := cairn(t, "fleet", "--prometheus", prom.base)
	if code != 0 {
		t.Errorf("cairn fleet: exit %d, want 0\n%s", code, out)
	}
	for first, want := range map[string][]string{
		"GROUP":  {"GROUP", "BRANCH", "TIP", "HOSTS", "CONVERGED", "DRIFTING", "FAILING", "HELD", "DOWN", "COMMITS"},
		"canary": {"canary", "canary", short(f.cCanary), "1", "1", "0", "0", "0", "0", short(f.cCanary) + ":1"},
		"web":    {"web", "main", short(f.cMain), "2", "2", "0", "0", "0", "0", short(f.cMain) + ":2"},
	} {
		if got := fleetRow(out, first); !slices.Equal(got, want) {
			t.Errorf("cairn fleet: row %q, want %q\n%s", got, want, out)
		}
	}
	if !strings.Contains(out, "\nEvery host is converged at its group's tip.\n") {
		t.Errorf("cairn fleet does not say that every host is converged at its tip:\n%s", out)
	}

	// A new commit on main, fetched by web-02 only: web-03 lags.
	c2 := f.repo.Commit("main", fleetFiles(2, "two\n", ""))
	f.web02.cmd.Process.Signal(syscall.SIGHUP)
	f.web02.waitFor("the new commit on web-02", appliedIs(c2))
	prom.waitQuery("web-02 at the new commit", fmt.Sprintf(`cairn_applied_commit_info{commit=%q} and on (instance) cairn_converged == 1`, c2), func(res []sample) bool { return len(res) == 1 })

	code, out = cairn(t, "fleet", "--prometheus", prom.base)
	t.Logf("cairn fleet:\n%s", out)
	if code != 1 {
		t.Errorf("cairn fleet with a host behind: exit %d, want 1\n%s", code, out)
	}
	for first, want := range map[string][]string{
		"web":    {"web", "main", short(c2), "2", "2", "0", "0", "0", "0", short(c2) + ":1", short(f.cMain) + ":1"},
		"web-03": {"web-03", web03.addr, "web", short(f.cMain), short(f.cMain), "idle", "has", "not", "fetched", "the", "tip"},
	} {
		if got := fleetRow(out, first); !slices.Equal(got, want) {
			t.Errorf("cairn fleet: row %q, want %q\n%s", got, want, out)
		}
	}
	if !strings.Contains(out, "\n1 host is not at the tip of its group:\n") || fleetRow(out, "web-02") != nil {
		t.Errorf("cairn fleet does not list web-03, and only web-03, as lagging:\n%s", out)
	}

	code, out = cairn(t, "fleet", "--prometheus", prom.base, "--json")
	if code != 1 {
		t.Errorf("cairn fleet --json: exit %d, want 1\n%s", code, out)
	}
	var doc struct {
		Groups []fleet.Group
		Hosts  []fleet.Host
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("cairn fleet --json: %v\n%s", err, out)
	}
	if len(doc.Hosts) != 3 || len(doc.Groups) != 2 {
		t.Fatalf("cairn fleet --json: %d hosts and %d groups, want 3 and 2\n%s", len(doc.Hosts), len(doc.Groups), out)
	}
	web := doc.Groups[1]
	if web.Name != "web" || web.Tip != c2 || web.Hosts != 2 || len(web.Lagging) != 1 || web.Lagging[0].Host != "web-03" ||
		web.Lagging[0].Applied != f.cMain || web.Lagging[0].Target != f.cMain || !web.Lagging[0].Up {
		t.Errorf("cairn fleet --json: group %+v", web)
	}
	for _, h := range doc.Hosts {
		if h.LastRun.IsZero() || h.Committed.IsZero() || h.State != "idle" || h.Job != "cairn" {
			t.Errorf("cairn fleet --json: host %+v lacks a run, a commit time, its state or its job", h)
		}
	}
}

// TestFleetNoHostsAndBadInput: a Prometheus that scrapes no agent is exit
// 1, said as such, with the same JSON shape as a fleet (empty lists, not
// null); a URL that is not http(s) or does not answer is exit 2.
func TestFleetNoHostsAndBadInput(t *testing.T) {
	needTool(t, "prometheus")
	prom := startPrometheus(t)
	code, out := cairn(t, "fleet", "--prometheus", prom.base)
	if code != 1 || strings.Contains(out, "Every host is") || !strings.Contains(out, "no cairn agent") {
		t.Errorf("cairn fleet without agents: exit %d, want 1 and no claim that every host is at its tip\n%s", code, out)
	}
	code, out = cairn(t, "fleet", "--prometheus", prom.base, "--json")
	var doc map[string]json.RawMessage
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&doc); err != nil {
		t.Fatalf("cairn fleet --json without agents: %v\n%s", err, out)
	}
	if code != 1 || string(doc["groups"]) != "[]" || string(doc["hosts"]) != "[]" {
		t.Errorf("cairn fleet --json without agents: exit %d, groups %s, hosts %s; want 1, [] and []\n%s", code, doc["groups"], doc["hosts"], out)
	}
	for _, url := range []string{"ftp://127.0.0.1:9090", "127.0.0.1:9090", "http://127.0.0.1:1"} {
		if code, out := cairn(t, "fleet", "--prometheus", url); code != 2 {
			t.Errorf("cairn fleet --prometheus %s: exit %d, want 2\n%s", url, code, out)
		}
	}
}
