package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/promtest"
	"github.com/cairn-cm/cairn/steps"
)

// needTool returns the path of a program of the Debian package prometheus
// that the test needs; without it the test skips, unless CI is "true".
func needTool(t *testing.T, name string) string {
	t.Helper()
	return promtest.Tool(t, name)
}

// prometheusServer is a real Prometheus server scraping agents.
type prometheusServer struct {
	t    *testing.T
	base string // http://127.0.0.1:PORT
}

// startPrometheus runs /usr/bin/prometheus on a free loopback port
// (internal/promtest), scraping targets every second, and waits until it
// is ready. It is stopped at cleanup.
func startPrometheus(t *testing.T, targets ...string) *prometheusServer {
	t.Helper()
	return startPrometheusRules(t, nil, targets...)
}

// startPrometheusRules is startPrometheus with the rule files ruleFiles
// (absolute paths) loaded and evaluated every second.
func startPrometheusRules(t *testing.T, ruleFiles []string, targets ...string) *prometheusServer {
	t.Helper()
	return &prometheusServer{t: t, base: promtest.Start(t, ruleFiles, targets...).URL}
}

// sample is one series of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [time, "value"]
}

func (s sample) value() string {
	v, _ := s.Value[1].(string)
	return v
}

// query runs an instant query through /api/v1/query.
func (p *prometheusServer) query(q string) ([]sample, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: %d: %w", q, resp.StatusCode, err)
	}
	if body.Status != "success" || body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: %s %s (%s)", q, body.Status, body.Error, body.Data.ResultType)
	}
	return body.Data.Result, nil
}

// waitQuery runs q until cond holds on its result, for at most 60 s.
func (p *prometheusServer) waitQuery(what, q string, cond func([]sample) bool) []sample {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := p.query(q)
		if err == nil && cond(res) {
			return res
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited 60 s for Prometheus to see %s: %s = %+v (%v)", what, q, res, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// oneValue holds when the result is one series of value v.
func oneValue(v string) func([]sample) bool {
	return func(res []sample) bool { return len(res) == 1 && res[0].value() == v }
}

// twoAgents are two agents of one repository: web-02 in group web on
// main, web-01 in group canary on its own branch, both at their commits.
type twoAgents struct {
	repo           *gittest.Repo
	web02, web01   *agentProc
	root2          string // web-02's root
	cMain, cCanary string // the commits of main and canary
}

// startTwoAgents starts the agents of twoAgents, unsigned, with runs on
// triggers only and no confirmation window, and waits until each is at its
// commit.
func startTwoAgents(t *testing.T) twoAgents {
	t.Helper()
	r := gittest.New(t)
	f := twoAgents{repo: r, cMain: r.Commit("main", fleetFiles(2, "main\n", "")), cCanary: r.Commit("canary", fleetFiles(2, "canary\n", ""))}
	common := []string{"--repo", "file://" + r.Dir, "--allow-unsigned", "--interval", "1h", "--confirm", "0"}
	root2, state2 := scratch(t)
	f.web02, f.root2 = startAgent(t, append(common, "--host", "web-02", "--root", root2, "--state", state2)...), root2
	root1, state1 := scratch(t)
	f.web01 = startAgent(t, append(common, "--host", "web-01", "--root", root1, "--state", state1)...)
	f.web02.waitFor("main's commit on web-02", appliedIs(f.cMain))
	f.web01.waitFor("canary's commit on web-01", appliedIs(f.cCanary))
	return f
}

// TestAgentPrometheus: a real Prometheus scraping two agents of one
// repository, a canary on its own branch, sees each one's applied commit
// with its group and branch, and a drift planted on one of them.
func TestAgentPrometheus(t *testing.T) {
	needTool(t, "prometheus")
	f := startTwoAgents(t)
	web02, web01, root2, cMain, cCanary := f.web02, f.web01, f.root2, f.cMain, f.cCanary

	prom := startPrometheus(t, web02.addr, web01.addr)
	want := map[string]map[string]string{
		web02.addr: {"commit": cMain, "branch": "main", "group": "web"},
		web01.addr: {"commit": cCanary, "branch": "canary", "group": "canary"},
	}
	prom.waitQuery("both applied commits", "cairn_applied_commit_info", func(res []sample) bool {
		if len(res) != 2 {
			return false
		}
		for _, s := range res {
			w, ok := want[s.Metric["instance"]]
			if !ok || s.value() != "1" {
				return false
			}
			for k, v := range w {
				if s.Metric[k] != v {
					return false
				}
			}
		}
		return true
	})
	// cairn_host_info names each target's host, group and branch.
	hosts := map[string]string{
		web02.addr: `{branch="main",group="web",host="web-02"}`,
		web01.addr: `{branch="canary",group="canary",host="web-01"}`,
	}
	prom.waitQuery("both hosts' groups", "cairn_host_info", func(res []sample) bool {
		if len(res) != 2 {
			return false
		}
		for _, s := range res {
			got := fmt.Sprintf(`{branch=%q,group=%q,host=%q}`, s.Metric["branch"], s.Metric["group"], s.Metric["host"])
			if hosts[s.Metric["instance"]] != got || s.value() != "1" {
				return false
			}
		}
		return true
	})
	for _, a := range []*agentProc{web02, web01} {
		prom.waitQuery("converged "+a.addr, fmt.Sprintf("cairn_converged{instance=%q}", a.addr), oneValue("1"))
	}

	// A drift planted on web-02 shows in Prometheus after a SIGHUP; web-01
	// stays converged.
	if err := os.WriteFile(filepath.Join(root2, "srv/f00"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	web02.cmd.Process.Signal(syscall.SIGHUP)
	prom.waitQuery("the drift on web-02", fmt.Sprintf("cairn_drift_steps{instance=%q}", web02.addr), oneValue("1"))
	prom.waitQuery("web-02 not converged", fmt.Sprintf("cairn_converged{instance=%q}", web02.addr), oneValue("0"))
	for q, v := range map[string]string{
		fmt.Sprintf("cairn_drift_steps{instance=%q}", web01.addr): "0",
		fmt.Sprintf("cairn_converged{instance=%q}", web01.addr):   "1",
		// The applied commit is still the same one series per host.
		"count(cairn_applied_commit_info)": "2",
		// Prometheus parsed every metric of both agents: both are up.
		`sum(up{job="cairn"})`: "2",
	} {
		res, err := prom.query(q)
		if err != nil || !oneValue(v)(res) {
			t.Errorf("%s = %+v (%v), want %s", q, res, err, v)
		}
	}
}

// seriesSet lists the series of a scrape, sorted, but for those of the
// info metrics, whose commit label changes with the commit.
func seriesSet(fams map[string]*dto.MetricFamily) []string {
	var out []string
	for name, f := range fams {
		if strings.HasSuffix(name, "_commit_info") {
			continue
		}
		for _, m := range f.GetMetric() {
			out = append(out, seriesName(name, m))
		}
	}
	slices.Sort(out)
	return out
}

// startWeb02 starts an agent for host web-02 that follows repo, unsigned,
// with runs on triggers only and no confirmation window, under a scratch
// root and state directory.
func startWeb02(t *testing.T, repo string, args ...string) (a *agentProc, root, state string) {
	t.Helper()
	root, state = scratch(t)
	a = startAgent(t, append([]string{"--repo", repo, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0"}, args...)...)
	return a, root, state
}

// scrape returns the agent's /metrics, parsed.
func scrape(t *testing.T, a *agentProc) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	code, body := a.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return body, fams
}

// TestAgentMetricsPromtool: promtool check metrics finds nothing to say
// about a live agent's /metrics after runs that applied, refused a commit
// that does not compile, and reported drift.
func TestAgentMetricsPromtool(t *testing.T) {
	promtool := needTool(t, "promtool")
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(2, "one\n", ""))
	a, root, _ := startWeb02(t, r.Dir)
	a.waitFor("the first commit", appliedIs(c1))
	bad := r.Commit("main", fleetFiles(2, "one\n", badRef))
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the refusal", func(d status.Document) bool {
		return d.LastRun != nil && d.LastRun.Commit == bad && d.LastRun.Result == "refused" && d.State == "idle"
	})
	c3 := r.Commit("main", fleetFiles(3, "three\n", ""))
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the commit after the refusal", appliedIs(c3))
	os.WriteFile(filepath.Join(root, "srv/f01"), []byte("edited\n"), 0o644)
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the drift", func(d status.Document) bool { return len(d.Drift) == 1 && d.State == "idle" })

	body, fams := scrape(t, a)
	for metric, want := range map[string]float64{
		`cairn_runs_total{result="applied"}`:               2,
		`cairn_runs_total{result="refused"}`:               1,
		`cairn_runs_total{result="unchanged"}`:             1,
		`cairn_refusals_total{reason="compile-error"}`:     1,
		`cairn_git_fetch_total{result="success"}`:          4,
		`cairn_ops_total{direction="forward",kind="COPY"}`: 5,
		`cairn_drift_steps`:                                1,
		`cairn_journal_steps`:                              4,
	} {
		if got, ok := valueOf(fams, metric); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", metric, got, ok, want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// valueOf returns the value of one series, named as in the text format
// with its labels in order: name{a="x",b="y"}.
func valueOf(fams map[string]*dto.MetricFamily, series string) (float64, bool) {
	name, _, _ := strings.Cut(series, "{")
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if seriesName(name, m) != series {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// seriesName writes a series as name{a="x",b="y"}, its labels sorted.
func seriesName(name string, m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	if len(labels) == 0 {
		return name
	}
	slices.Sort(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}

// specMetrics are the metrics of spec agent.md §6 without a commit label,
// each with the series that must exist from the start: for a labelled
// metric every value the spec lists.
var specMetrics = map[string]struct {
	typ    dto.MetricType
	series []string
}{
	"cairn_build_info":                       {dto.MetricType_GAUGE, nil},
	"cairn_applied_commit_timestamp_seconds": {dto.MetricType_GAUGE, []string{""}},
	"cairn_target_commit_timestamp_seconds":  {dto.MetricType_GAUGE, []string{""}},
	"cairn_converged":                        {dto.MetricType_GAUGE, []string{""}},
	"cairn_drift_steps":                      {dto.MetricType_GAUGE, []string{""}},
	"cairn_journal_steps":                    {dto.MetricType_GAUGE, []string{""}},
	"cairn_state": {dto.MetricType_GAUGE, []string{`state="idle"`, `state="fetching"`, `state="verifying"`, `state="compiling"`,
		`state="planning"`, `state="applying"`, `state="confirming"`, `state="checking-drift"`, `state="failed"`, `state="broken"`, `state="held"`}},
	"cairn_held":                                 {dto.MetricType_GAUGE, []string{""}},
	"cairn_runs_total":                           {dto.MetricType_COUNTER, []string{`result="applied"`, `result="unchanged"`, `result="failed"`, `result="broken"`, `result="refused"`}},
	"cairn_refusals_total":                       {dto.MetricType_COUNTER, []string{`reason="unsigned"`, `reason="bad-signature"`, `reason="unknown-key"`, `reason="not-descendant"`, `reason="blast-radius"`, `reason="compile-error"`}},
	"cairn_run_duration_seconds":                 {dto.MetricType_HISTOGRAM, []string{""}},
	"cairn_ops_total":                            {dto.MetricType_COUNTER, opsSeries()},
	"cairn_git_fetch_total":                      {dto.MetricType_COUNTER, []string{`result="success"`, `result="error"`}},
	"cairn_last_run_timestamp_seconds":           {dto.MetricType_GAUGE, []string{""}},
	"cairn_last_success_timestamp_seconds":       {dto.MetricType_GAUGE, []string{""}},
	"cairn_last_fetch_success_timestamp_seconds": {dto.MetricType_GAUGE, []string{""}},
}

// opsSeries are the series of cairn_ops_total: every step kind of the
// journal, in both directions.
func opsSeries() []string {
	var out []string
	for _, k := range steps.Kinds() {
		for _, d := range []string{"forward", "inverse"} {
			out = append(out, fmt.Sprintf("direction=%q,kind=%q", d, k.Op()))
		}
	}
	return out
}

// badRef is configuration that parses but does not compile: a reference
// to nothing, which the compiler reports at main.cairn:LINE:COL.
const badRef = "file \"/srv/broken\" {\n  content = nosuchvar\n}\n"

// stalledRepo is a git:// URL whose server accepts connections (the
// kernel does) but never answers, until close: a fetch from it hangs, and
// then fails.
func stalledRepo(t *testing.T) (repo string, close func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return "git://" + l.Addr().String() + "/config.git", func() { l.Close() }
}

// labelValue is what a label value may look like: a name, a version, a
// hash; never a path (no slash) nor an error text (no space or colon).
var labelValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// checkSpecMetrics checks every metric of specMetrics against a scrape:
// there, of its type, with all its series; and that every label of every
// series holds a plain value. values, when not nil, are the values some
// series must have.
func checkSpecMetrics(t *testing.T, fams map[string]*dto.MetricFamily, values map[string]float64) {
	t.Helper()
	for name, want := range specMetrics {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s is missing", name)
			continue
		}
		if f.GetType() != want.typ {
			t.Errorf("%s is a %v, want a %v", name, f.GetType(), want.typ)
		}
		var have []string
		for _, m := range f.GetMetric() {
			have = append(have, strings.TrimSuffix(strings.TrimPrefix(seriesName("", m), "{"), "}"))
		}
		for _, s := range want.series {
			if !slices.Contains(have, s) {
				t.Errorf("%s lacks the series {%s}; it has %q", name, s, have)
			}
		}
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				// cairn_host_info has no group or branch before the
				// first resolve.
				unresolved := name == "cairn_host_info" && l.GetName() != "host" && l.GetValue() == ""
				if !labelValue.MatchString(l.GetValue()) && !unresolved {
					t.Errorf("%s: label %s=%q is not a plain value", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	for series, want := range values {
		if got, ok := valueOf(fams, series); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", series, got, ok, want)
		}
	}
}

// TestAgentMetricsFromStart checks spec §6 on a live agent: every counter
// and gauge without a commit label exists from the start, at 0, while the
// first run still hangs in its fetch; after that run failed, the failure is
// counted; and no label holds a path or an error text.
func TestAgentMetricsFromStart(t *testing.T) {
	repo, closeRepo := stalledRepo(t)
	root, state := scratch(t)
	a := startAgent(t, "--repo", repo, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0")
	a.waitFor("the first fetch", func(d status.Document) bool { return d.State == "fetching" })
	_, fams := scrape(t, a)
	zero := map[string]float64{}
	for name, m := range specMetrics {
		if name == "cairn_build_info" || m.typ == dto.MetricType_HISTOGRAM {
			continue
		}
		for _, s := range m.series {
			series := name
			if s != "" {
				series += "{" + s + "}"
			}
			zero[series] = 0
		}
	}
	zero[`cairn_state{state="idle"}`] = 0
	zero[`cairn_state{state="fetching"}`] = 1
	// The host is named from the start; its group and branch are not
	// known before the first fetch resolves the hosts block.
	zero[`cairn_host_info{branch="",group="",host="web-02"}`] = 1
	checkSpecMetrics(t, fams, zero)
	for _, name := range []string{"cairn_applied_commit_info", "cairn_target_commit_info"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s has a series before any commit is known", name)
		}
	}
	if h := fams["cairn_run_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 0 {
		t.Errorf("cairn_run_duration_seconds counted %d runs before the first ended", h.GetSampleCount())
	}

	// The server goes away: the fetch fails, and so does the run.
	closeRepo()
	a.waitFor("the failed run", func(d status.Document) bool {
		return d.LastRun != nil && d.LastRun.Result == "failed" && d.State == "idle"
	})
	_, fams = scrape(t, a)
	checkSpecMetrics(t, fams, map[string]float64{
		`cairn_runs_total{result="failed"}`:          1,
		`cairn_runs_total{result="applied"}`:         0,
		`cairn_git_fetch_total{result="error"}`:      1,
		`cairn_git_fetch_total{result="success"}`:    0,
		`cairn_state{state="idle"}`:                  1,
		`cairn_state{state="fetching"}`:              0,
		`cairn_converged`:                            0,
		`cairn_last_success_timestamp_seconds`:       0,
		`cairn_last_fetch_success_timestamp_seconds`: 0,
	})
	if h := fams["cairn_run_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("cairn_run_duration_seconds counted %d runs, want 1", h.GetSampleCount())
	}
	if v, _ := valueOf(fams, "cairn_last_run_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("cairn_last_run_timestamp_seconds = %v after a run", v)
	}
}

// TestAgentMetricsLabels: after runs that applied, refused and drifted,
// every series of spec §6 is there and no label holds a path or an error
// text (the refusal's error names a file and a position).
func TestAgentMetricsLabels(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(2, "one\n", ""))
	a, root, _ := startWeb02(t, r.Dir)
	a.waitFor("the first commit", appliedIs(c1))
	_, fams := scrape(t, a)
	first := seriesSet(fams)
	checkSpecMetrics(t, fams, map[string]float64{
		`cairn_runs_total{result="applied"}`:                       1,
		`cairn_git_fetch_total{result="success"}`:                  1,
		`cairn_converged`:                                          1,
		`cairn_journal_steps`:                                      3,
		`cairn_state{state="idle"}`:                                1,
		`cairn_host_info{branch="main",group="web",host="web-02"}`: 1,
	})
	for _, name := range []string{"cairn_applied_commit_timestamp_seconds", "cairn_target_commit_timestamp_seconds",
		"cairn_last_run_timestamp_seconds", "cairn_last_success_timestamp_seconds", "cairn_last_fetch_success_timestamp_seconds"} {
		if v, _ := valueOf(fams, name); v < float64(time.Now().Add(-time.Hour).Unix()) {
			t.Errorf("%s = %v after a first run that applied", name, v)
		}
	}

	bad := r.Commit("main", fleetFiles(2, "one\n", badRef))
	a.cmd.Process.Signal(syscall.SIGHUP)
	doc := a.waitFor("the refusal", func(d status.Document) bool {
		return d.LastRun != nil && d.LastRun.Commit == bad && d.LastRun.Result == "refused" && d.State == "idle"
	})
	if !strings.Contains(doc.LastRun.Error, "main.cairn") {
		t.Errorf("the refusal's error does not name the file: %q", doc.LastRun.Error)
	}
	os.WriteFile(filepath.Join(root, "srv/f00"), []byte("edited\n"), 0o644)
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the drift", func(d status.Document) bool { return len(d.Drift) == 1 && d.State == "idle" })
	_, fams = scrape(t, a)
	checkSpecMetrics(t, fams, map[string]float64{
		`cairn_refusals_total{reason="compile-error"}`: 1,
		`cairn_runs_total{result="refused"}`:           1,
		`cairn_drift_steps`:                            1,
		`cairn_converged`:                              0,
	})
	// State lives in values: runs that applied, refused and drifted made
	// no series come or go.
	if later := seriesSet(fams); !slices.Equal(first, later) {
		t.Errorf("the series changed:\nafter the first run %q\nlater %q", first, later)
	}
	// The target is the refused commit, the applied one the first.
	for name, commit := range map[string]string{"cairn_applied_commit_info": c1, "cairn_target_commit_info": bad} {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("%s: want one series, got %v", name, f)
			continue
		}
		if got := seriesName(name, f.GetMetric()[0]); !strings.Contains(got, `commit="`+commit+`"`) {
			t.Errorf("%s is %s, want commit %s", name, got, commit)
		}
	}

	// A syntax error is refused at the hosts block, before the target is
	// known: the fetch that brought it still succeeded, and is counted.
	before, _ := valueOf(fams, "cairn_last_fetch_success_timestamp_seconds")
	broken := r.Commit("main", fleetFiles(2, "one\n", "file \"/srv/broken\" {\n"))
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the refusal of the syntax error", func(d status.Document) bool {
		return d.LastRun != nil && d.LastRun.Commit == broken && d.LastRun.Result == "refused" && d.State == "idle"
	})
	_, fams = scrape(t, a)
	checkSpecMetrics(t, fams, map[string]float64{
		`cairn_refusals_total{reason="compile-error"}`: 2,
		`cairn_git_fetch_total{result="success"}`:      4,
		`cairn_git_fetch_total{result="error"}`:        0,
	})
	if after, _ := valueOf(fams, "cairn_last_fetch_success_timestamp_seconds"); after <= before {
		t.Errorf("cairn_last_fetch_success_timestamp_seconds %v -> %v: the fetch of the refused commit is not counted", before, after)
	}
}

// waitLog waits until the agent's log holds n lines with msg, for at most
// 60 s.
func (a *agentProc) waitLog(msg string, n int) {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(a.logText(), `"msg":"`+msg+`"`) < n {
		if time.Now().After(deadline) {
			a.t.Fatalf("waited 60 s for %d log lines %q:\n%s", n, msg, a.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentMetricsCorruptRecord: a corrupt record of the agent's own
// (the last target) is read as missing, logged, and rewritten: the run
// goes on, is counted, and the status reads back.
func TestAgentMetricsCorruptRecord(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	a, _, state := startWeb02(t, r.Dir)
	a.waitFor("the first commit", appliedIs(c1))
	if err := os.WriteFile(filepath.Join(state, "agent", "target.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitLog("run ended", 2)
	a.waitLog("cannot read a record of the agent; it is taken as missing", 1)
	_, fams := scrape(t, a)
	checkSpecMetrics(t, fams, map[string]float64{
		`cairn_runs_total{result="applied"}`:   1,
		`cairn_runs_total{result="unchanged"}`: 1,
		`cairn_runs_total{result="failed"}`:    0,
		`cairn_state{state="idle"}`:            1,
	})
	if strings.Contains(a.logText(), "cannot read the status back") {
		t.Error("the status did not read back after a corrupt record")
	}
	if h := fams["cairn_run_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 2 {
		t.Errorf("cairn_run_duration_seconds counted %d runs, want 2", h.GetSampleCount())
	}
}
