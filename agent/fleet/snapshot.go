package fleet

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Host is one scrape target of a cairn agent as Prometheus sees it at one
// moment: the instant values of its metrics (spec §6), with Prometheus'
// lookback of 5 minutes. A target that is down has only what
// cairn_host_info said last (Host, Group, Branch) and Up false.
type Host struct {
	// Instance and Job are the target's labels in Prometheus.
	Instance string `json:"instance"`
	Job      string `json:"job"`
	// Host, Group and Branch are cairn_host_info's labels: the agent's
	// host name, and the group and branch the hosts block gives it (empty
	// before its first fetch).
	Host   string `json:"host"`
	Group  string `json:"group"`
	Branch string `json:"branch"`
	// Up is up == 1: the last scrape succeeded.
	Up bool `json:"up"`
	// Applied is the commit the host is at (cairn_applied_commit_info),
	// "" before its first move; Committed its committer time.
	Applied   string    `json:"applied"`
	Committed time.Time `json:"committed,omitzero"`
	// Target is the tip of its branch it fetched last
	// (cairn_target_commit_info), "" before its first fetch;
	// TargetCommitted its committer time.
	Target          string    `json:"target"`
	TargetCommitted time.Time `json:"target_committed,omitzero"`
	// Converged is cairn_converged == 1; Drift is cairn_drift_steps.
	Converged bool `json:"converged"`
	Drift     int  `json:"drift"`
	// Held is cairn_held == 1: a rollback pins the host.
	Held bool `json:"held"`
	// State is the lifecycle state whose cairn_state is 1.
	State string `json:"state"`
	// Failing says that the host tried the tip of its branch and could not
	// move to it, as the rule cairn:host_stuck:info of
	// prometheus/alerts.yml says: its target is not its applied commit, it
	// is not held, and its last run did not leave it at its target
	// (cairn_last_run_timestamp_seconds >
	// cairn_last_success_timestamp_seconds): the move failed and was undone,
	// broke, or the commit was refused. A host between the fetch of a new
	// commit and the end of its move is not failing.
	Failing bool `json:"failing"`
	// LastRun is the end of its last run (zero before the first).
	LastRun time.Time `json:"last_run,omitzero"`
}

// Snapshot returns every scrape target that reports cairn_host_info (in the
// MembershipLookback before at; a target down at at is one of them while
// Prometheus still has an up series for it), as Prometheus sees it at at,
// sorted by Group, Host, then Instance. The zero at means now.
func Snapshot(ctx context.Context, api API, at time.Time) ([]Host, error) {
	if at.IsZero() {
		at = time.Now()
	}
	infos, err := hostInfos(ctx, api, MembershipLookback, at)
	if err != nil {
		return nil, err
	}
	up, err := vector(ctx, api, "up", at)
	if err != nil {
		return nil, err
	}
	hosts := map[target]*Host{}
	for _, s := range up {
		t := targetOf(s.Metric)
		info, ok := infos[t]
		if !ok {
			continue // not a cairn agent
		}
		hosts[t] = &Host{Instance: t.instance, Job: t.job, Host: info.host, Group: info.group, Branch: info.branch, Up: s.Value == 1}
	}

	// Each query sets a field of the hosts it has a sample for.
	for _, q := range []struct {
		query string
		set   func(h *Host, m model.Metric, v float64)
	}{
		{"cairn_applied_commit_info", func(h *Host, m model.Metric, _ float64) { h.Applied = string(m["commit"]) }},
		{"cairn_applied_commit_timestamp_seconds", func(h *Host, _ model.Metric, v float64) { h.Committed = unixTime(v) }},
		{"cairn_target_commit_info", func(h *Host, m model.Metric, _ float64) { h.Target = string(m["commit"]) }},
		{"cairn_target_commit_timestamp_seconds", func(h *Host, _ model.Metric, v float64) { h.TargetCommitted = unixTime(v) }},
		{"cairn_converged", func(h *Host, _ model.Metric, v float64) { h.Converged = v == 1 }},
		{"cairn_drift_steps", func(h *Host, _ model.Metric, v float64) { h.Drift = int(v) }},
		{"cairn_held", func(h *Host, _ model.Metric, v float64) { h.Held = v == 1 }},
		{"cairn_state == 1", func(h *Host, m model.Metric, _ float64) { h.State = string(m["state"]) }},
		{"cairn_last_run_timestamp_seconds", func(h *Host, _ model.Metric, v float64) { h.LastRun = unixTime(v) }},
		{stuckQuery, func(h *Host, _ model.Metric, _ float64) { h.Failing = true }},
	} {
		vec, err := vector(ctx, api, q.query, at)
		if err != nil {
			return nil, err
		}
		for _, s := range vec {
			if h, ok := hosts[targetOf(s.Metric)]; ok && h.Up {
				q.set(h, s.Metric, float64(s.Value))
			}
		}
	}

	out := make([]Host, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b Host) int {
		return cmpOr(strings.Compare(a.Group, b.Group), cmpOr(strings.Compare(a.Host, b.Host), strings.Compare(a.Instance, b.Instance)))
	})
	return out, nil
}

// stuckQuery is the expression of the rule cairn:host_stuck:info of
// prometheus/alerts.yml without the group (Snapshot takes it from
// cairn_host_info), so that Snapshot does not need the rules loaded.
const stuckQuery = `max by (instance, job, commit) (cairn_target_commit_info)
unless on (instance, job, commit) cairn_applied_commit_info
unless on (instance, job) (cairn_held == 1)
and on (instance, job) (cairn_last_run_timestamp_seconds > cairn_last_success_timestamp_seconds)`

// unixTime reads seconds since the epoch; 0 is the zero time.
func unixTime(v float64) time.Time {
	if v == 0 || math.IsNaN(v) {
		return time.Time{}
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// Group is one host group of a Snapshot, as Summarize counts it.
type Group struct {
	// Name is the group's name ("" for hosts whose first fetch has not
	// resolved a group yet); Branch the branch its hosts follow (the most
	// common among them, should they differ while a change spreads).
	Name   string `json:"name"`
	Branch string `json:"branch"`
	// Tip is the branch tip: the newest (by committer time) target commit
	// that its hosts fetched; "" when none fetched one. TipCommitted is its
	// committer time.
	Tip          string    `json:"tip"`
	TipCommitted time.Time `json:"tip_committed,omitzero"`
	// Hosts is how many hosts the group has; Commits how many of them are
	// at each applied commit.
	Hosts   int           `json:"hosts"`
	Commits []CommitHosts `json:"commits"`
	// Converged, Drifting (cairn_drift_steps > 0), Failing (Host.Failing),
	// Held and Down (up 0) count hosts; a host may be in several.
	Converged int `json:"converged"`
	Drifting  int `json:"drifting"`
	Failing   int `json:"failing"`
	Held      int `json:"held"`
	Down      int `json:"down"`
	// Lagging are the hosts whose applied commit is not Tip (down hosts,
	// whose commit is not known, too), sorted by Host then Instance.
	Lagging []Host `json:"lagging"`
}

// CommitHosts is how many hosts of a group are at one applied commit.
type CommitHosts struct {
	// Commit is the applied commit; "" for hosts that have none or are
	// down. Committed is its committer time.
	Commit    string    `json:"commit"`
	Committed time.Time `json:"committed,omitzero"`
	Hosts     int       `json:"hosts"`
}

// Settled says that every host of the group is up and converged at the
// group's tip.
func (g Group) Settled() bool {
	return g.Tip != "" && g.Converged == g.Hosts && len(g.Lagging) == 0
}

// Summarize groups hosts by their group, sorted by name, with the counts
// of Group. The commits of a group are sorted newest first (by committer
// time, then hash), the hosts of unknown commit last.
func Summarize(hosts []Host) []Group {
	byName := map[string][]Host{}
	for _, h := range hosts {
		byName[h.Group] = append(byName[h.Group], h)
	}
	var out []Group
	for name, hs := range byName {
		g := Group{Name: name, Hosts: len(hs), Commits: []CommitHosts{}, Lagging: []Host{}}
		branches := map[string]int{}
		commits := map[string]*CommitHosts{}
		for _, h := range hs {
			branches[h.Branch]++
			if h.Target != "" && (g.Tip == "" || h.TargetCommitted.After(g.TipCommitted) ||
				h.TargetCommitted.Equal(g.TipCommitted) && h.Target < g.Tip) {
				g.Tip, g.TipCommitted = h.Target, h.TargetCommitted
			}
			c := commits[h.Applied]
			if c == nil {
				c = &CommitHosts{Commit: h.Applied, Committed: h.Committed}
				commits[h.Applied] = c
			}
			c.Hosts++
			g.Converged += count(h.Converged)
			g.Drifting += count(h.Drift > 0)
			g.Failing += count(h.Failing)
			g.Held += count(h.Held)
			g.Down += count(!h.Up)
		}
		for b, n := range branches {
			if n > branches[g.Branch] || n == branches[g.Branch] && b < g.Branch {
				g.Branch = b
			}
		}
		for _, c := range commits {
			g.Commits = append(g.Commits, *c)
		}
		slices.SortFunc(g.Commits, func(a, b CommitHosts) int {
			switch {
			case (a.Commit == "") != (b.Commit == ""):
				return count(a.Commit == "") - count(b.Commit == "")
			case !a.Committed.Equal(b.Committed):
				return b.Committed.Compare(a.Committed)
			}
			return strings.Compare(a.Commit, b.Commit)
		})
		for _, h := range hs {
			if h.Applied != g.Tip || h.Applied == "" {
				g.Lagging = append(g.Lagging, h)
			}
		}
		slices.SortFunc(g.Lagging, func(a, b Host) int {
			return cmpOr(strings.Compare(a.Host, b.Host), strings.Compare(a.Instance, b.Instance))
		})
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// String names a host for people: its host name and, when it differs, its
// instance.
func (h Host) String() string {
	if h.Host == "" || h.Host == h.Instance {
		return h.Instance
	}
	return fmt.Sprintf("%s (%s)", h.Host, h.Instance)
}
