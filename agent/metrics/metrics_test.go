package metrics

import (
	"bytes"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

var states = []string{"idle", "fetching", "verifying", "compiling", "planning", "applying", "confirming", "checking-drift", "failed", "broken", "held"}

// spec is the table of spec §6, written from the spec and not from the
// code: every metric, its type and its labels.
var spec = []struct {
	name   string
	typ    dto.MetricType
	labels []string
}{
	{"cairn_build_info", dto.MetricType_GAUGE, []string{"version", "revision", "goversion"}},
	// cairn_host_info is not in spec §6 yet: issue 11 added it, for the
	// fleet's view (agent/fleet) of which target is which host of which group.
	{"cairn_host_info", dto.MetricType_GAUGE, []string{"host", "group", "branch"}},
	{"cairn_applied_commit_info", dto.MetricType_GAUGE, []string{"commit", "branch", "group"}},
	{"cairn_applied_commit_timestamp_seconds", dto.MetricType_GAUGE, nil},
	{"cairn_target_commit_info", dto.MetricType_GAUGE, []string{"commit", "branch"}},
	{"cairn_target_commit_timestamp_seconds", dto.MetricType_GAUGE, nil},
	{"cairn_converged", dto.MetricType_GAUGE, nil},
	{"cairn_drift_steps", dto.MetricType_GAUGE, nil},
	{"cairn_journal_steps", dto.MetricType_GAUGE, nil},
	{"cairn_state", dto.MetricType_GAUGE, []string{"state"}},
	{"cairn_held", dto.MetricType_GAUGE, nil},
	{"cairn_runs_total", dto.MetricType_COUNTER, []string{"result"}},
	{"cairn_refusals_total", dto.MetricType_COUNTER, []string{"reason"}},
	{"cairn_run_duration_seconds", dto.MetricType_HISTOGRAM, nil},
	{"cairn_ops_total", dto.MetricType_COUNTER, []string{"kind", "direction"}},
	{"cairn_git_fetch_total", dto.MetricType_COUNTER, []string{"result"}},
	{"cairn_last_run_timestamp_seconds", dto.MetricType_GAUGE, nil},
	{"cairn_last_success_timestamp_seconds", dto.MetricType_GAUGE, nil},
	{"cairn_last_fetch_success_timestamp_seconds", dto.MetricType_GAUGE, nil},
}

// labelValues are the label values spec §6 lists; each must have a series
// from the start.
var labelValues = map[string]map[string][]string{
	"cairn_runs_total":      {"result": {"applied", "unchanged", "failed", "broken", "refused"}},
	"cairn_refusals_total":  {"reason": {"unsigned", "bad-signature", "unknown-key", "not-descendant", "blast-radius", "compile-error"}},
	"cairn_git_fetch_total": {"result": {"success", "error"}},
	"cairn_ops_total":       {"direction": {"forward", "inverse"}, "kind": {"COPY", "FILE"}},
	"cairn_state":           {"state": states},
}

func newMetrics(t *testing.T) (*prometheus.Registry, *Metrics) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Options{Version: "1.2.3", Revision: "abc123", Host: "web-01", States: states, Kinds: []string{"COPY", "FILE"}})
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}

func gather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}

// exercise calls every setter once, so that every metric has a series.
func exercise(m *Metrics) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	m.SetApplied("0123456789abcdef0123456789abcdef01234567", "main", "web", now.Add(-time.Hour))
	m.SetTarget("89abcdef0123456789abcdef0123456789abcdef", "main", now)
	m.SetGroup("web", "main")
	m.SetState("applying")
	m.SetHeld(true)
	m.SetConverged(true)
	m.SetDrift(3)
	m.SetJournalSteps(42)
	m.RunDone(ResultApplied, 2500*time.Millisecond, now, true)
	m.Refused(ReasonBlastRadius)
	m.OpDone("USER", Inverse)
	m.FetchDone(true, now)
}

func TestSpecTable(t *testing.T) {
	reg, m := newMetrics(t)
	exercise(m)
	got := gather(t, reg)
	for _, s := range spec {
		mf, ok := got[s.name]
		if !ok {
			t.Errorf("%s: missing", s.name)
			continue
		}
		if mf.GetType() != s.typ {
			t.Errorf("%s: type %v, want %v", s.name, mf.GetType(), s.typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help text", s.name)
		}
		for _, mm := range mf.GetMetric() {
			var names []string
			for _, l := range mm.GetLabel() {
				names = append(names, l.GetName())
			}
			want := slices.Clone(s.labels)
			slices.Sort(want)
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Errorf("%s: labels %v, want %v", s.name, names, want)
			}
		}
		delete(got, s.name)
	}
	for name := range got {
		t.Errorf("%s: not in the spec's table (add it to the spec first)", name)
	}
}

func TestEverythingExistsAtStart(t *testing.T) {
	reg, _ := newMetrics(t)
	got := gather(t, reg)
	for _, s := range spec {
		if slices.Contains(s.labels, "commit") {
			if mf := got[s.name]; mf != nil && len(mf.GetMetric()) > 0 {
				t.Errorf("%s: has a series before any commit is known", s.name)
			}
			continue
		}
		mf := got[s.name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			t.Errorf("%s: no series at start", s.name)
			continue
		}
		for label, values := range labelValues[s.name] {
			for _, v := range values {
				if !hasLabel(mf, label, v) {
					t.Errorf("%s: no series {%s=%q} at start", s.name, label, v)
				}
			}
		}
		for _, mm := range mf.GetMetric() {
			var v float64
			switch {
			case mm.Counter != nil:
				v = mm.Counter.GetValue()
			case mm.Histogram != nil:
				v = float64(mm.Histogram.GetSampleCount())
			case s.name == "cairn_build_info":
				v = mm.Gauge.GetValue() - 1
			case s.name == "cairn_host_info":
				// The host is named from the start; its group and branch
				// are not known before the first resolve.
				if labelOf(mm, "host") != "web-01" || labelOf(mm, "group") != "" || labelOf(mm, "branch") != "" {
					t.Errorf("%s%v at start, want host web-01, no group or branch", s.name, mm.GetLabel())
				}
				v = mm.Gauge.GetValue() - 1
			case s.name == "cairn_state" && labelOf(mm, "state") == states[0]:
				v = mm.Gauge.GetValue() - 1
			default:
				v = mm.Gauge.GetValue()
			}
			if v != 0 {
				t.Errorf("%s%v: starts at %v off its start value", s.name, mm.GetLabel(), v)
			}
		}
	}
}

func hasLabel(mf *dto.MetricFamily, name, value string) bool {
	for _, mm := range mf.GetMetric() {
		if labelOf(mm, name) == value {
			return true
		}
	}
	return false
}

func labelOf(mm *dto.Metric, name string) string {
	for _, l := range mm.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestValues(t *testing.T) {
	reg, m := newMetrics(t)
	exercise(m)
	m.SetApplied("fedcba9876543210fedcba9876543210fedcba98", "canary", "edge", time.Unix(1700000000, 500000000))
	m.RunDone(ResultFailed, time.Second, time.Unix(1800000000, 0), false)
	m.FetchDone(false, time.Unix(1800000001, 0))
	m.SetState("idle")
	m.SetGroup("edge", "canary")
	want := `
# HELP cairn_host_info The host's name, its group and the branch it follows (value 1; one series; group and branch empty until the first resolve).
# TYPE cairn_host_info gauge
cairn_host_info{branch="canary",group="edge",host="web-01"} 1
# HELP cairn_applied_commit_info The commit the host is at (value 1; one series).
# TYPE cairn_applied_commit_info gauge
cairn_applied_commit_info{branch="canary",commit="fedcba9876543210fedcba9876543210fedcba98",group="edge"} 1
# HELP cairn_applied_commit_timestamp_seconds The committer time of the commit the host is at, in seconds since the epoch.
# TYPE cairn_applied_commit_timestamp_seconds gauge
cairn_applied_commit_timestamp_seconds 1.7000000005e+09
# HELP cairn_git_fetch_total Fetches of the configuration repository, by result.
# TYPE cairn_git_fetch_total counter
cairn_git_fetch_total{result="error"} 1
cairn_git_fetch_total{result="success"} 1
# HELP cairn_last_fetch_success_timestamp_seconds End of the last fetch that succeeded, in seconds since the epoch.
# TYPE cairn_last_fetch_success_timestamp_seconds gauge
cairn_last_fetch_success_timestamp_seconds 1.796292e+09
# HELP cairn_last_run_timestamp_seconds End of the last run, in seconds since the epoch.
# TYPE cairn_last_run_timestamp_seconds gauge
cairn_last_run_timestamp_seconds 1.8e+09
# HELP cairn_last_success_timestamp_seconds End of the last run that left the host at its target, in seconds since the epoch.
# TYPE cairn_last_success_timestamp_seconds gauge
cairn_last_success_timestamp_seconds 1.796292e+09
# HELP cairn_ops_total Ops run, by step kind and direction.
# TYPE cairn_ops_total counter
cairn_ops_total{direction="forward",kind="COPY"} 0
cairn_ops_total{direction="forward",kind="FILE"} 0
cairn_ops_total{direction="inverse",kind="COPY"} 0
cairn_ops_total{direction="inverse",kind="FILE"} 0
cairn_ops_total{direction="inverse",kind="USER"} 1
# HELP cairn_runs_total Runs, by result.
# TYPE cairn_runs_total counter
cairn_runs_total{result="applied"} 1
cairn_runs_total{result="broken"} 0
cairn_runs_total{result="failed"} 1
cairn_runs_total{result="refused"} 0
cairn_runs_total{result="unchanged"} 0
# HELP cairn_state 1 for the agent's current lifecycle state, 0 for the others.
# TYPE cairn_state gauge
cairn_state{state="applying"} 0
cairn_state{state="broken"} 0
cairn_state{state="checking-drift"} 0
cairn_state{state="compiling"} 0
cairn_state{state="confirming"} 0
cairn_state{state="failed"} 0
cairn_state{state="fetching"} 0
cairn_state{state="held"} 0
cairn_state{state="idle"} 1
cairn_state{state="planning"} 0
cairn_state{state="verifying"} 0
`
	names := []string{"cairn_host_info", "cairn_applied_commit_info", "cairn_applied_commit_timestamp_seconds", "cairn_git_fetch_total",
		"cairn_last_fetch_success_timestamp_seconds", "cairn_last_run_timestamp_seconds", "cairn_last_success_timestamp_seconds",
		"cairn_ops_total", "cairn_runs_total", "cairn_state"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("duration: %d series", n)
	}
	// The histogram saw both runs; 2.5 s and 1 s.
	h := gather(t, reg)["cairn_run_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 3.5 {
		t.Errorf("duration: %d runs, %v s; want 2, 3.5", h.GetSampleCount(), h.GetSampleSum())
	}
	for name, want := range map[string]float64{"cairn_held": 1, "cairn_converged": 1, "cairn_drift_steps": 3, "cairn_journal_steps": 42} {
		if got := gather(t, reg)[name].GetMetric()[0].GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	m.SetHeld(false)
	m.SetConverged(false)
	if testutil.ToFloat64(m.held) != 0 || testutil.ToFloat64(m.converged) != 0 {
		t.Error("held or converged did not go back to 0")
	}

	// An empty commit removes the info series and zeroes its time.
	m.SetTarget("", "", time.Time{})
	if n := testutil.CollectAndCount(m.target); n != 0 {
		t.Errorf("target info: %d series after clearing it", n)
	}
	if v := testutil.ToFloat64(m.targetTime); v != 0 {
		t.Errorf("target time %v after clearing it", v)
	}
}

func TestUnknownLabelValuesPanic(t *testing.T) {
	_, m := newMetrics(t)
	for name, f := range map[string]func(){
		"result":    func() { m.RunDone("ok", time.Second, time.Now(), true) },
		"reason":    func() { m.Refused("bad signature") },
		"direction": func() { m.OpDone("FILE", "backward") },
		"state":     func() { m.SetState("sleeping") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: an unknown value did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(prometheus.NewRegistry(), Options{}); err == nil {
		t.Error("New without states: no error")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(reg, Options{States: states}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, Options{States: states}); err == nil {
		t.Error("registering twice on one registry: no error")
	}
}

func TestLint(t *testing.T) {
	reg, m := newMetrics(t)
	for _, when := range []string{"at start", "after use"} {
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", when, p.Metric, p.Text)
		}
		exercise(m)
	}
}

// TestPromtool runs `promtool check metrics` on the text a scrape gets.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	reg, m := newMetrics(t)
	for _, when := range []string{"at start", "after use"} {
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body := rec.Body.Bytes()
		if !bytes.Contains(body, []byte("cairn_runs_total")) {
			t.Fatalf("%s: the scrape lacks the metrics:\n%s", when, body)
		}
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", when, err, out)
		}
		exercise(m)
	}
}

// TestInfoReplacedAtOnce scrapes while the applied commit changes: every
// scrape sees exactly one series.
func TestInfoReplacedAtOnce(t *testing.T) {
	reg, m := newMetrics(t)
	m.SetApplied("0123456789abcdef0123456789abcdef01234567", "main", "web", time.Now())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.SetApplied(strings.Repeat(string(rune('a'+i%6)), 40), "main", "web", time.Now())
		}
	}()
	for range 200 {
		if n := len(gather(t, reg)["cairn_applied_commit_info"].GetMetric()); n != 1 {
			t.Errorf("a scrape saw %d series of cairn_applied_commit_info, want 1", n)
			break
		}
	}
	close(stop)
	<-done
}
