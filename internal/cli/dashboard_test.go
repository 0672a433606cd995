package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// The rules and the dashboard, from the root of the repository.
const (
	alertRules = "../../prometheus/alerts.yml"
	dashboard  = "../../grafana/cairn-fleet.json"
)

// emptyOnHealthyFleet are the dashboard's queries (panel title, refId)
// that return no series while every host is at its target: the others
// must return some on any fleet of agents that ran.
var emptyOnHealthyFleet = []string{
	"Hosts behind their target/A",
	"Hosts that never applied a commit/A", // agent/metrics's TestDashboardNeverApplied fills it
}

// dashboardQuery is one query of the dashboard.
type dashboardQuery struct {
	where string // panel title/refId, or variable name
	expr  string
}

// dashboardQueries returns every expr of the dashboard's panels and every
// label_values() query of its variables.
func dashboardQueries(t *testing.T, file string) (exprs, variables []dashboardQuery) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title, Type string
			Datasource  struct{ UID string }
			Targets     []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			}
		}
		Templating struct {
			List []struct {
				Name, Type string
				Definition string
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("%s: panel %q has data source %q, not the variable ${DS_PROMETHEUS}", file, p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%s: panel %q, query %s has no expr", file, p.Title, tg.RefID)
				continue
			}
			// Every query follows the host (and so the group) chosen.
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("%s: panel %q, query %s does not filter by $instance: %s", file, p.Title, tg.RefID, tg.Expr)
			}
			exprs = append(exprs, dashboardQuery{p.Title + "/" + tg.RefID, tg.Expr})
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			variables = append(variables, dashboardQuery{v.Name, v.Definition})
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("%s: only %d queries", file, len(exprs))
	}
	return exprs, variables
}

// templateVar is a dashboard variable in a query: $name or ${name}.
var templateVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// matchAll substitutes Grafana's variables in a query as a dashboard with
// every variable at "All" would: each label variable by a regular
// expression that matches every value, $__rate_interval by a window that
// holds several scrapes of the test's Prometheus.
func matchAll(expr string) string {
	return templateVar.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.Contains(v, "__rate_interval") {
			return "30s"
		}
		return ".*"
	})
}

// labelValues is a variable's query: label_values(SELECTOR, LABEL).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// rule is one rule of /api/v1/rules.
type rule struct {
	Name, Query, Health, Type string
	LastError                 string `json:"lastError"`
}

// rules returns every rule Prometheus loaded.
func (p *prometheusServer) rules() ([]rule, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(p.base + "/api/v1/rules")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Data   struct{ Groups []struct{ Rules []rule } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("/api/v1/rules: %d: %w", resp.StatusCode, err)
	}
	var out []rule
	for _, g := range body.Data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// TestDashboardQueries: a real Prometheus with the alert rules loaded
// scrapes two real agents after their first runs. Every rule evaluates
// without error and no alert is pending on the healthy hosts; every query
// of the Grafana dashboard, its variables set to "All", runs and returns
// series; a planted drift makes CairnDriftPersisting pending for its host,
// with its commit and group.
func TestDashboardQueries(t *testing.T) {
	needTool(t, "prometheus")
	rulesFile, err := filepath.Abs(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	exprs, variables := dashboardQueries(t, dashboard)
	f := startTwoAgents(t)
	prom := startPrometheusRules(t, []string{rulesFile}, f.web02.addr, f.web01.addr)
	prom.waitQuery("both agents", `count(cairn_converged == 1)`, oneValue("2"))
	// The windows of the queries ($__rate_interval) hold a few scrapes.
	prom.waitQuery("a few scrapes", `min(count_over_time(cairn_converged[30s]))`, func(res []sample) bool {
		if len(res) != 1 {
			return false
		}
		n, err := strconv.ParseFloat(res[0].value(), 64)
		return len(res) == 1 && err == nil && n >= 5
	})

	t.Run("rules", func(t *testing.T) {
		var rules []rule
		deadline := time.Now().Add(30 * time.Second)
		for {
			rules, err = prom.rules()
			if err == nil && len(rules) > 0 && !slices.ContainsFunc(rules, func(r rule) bool { return r.Health == "unknown" }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rules were not all evaluated within 30 s: %+v (%v)", rules, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		alerts := 0
		for _, r := range rules {
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %s: %s\n%s", r.Name, r.Health, r.LastError, r.Query)
			}
			if r.Type == "alerting" {
				alerts++
			}
		}
		if alerts < 9 {
			t.Errorf("Prometheus loaded %d alerts from %s", alerts, alertRules)
		}
		// The recording rules see both hosts with their groups.
		res, err := prom.query(`cairn:applied_commit:info`)
		if err != nil {
			t.Fatal(err)
		}
		groups := map[string]string{}
		for _, s := range res {
			groups[s.Metric["instance"]] = s.Metric["group"] + " " + s.Metric["commit"]
		}
		want := map[string]string{f.web02.addr: "web " + f.cMain, f.web01.addr: "canary " + f.cCanary}
		if fmt.Sprint(groups) != fmt.Sprint(want) {
			t.Errorf("cairn:applied_commit:info = %v, want %v", groups, want)
		}
		// Nothing is wrong with these hosts: no alert, not even pending.
		if res, err := prom.query(`ALERTS`); err != nil || len(res) != 0 {
			t.Errorf("alerts on a healthy fleet: %+v (%v)", res, err)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		for _, q := range exprs {
			expr := matchAll(q.expr)
			res, err := prom.query(expr)
			switch {
			case err != nil:
				t.Errorf("%s: %v", q.where, err)
			case len(res) == 0 && !slices.Contains(emptyOnHealthyFleet, q.where):
				t.Errorf("%s: no series: %s", q.where, expr)
			case len(res) > 0 && slices.Contains(emptyOnHealthyFleet, q.where):
				t.Errorf("%s: series on a healthy fleet: %+v", q.where, res)
			}
		}
		for _, v := range variables {
			m := labelValues.FindStringSubmatch(v.expr)
			if m == nil {
				t.Errorf("variable %s: %q is not label_values(SELECTOR, LABEL)", v.where, v.expr)
				continue
			}
			res, err := prom.query(matchAll(m[1]))
			if err != nil || len(res) == 0 || res[0].Metric[m[2]] == "" {
				t.Errorf("variable %s: %s has no series with %s: %+v (%v)", v.where, matchAll(m[1]), m[2], res, err)
			}
		}
	})

	t.Run("drift", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(f.root2, "srv/f00"), []byte("edited\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f.web02.cmd.Process.Signal(syscall.SIGHUP)
		q := fmt.Sprintf(`ALERTS{alertname="CairnDriftPersisting", alertstate="pending", instance=%q, commit=%q, group="web", branch="main", severity="warning"}`,
			f.web02.addr, f.cMain)
		prom.waitQuery("CairnDriftPersisting pending on web-02", q, oneValue("1"))
		if res, err := prom.query(`ALERTS{instance!=` + fmt.Sprintf("%q", f.web02.addr) + `}`); err != nil || len(res) != 0 {
			t.Errorf("alerts on web-01: %+v (%v)", res, err)
		}
		// The dashboard shows the drift.
		for _, q := range exprs {
			if !strings.HasPrefix(q.where, "Drifted steps per host/") {
				continue
			}
			res, err := prom.query(matchAll(q.expr) + fmt.Sprintf(` and on (instance) cairn_drift_steps{instance=%q}`, f.web02.addr))
			if err != nil || !oneValue("1")(res) {
				t.Errorf("%s for web-02 = %+v (%v), want 1", q.where, res, err)
			}
		}
	})

	// A move of web-02 fails at its second step: the first is undone.
	// CairnRolledBack fires at once, naming both commits, and the
	// dashboard shows web-02 behind its target.
	t.Run("rollback", func(t *testing.T) {
		bad := f.repo.Commit("main", fleetFiles(2, "main\n", "file \"/srv/new\" {\n  content = \"new\"\n}\nexec \"fail\" {\n  command = \"false\"\n  undo    = \"true\"\n}\n"))
		f.web02.cmd.Process.Signal(syscall.SIGHUP)
		f.web02.waitFor("the failed move", func(d status.Document) bool {
			return d.LastRun != nil && d.LastRun.Commit == bad && d.LastRun.Result == "failed" && d.State == "idle"
		})
		q := fmt.Sprintf(`ALERTS{alertname="CairnRolledBack", alertstate="firing", severity="warning", instance=%q, commit=%q, target_commit=%q, group="web"}`,
			f.web02.addr, f.cMain, bad)
		prom.waitQuery("CairnRolledBack firing for web-02", q, oneValue("1"))
		prom.waitQuery("web-02 stuck before the bad commit", fmt.Sprintf(`cairn:host_stuck:info{instance=%q, commit=%q, group="web"}`, f.web02.addr, bad), oneValue("1"))
		found := false
		for _, q := range exprs {
			if q.where != "Hosts behind their target/A" {
				continue
			}
			found = true
			res, err := prom.query(matchAll(q.expr))
			if err != nil || len(res) != 1 || res[0].Metric["instance"] != f.web02.addr || res[0].Metric["commit"] != bad {
				t.Errorf("%s = %+v (%v), want web-02 before %s", q.where, res, err, bad)
			}
		}
		if !found {
			t.Error(`the dashboard has no query "Hosts behind their target/A" any more: name the rollback's panel here`)
		}
	})
}
