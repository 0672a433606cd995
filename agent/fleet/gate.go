package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// MembershipLookback is how far before the soak window Gate looks for a
// target's cairn_host_info: a host that went down shortly before the window
// (and so reports nothing in it) is still a host of its group, and fails
// the gate as down instead of silently leaving the group.
const MembershipLookback = time.Hour

// Gate decides whether every host of o.Group ran o.Commit healthily for
// the whole window [o.Now-o.Soak, o.Now], from what Prometheus scraped.
//
// The group's hosts are the scrape targets that have an up series in the
// window and whose latest cairn_host_info, in the window or the
// MembershipLookback before it, has group o.Group: a host that is down is
// one of them. Each must meet every condition on every sample of the
// window (checked with *_over_time and increase over the window, so no
// sample is skipped), and the gauges on the last scrape at or before the
// window's start too, which answers for the time up to the first scrape in
// the window (an instant query at the start, with Prometheus' lookback):
//
//  1. scraped: up is 1 at the window's start and on every scrape in it,
//     and its scrapes cover the window without a gap: from the host's
//     raw up samples, its scrape interval I is the lower quartile of the
//     distances between consecutive samples; the first sample is at most
//     I after the window's start, no two consecutive samples reaching
//     into the window are more than 1.5 I apart (unless the window's
//     start cuts the gap less than I before its end; a missed scrape, as
//     when Prometheus restarted or the target left its service discovery
//     for a while, leaves no failed sample but would let the other
//     conditions judge only part of the window), and the last is at most
//     2.5 I before the window's end;
//  2. at the commit: cairn_applied_commit_info has commit o.Commit, and no
//     other, on every scrape that succeeded;
//  3. converged: cairn_converged is 1 on every sample (a host scraped
//     without it fails too);
//  4. no bad run: cairn_runs_total{result=~"failed|broken|refused"} did
//     not increase (counter resets, at an agent's restart, are handled);
//  5. not rolled back: cairn_held is 0 on every sample, and
//     cairn_ops_total{direction="inverse"} did not increase;
//  6. not restarted: process_start_time_seconds did not change (an agent
//     that restarted may have failed a run that no counter shows any
//     more, as a reset brings the counter back to where it was; agents
//     without the metric, before the process collector, are not judged
//     by it).
//
// The group needs at least o.MinHosts hosts (1 when it is below 1),
// counted by host name: targets that report one host name are one host.
// For a broken condition the host's reasons say which and when (the first
// sample that broke it, read from the raw samples of that host).
//
// An error means Prometheus could not be asked, or o is not usable (no
// group, no commit, a soak under a millisecond): no verdict then.
func Gate(ctx context.Context, api API, o GateOptions) (*Verdict, error) {
	switch {
	case o.Group == "":
		return nil, errors.New("gate: no group")
	case o.Commit == "":
		return nil, errors.New("gate: no commit")
	case o.Soak < time.Millisecond:
		return nil, fmt.Errorf("gate: soak %v: want at least 1ms", o.Soak)
	}
	o.Soak = o.Soak.Truncate(time.Millisecond)
	if o.MinHosts < 1 {
		o.MinHosts = 1
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	// Prometheus keeps milliseconds.
	now := o.Now.Truncate(time.Millisecond)
	g := &gate{ctx: ctx, api: api, o: o, now: now, from: now.Add(-o.Soak), w: promDuration(o.Soak)}
	v := &Verdict{Group: o.Group, Commit: o.Commit, From: g.from, To: now}

	hosts, err := g.members()
	if err != nil {
		return nil, err
	}
	if err := g.check(hosts); err != nil {
		return nil, err
	}
	v.OK = true
	for _, h := range hosts {
		hv := HostVerdict{Host: h.host, Instance: h.instance, Reasons: h.reasons, OK: len(h.reasons) == 0}
		v.OK = v.OK && hv.OK
		v.Hosts = append(v.Hosts, hv)
	}
	slices.SortFunc(v.Hosts, func(a, b HostVerdict) int {
		return byHost(a.Host, a.Instance, b.Host, b.Instance)
	})
	// Hosts are counted by name: two targets that say they are one host
	// (one agent scraped by two jobs, or two machines given one --host)
	// are one host toward MinHosts.
	names := map[string]bool{}
	for _, h := range hosts {
		names[cmp.Or(h.host, h.instance)] = true
	}
	switch n := len(names); {
	case n == 0:
		v.OK = false
		v.Reasons = append(v.Reasons, fmt.Sprintf("group %s has no hosts: no scrape target reported cairn_host_info with group %q between %s and %s",
			o.Group, o.Group, stamp(g.from.Add(-MembershipLookback)), stamp(now)))
	case n < o.MinHosts:
		v.OK = false
		v.Reasons = append(v.Reasons, fmt.Sprintf("group %s has %d %s, fewer than the %d required", o.Group, n, plural(n, "host", "hosts"), o.MinHosts))
	}
	return v, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// gate is one call of Gate.
type gate struct {
	ctx       context.Context
	api       API
	o         GateOptions
	now, from time.Time
	w         string // the window as a PromQL range
}

// member is one host of the group and the reasons it fails.
type member struct {
	hostInfo
	reasons []string
}

// members returns the group's hosts, in no order.
func (g *gate) members() ([]*member, error) {
	infos, err := hostInfos(g.ctx, g.api, g.o.Soak+MembershipLookback, g.now)
	if err != nil {
		return nil, err
	}
	scraped, err := vector(g.ctx, g.api, fmt.Sprintf("count_over_time(up[%s])", g.w), g.now)
	if err != nil {
		return nil, err
	}
	var out []*member
	for t := range byTarget(scraped) {
		if info, ok := infos[t]; ok && info.group == g.o.Group {
			out = append(out, &member{hostInfo: info})
		}
	}
	return out, nil
}

// check adds to each host the reasons of the conditions it breaks.
func (g *gate) check(hosts []*member) error {
	if len(hosts) == 0 {
		return nil
	}
	at := func(q string, ts time.Time) (map[target]float64, error) {
		vec, err := vector(g.ctx, g.api, q, ts)
		return byTarget(vec), err
	}
	// Scraped at the window's start: up's value then (with Prometheus'
	// lookback of 5 minutes), which is 1 only for a target already scraped.
	start, err := at("up", g.from)
	if err != nil {
		return err
	}
	upMin, err := at(fmt.Sprintf("min_over_time(up[%s])", g.w), g.now)
	if err != nil {
		return err
	}
	// Successful scrapes, and those that saw the commit: equal when the
	// commit was reported on every successful scrape.
	good, err := at(fmt.Sprintf("sum_over_time(up[%s])", g.w), g.now)
	if err != nil {
		return err
	}
	atCommit, err := at(fmt.Sprintf("count_over_time(cairn_applied_commit_info{commit=%q}[%s])", g.o.Commit, g.w), g.now)
	if err != nil {
		return err
	}
	other, err := at(fmt.Sprintf("count by (instance, job) (count_over_time(cairn_applied_commit_info{commit!=%q}[%s]))", g.o.Commit, g.w), g.now)
	if err != nil {
		return err
	}
	// The last scrape at or before the window's start answers for the
	// time up to the first scrape in the window: the gauges must hold on
	// it too (asked at the window's start, with the lookback).
	startVec, err := vector(g.ctx, g.api, "cairn_applied_commit_info", g.from)
	if err != nil {
		return err
	}
	startCommits := map[target][]string{}
	for _, s := range startVec {
		t := targetOf(s.Metric)
		startCommits[t] = append(startCommits[t], string(s.Metric["commit"]))
	}
	for _, h := range hosts {
		t := h.target
		if s, ok := start[t]; !ok || s != 1 || upMin[t] != 1 {
			if err := g.whyDown(h); err != nil {
				return err
			}
		} else if err := g.covered(h); err != nil {
			return err
		}
		if good[t] > 0 && (atCommit[t] != good[t] || other[t] > 0) {
			if err := g.whyCommit(h); err != nil {
				return err
			}
		} else if start[t] == 1 && !slices.Equal(startCommits[t], []string{g.o.Commit}) {
			switch cs := startCommits[t]; {
			case len(cs) == 0:
				h.addf("reported no applied commit at the window's start %s (its last scrape before it)", stamp(g.from))
			default:
				other := cs[0]
				if other == g.o.Commit {
					other = cs[1]
				}
				h.addf("at commit %s, not %s, at the window's start %s (its last scrape before it)", short(other), short(g.o.Commit), stamp(g.from))
			}
		}
	}

	for _, c := range []struct {
		query  string
		bad    func(float64) bool
		metric string // the series whose raw samples say when
		why    func(m model.Metric, prev, v float64, first bool) string
		// required: a host scraped in the window must have a value (a
		// gauge the agent always exports).
		required bool
		// start is the gauge asked at the window's start ("" for a
		// counter), whose value there must not be bad either; what the
		// reason says of a bad one.
		start, what string
	}{
		{
			query:  "min_over_time(cairn_converged[%s])",
			bad:    func(v float64) bool { return v != 1 },
			metric: "cairn_converged",
			why: func(_ model.Metric, _, v float64, _ bool) string {
				if v != 1 {
					return "not converged"
				}
				return ""
			},
			required: true,
			start:    "cairn_converged",
			what:     "not converged",
		},
		{
			query:  `sum by (instance, job) (increase(cairn_runs_total{result=~"failed|broken|refused"}[%s]))`,
			bad:    func(v float64) bool { return v > 0 },
			metric: `cairn_runs_total{result=~"failed|broken|refused"}`,
			why: func(m model.Metric, prev, v float64, first bool) string {
				if first || !increased(prev, v) {
					return ""
				}
				switch m["result"] {
				case "failed":
					return "a run failed (and was undone)"
				case "broken":
					return "a run failed and could not be undone"
				default:
					return "a run refused its target commit"
				}
			},
		},
		{
			query:  "max_over_time(cairn_held[%s])",
			bad:    func(v float64) bool { return v != 0 },
			metric: "cairn_held",
			why: func(_ model.Metric, _, v float64, _ bool) string {
				if v != 0 {
					return "held by a rollback"
				}
				return ""
			},
			required: true,
			start:    "cairn_held",
			what:     "held by a rollback",
		},
		{
			query:  `sum by (instance, job) (increase(cairn_ops_total{direction="inverse"}[%s]))`,
			bad:    func(v float64) bool { return v > 0 },
			metric: `cairn_ops_total{direction="inverse"}`,
			why: func(m model.Metric, prev, v float64, first bool) string {
				if first || !increased(prev, v) {
					return ""
				}
				return fmt.Sprintf("rolled back (ran %s ops backwards)", Printable(string(m["kind"])))
			},
		},
		{
			// An agent that restarted may have failed a run that no
			// counter shows any more (a reset brings it back to where it
			// was); it has not run one process for the whole window. An
			// agent without the process collector is not judged by it.
			query:  "changes(process_start_time_seconds[%s])",
			bad:    func(v float64) bool { return v > 0 },
			metric: "process_start_time_seconds",
			why: func(_ model.Metric, prev, v float64, first bool) string {
				if first || v == prev {
					return ""
				}
				return "the agent restarted"
			},
		},
	} {
		values, err := at(fmt.Sprintf(c.query, g.w), g.now)
		if err != nil {
			return err
		}
		var atStart map[target]float64
		if c.start != "" {
			if atStart, err = at(c.start, g.from); err != nil {
				return err
			}
		}
		for _, h := range hosts {
			v, ok := values[h.target]
			if !ok && c.required && good[h.target] > 0 {
				h.addf("reported no %s from %s to %s", c.metric, stamp(g.from), stamp(g.now))
				continue
			}
			if !ok || !c.bad(v) {
				if sv, sok := atStart[h.target]; c.start != "" && start[h.target] == 1 && (!sok || c.bad(sv)) {
					if !sok {
						h.addf("reported no %s at the window's start %s (its last scrape before it)", c.metric, stamp(g.from))
					} else {
						h.addf("%s at the window's start %s (its last scrape before it)", c.what, stamp(g.from))
					}
				}
				continue
			}
			if err := g.whyFirst(h, c.metric, c.why); err != nil {
				return err
			}
		}
	}
	return nil
}

// increased says whether a counter went up from prev to v: a reset (an
// agent's restart) to a value above 0 counts, as for increase().
func increased(prev, v float64) bool { return v > prev || (v < prev && v > 0) }

// raw returns the raw samples of the host's series selected by metric (a
// metric name, with matchers or not) in the window.
func (g *gate) raw(h *member, metric string, from time.Time) (model.Matrix, error) {
	sel := h.selector()
	if i := strings.IndexByte(metric, '{'); i >= 0 {
		metric = metric[:i+1] + sel + "," + metric[i+1:]
	} else {
		metric += "{" + sel + "}"
	}
	return matrix(g.ctx, g.api, fmt.Sprintf("%s[%s]", metric, promDuration(g.now.Sub(from))), g.now)
}

// whyFirst adds the first sample of metric, over all its series, for
// which why says something.
func (g *gate) whyFirst(h *member, metric string, why func(m model.Metric, prev, v float64, first bool) string) error {
	m, err := g.raw(h, metric, g.from)
	if err != nil {
		return err
	}
	var when model.Time
	var what string
	for _, s := range m {
		for i, p := range s.Values {
			var prev float64
			if i > 0 {
				prev = float64(s.Values[i-1].Value)
			}
			if w := why(s.Metric, prev, float64(p.Value), i == 0); w != "" {
				if what == "" || p.Timestamp < when {
					when, what = p.Timestamp, w
				}
				break
			}
		}
	}
	if what == "" {
		// The range function saw it; the raw samples, read a moment
		// later, should too. Say what is known.
		h.addf("broke a condition (%s) in the window from %s", metric, stamp(g.from))
		return nil
	}
	h.addf("%s at %s", what, stamp(when.Time()))
	return nil
}

// lookback is the lookback of an instant query: the sample that answers
// for the window's start is at most this old.
const lookback = 5 * time.Minute

// covered adds a reason when the host's scrapes, each of which succeeded,
// leave part of the window unseen: Prometheus stopped scraping it for a
// while (Prometheus restarted, was overloaded, or the target left its
// service discovery and came back), so that the other conditions, which
// judge the samples there are, cannot say what happened in between.
//
// The host's scrape interval is read from its raw up samples from the
// lookback before the window to its end: the lower quartile of the
// distances between consecutive samples (robust to a few gaps and to a
// scrape that came late and the next on time). The samples cover the
// window when the first is at most one interval after the window's start,
// no two consecutive ones that reach into the window are more than 1.5
// intervals apart (one missed scrape is a gap; the jitter of a busy
// Prometheus, under half an interval, is not; a gap that the window's
// start cuts counts only when the first scrape in the window is more than
// one interval after the start), and the last is at most 2.5 intervals
// before the window's end (the scrape in flight at the end is not stored
// yet). A host with fewer than two samples has no interval and is not
// covered.
func (g *gate) covered(h *member) error {
	ups, err := g.ups(h)
	if err != nil {
		return err
	}
	var ts []model.Time
	for _, p := range ups {
		ts = append(ts, p.Timestamp)
	}
	ts = slices.Compact(ts)
	if len(ts) < 2 {
		h.addf("scraped %d %s from %s to %s: too few to tell that it was scraped throughout", len(ts), plural(len(ts), "time", "times"), stamp(g.from.Add(-lookback)), stamp(g.now))
		return nil
	}
	deltas := make([]time.Duration, 0, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		deltas = append(deltas, ts[i].Sub(ts[i-1]))
	}
	slices.Sort(deltas)
	interval := deltas[(len(deltas)-1)/4]
	from := model.TimeFromUnixNano(g.from.UnixNano())
	to := model.TimeFromUnixNano(g.now.UnixNano())
	if first := ts[0]; first.Sub(from) > interval {
		h.addf("not scraped at the window's start %s: first scraped at %s", stamp(g.from), stamp(first.Time()))
		return nil
	}
	for i := 1; i < len(ts); i++ {
		// A gap that the window's start cuts counts only when the window
		// waited more than an interval for its first scrape.
		if ts[i] > from && ts[i].Sub(ts[i-1]) > interval*3/2 && (ts[i-1] > from || ts[i].Sub(from) > interval) {
			h.addf("not scraped from %s to %s (%v without a scrape; it is scraped every %v)",
				stamp(ts[i-1].Time()), stamp(ts[i].Time()), ts[i].Sub(ts[i-1]), interval)
			return nil
		}
	}
	if last := ts[len(ts)-1]; to.Sub(last) > interval*5/2 {
		h.addf("not scraped since %s, before the window's end %s (it is scraped every %v)", stamp(last.Time()), stamp(g.now), interval)
	}
	return nil
}

// ups returns the host's raw up samples from the lookback before the
// window to its end, in time order.
func (g *gate) ups(h *member) ([]model.SamplePair, error) {
	m, err := g.raw(h, "up", g.from.Add(-lookback))
	if err != nil {
		return nil, err
	}
	var values []model.SamplePair
	for _, s := range m {
		values = append(values, s.Values...)
	}
	slices.SortFunc(values, func(a, b model.SamplePair) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	return values, nil
}

// whyDown says how the host was not scraped throughout.
func (g *gate) whyDown(h *member) error {
	values, err := g.ups(h)
	if err != nil {
		return err
	}
	from := model.TimeFromUnixNano(g.from.UnixNano())
	var before *model.SamplePair
	for i, p := range values {
		if p.Timestamp <= from {
			before = &values[i]
			continue
		}
		if before == nil {
			h.addf("not scraped at the window's start %s: first scraped at %s", stamp(g.from), stamp(p.Timestamp.Time()))
			return nil
		}
		if before.Value != 1 {
			h.addf("down at the window's start %s: its last scrape before it, at %s, failed", stamp(g.from), stamp(before.Timestamp.Time()))
			return nil
		}
		if p.Value != 1 {
			h.addf("down: its scrape at %s failed", stamp(p.Timestamp.Time()))
			return nil
		}
	}
	if before == nil {
		h.addf("not scraped from %s to %s", stamp(g.from), stamp(g.now))
		return nil
	}
	if before.Value != 1 {
		h.addf("down at the window's start %s: its last scrape before it, at %s, failed", stamp(g.from), stamp(before.Timestamp.Time()))
		return nil
	}
	h.addf("not scraped since %s, before the window's start %s", stamp(before.Timestamp.Time()), stamp(g.from))
	return nil
}

// whyCommit says at which scrape the host was first not at the commit.
func (g *gate) whyCommit(h *member) error {
	ups, err := g.raw(h, "up", g.from)
	if err != nil {
		return err
	}
	infos, err := g.raw(h, "cairn_applied_commit_info", g.from)
	if err != nil {
		return err
	}
	commits := map[model.Time][]string{}
	for _, s := range infos {
		for _, p := range s.Values {
			commits[p.Timestamp] = append(commits[p.Timestamp], string(s.Metric["commit"]))
		}
	}
	for _, s := range ups {
		for _, p := range s.Values {
			if p.Value != 1 {
				continue
			}
			switch cs := commits[p.Timestamp]; {
			case len(cs) == 0:
				h.addf("reported no applied commit at %s", stamp(p.Timestamp.Time()))
				return nil
			case len(cs) > 1 || cs[0] != g.o.Commit:
				other := cs[0]
				if other == g.o.Commit {
					other = cs[1]
				}
				h.addf("at commit %s, not %s, at %s", short(other), short(g.o.Commit), stamp(p.Timestamp.Time()))
				return nil
			}
		}
	}
	h.addf("not at commit %s on every scrape from %s", short(g.o.Commit), stamp(g.from))
	return nil
}

// addf adds a reason.
func (h *member) addf(format string, args ...any) {
	h.reasons = append(h.reasons, fmt.Sprintf(format, args...))
}
