package metrics

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The label values of spec §6. A setter given a value outside these lists
// panics (see the package doc).
var (
	// Results are the values of result in cairn_runs_total.
	Results = []string{ResultApplied, ResultUnchanged, ResultFailed, ResultBroken, ResultRefused}
	// Reasons are the values of reason in cairn_refusals_total.
	Reasons = []string{ReasonUnsigned, ReasonBadSignature, ReasonUnknownKey, ReasonNotDescendant, ReasonBlastRadius, ReasonCompileError}
	// Directions are the values of direction in cairn_ops_total.
	Directions = []string{Forward, Inverse}
)

// Results of a run.
const (
	ResultApplied   = "applied"   // the host moved to the target
	ResultUnchanged = "unchanged" // nothing to move (drift may have been repaired)
	ResultFailed    = "failed"    // the move failed and was undone
	ResultBroken    = "broken"    // the move failed and could not be undone
	ResultRefused   = "refused"   // the target was refused (§4, §5) or did not compile
)

// Reasons for refusing a target commit.
const (
	ReasonUnsigned      = "unsigned"
	ReasonBadSignature  = "bad-signature"
	ReasonUnknownKey    = "unknown-key"
	ReasonNotDescendant = "not-descendant"
	ReasonBlastRadius   = "blast-radius"
	ReasonCompileError  = "compile-error"
)

// Directions of an op.
const (
	Forward = "forward"
	Inverse = "inverse"
)

// DurationBuckets are the buckets of cairn_run_duration_seconds, in
// seconds: from a run with nothing to do to a long package install.
var DurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// Options are the fixed facts New needs.
type Options struct {
	Version, Revision string // for cairn_build_info
	// Host is the agent's host name (--host), for cairn_host_info.
	Host string
	// States are the lifecycle states of spec §3, for cairn_state; the
	// first is the state at start. It must not be empty.
	States []string
	// Kinds are the step kinds whose cairn_ops_total series exist from the
	// start, in both directions; ops of other kinds get their series when
	// they first run.
	Kinds []string
}

// Metrics are the agent's metrics, registered on one registry. Its methods
// may be called from many goroutines at once.
type Metrics struct {
	states   []string
	hostName string

	host, applied, target           *info
	appliedTime, targetTime         prometheus.Gauge
	converged, drift, journal, held prometheus.Gauge
	state                           *prometheus.GaugeVec
	stateMu                         sync.Mutex
	runs, refusals, ops, fetches    *prometheus.CounterVec
	duration                        prometheus.Histogram
	lastRun, lastSuccess, lastFetch prometheus.Gauge
}

// New makes the metrics of spec §6 and registers them on reg.
func New(reg prometheus.Registerer, o Options) (*Metrics, error) {
	if len(o.States) == 0 {
		return nil, fmt.Errorf("metrics: no lifecycle states given")
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	counters := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		states:      slices.Clone(o.States),
		hostName:    o.Host,
		host:        newInfo("cairn_host_info", "The host's name, its group and the branch it follows (value 1; one series; group and branch empty until the first resolve).", "host", "group", "branch"),
		applied:     newInfo("cairn_applied_commit_info", "The commit the host is at (value 1; one series).", "commit", "branch", "group"),
		appliedTime: gauge("cairn_applied_commit_timestamp_seconds", "The committer time of the commit the host is at, in seconds since the epoch."),
		target:      newInfo("cairn_target_commit_info", "The tip of the target branch last fetched (value 1; one series).", "commit", "branch"),
		targetTime:  gauge("cairn_target_commit_timestamp_seconds", "The committer time of the tip last fetched, in seconds since the epoch."),
		converged:   gauge("cairn_converged", "1 when the applied commit is the target and no step drifted, else 0."),
		drift:       gauge("cairn_drift_steps", "Steps whose live state differs from the applied journal."),
		journal:     gauge("cairn_journal_steps", "Steps of the applied journal."),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_state", Help: "1 for the agent's current lifecycle state, 0 for the others.",
		}, []string{"state"}),
		held:     gauge("cairn_held", "1 while a rollback pins the host, else 0."),
		runs:     counters("cairn_runs_total", "Runs, by result.", "result"),
		refusals: counters("cairn_refusals_total", "Target commits refused, by reason.", "reason"),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cairn_run_duration_seconds", Help: "Duration of whole runs, in seconds.", Buckets: DurationBuckets,
		}),
		ops:         counters("cairn_ops_total", "Ops run, by step kind and direction.", "kind", "direction"),
		fetches:     counters("cairn_git_fetch_total", "Fetches of the configuration repository, by result.", "result"),
		lastRun:     gauge("cairn_last_run_timestamp_seconds", "End of the last run, in seconds since the epoch."),
		lastSuccess: gauge("cairn_last_success_timestamp_seconds", "End of the last run that left the host at its target, in seconds since the epoch."),
		lastFetch:   gauge("cairn_last_fetch_success_timestamp_seconds", "End of the last fetch that succeeded, in seconds since the epoch."),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cairn_build_info", Help: "The agent's build (value 1).",
	}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(o.Version, o.Revision, runtime.Version()).Set(1)

	// Every series without a commit label exists from the start; the
	// host's own too, with its group and branch not known yet.
	m.host.always = true
	m.host.set(o.Host, "", "")
	for _, s := range m.states {
		m.state.WithLabelValues(s)
	}
	m.state.WithLabelValues(m.states[0]).Set(1)
	for _, r := range Results {
		m.runs.WithLabelValues(r)
	}
	for _, r := range Reasons {
		m.refusals.WithLabelValues(r)
	}
	for _, k := range o.Kinds {
		for _, d := range Directions {
			m.ops.WithLabelValues(k, d)
		}
	}
	m.fetches.WithLabelValues("success")
	m.fetches.WithLabelValues("error")

	for _, c := range []prometheus.Collector{
		build, m.host, m.applied, m.appliedTime, m.target, m.targetTime, m.converged, m.drift, m.journal,
		m.state, m.held, m.runs, m.refusals, m.duration, m.ops, m.fetches, m.lastRun, m.lastSuccess, m.lastFetch,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// SetApplied records the commit the host is at: the one series of
// cairn_applied_commit_info is replaced, and
// cairn_applied_commit_timestamp_seconds set to its committer time. An
// empty commit removes the series and sets the time to 0.
func (m *Metrics) SetApplied(commit, branch, group string, committed time.Time) {
	m.applied.set(commit, branch, group)
	m.appliedTime.Set(seconds(commit, committed))
}

// SetGroup records the host's group and the branch it follows, as the
// last resolve of the hosts block found them: the one series of
// cairn_host_info is replaced, its host label kept.
func (m *Metrics) SetGroup(group, branch string) {
	m.host.set(m.hostName, group, branch)
}

// SetTarget records the tip of the target branch last fetched, as
// SetApplied does for the applied commit.
func (m *Metrics) SetTarget(commit, branch string, committed time.Time) {
	m.target.set(commit, branch)
	m.targetTime.Set(seconds(commit, committed))
}

// SetState sets cairn_state to 1 for state and 0 for the others. A state
// not given in Options.States panics.
func (m *Metrics) SetState(state string) {
	check("state", state, m.states)
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	for _, s := range m.states {
		m.state.WithLabelValues(s).Set(bit(s == state))
	}
}

// SetHeld sets cairn_held.
func (m *Metrics) SetHeld(held bool) { m.held.Set(bit(held)) }

// SetConverged sets cairn_converged.
func (m *Metrics) SetConverged(converged bool) { m.converged.Set(bit(converged)) }

// SetDrift sets cairn_drift_steps to the number of drifted steps.
func (m *Metrics) SetDrift(n int) { m.drift.Set(float64(n)) }

// SetJournalSteps sets cairn_journal_steps to the steps of the applied
// journal.
func (m *Metrics) SetJournalSteps(n int) { m.journal.Set(float64(n)) }

// RunDone records a run that ended at end after d, with result (one of
// Results): it counts the run, observes its duration, and sets
// cairn_last_run_timestamp_seconds, and cairn_last_success_timestamp_seconds
// too when success says the run left the host at its target. A refused run
// is also counted by Refused, with its reason.
func (m *Metrics) RunDone(result string, d time.Duration, end time.Time, success bool) {
	check("result", result, Results)
	m.runs.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
	m.lastRun.Set(unix(end))
	if success {
		m.lastSuccess.Set(unix(end))
	}
}

// Refused counts a refused target commit, with reason (one of Reasons).
func (m *Metrics) Refused(reason string) {
	check("reason", reason, Reasons)
	m.refusals.WithLabelValues(reason).Inc()
}

// OpDone counts one op of a step kind, in direction Forward or Inverse.
func (m *Metrics) OpDone(kind, direction string) {
	check("direction", direction, Directions)
	m.ops.WithLabelValues(kind, direction).Inc()
}

// FetchDone counts a fetch that ended at end, and when ok sets
// cairn_last_fetch_success_timestamp_seconds.
func (m *Metrics) FetchDone(ok bool, end time.Time) {
	if !ok {
		m.fetches.WithLabelValues("error").Inc()
		return
	}
	m.fetches.WithLabelValues("success").Inc()
	m.lastFetch.Set(unix(end))
}

// check panics when value is not one of the values the spec allows for a
// label: a programming error of the caller, which passes constants.
func check(label, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		panic(fmt.Sprintf("metrics: %s %q is not one of %q", label, value, allowed))
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func seconds(commit string, t time.Time) float64 {
	if commit == "" {
		return 0
	}
	return unix(t)
}

// info is a metric of value 1 with one series at most, whose labels are
// replaced as a whole: a scrape sees the old series or the new one, never
// both and never none.
type info struct {
	desc   *prometheus.Desc
	always bool // the series exists even when its first label is empty
	mu     sync.Mutex
	labels []string // nil: no series
}

func newInfo(name, help string, labels ...string) *info {
	return &info{desc: prometheus.NewDesc(name, help, labels, nil)}
}

func (i *info) set(values ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if values[0] == "" && !i.always {
		i.labels = nil
		return
	}
	i.labels = slices.Clone(values)
}

// Describe implements prometheus.Collector.
func (i *info) Describe(ch chan<- *prometheus.Desc) { ch <- i.desc }

// Collect implements prometheus.Collector.
func (i *info) Collect(ch chan<- prometheus.Metric) {
	i.mu.Lock()
	labels := i.labels
	i.mu.Unlock()
	if labels != nil {
		ch <- prometheus.MustNewConstMetric(i.desc, prometheus.GaugeValue, 1, labels...)
	}
}
