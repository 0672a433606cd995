package fleet

import (
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
// sample is skipped):
//
//  1. scraped: up is 1 at the window's start and on every scrape in it;
//  2. at the commit: cairn_applied_commit_info has commit o.Commit, and no
//     other, on every scrape that succeeded;
//  3. converged: cairn_converged is 1 on every sample;
//  4. no bad run: cairn_runs_total{result=~"failed|broken|refused"} did
//     not increase (counter resets, at an agent's restart, are handled);
//  5. not rolled back: cairn_held is 0 on every sample, and
//     cairn_ops_total{direction="inverse"} did not increase.
//
// The group needs at least o.MinHosts hosts (1 when it is below 1). For a
// broken condition the host's reasons say which and when (the first sample
// that broke it, read from the raw samples of that host).
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
		return cmpOr(strings.Compare(a.Host, b.Host), strings.Compare(a.Instance, b.Instance))
	})
	switch n := len(hosts); {
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

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
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
	for _, h := range hosts {
		t := h.target
		if s, ok := start[t]; !ok || s != 1 || upMin[t] != 1 {
			if err := g.whyDown(h); err != nil {
				return err
			}
		}
		if good[t] > 0 && (atCommit[t] != good[t] || other[t] > 0) {
			if err := g.whyCommit(h); err != nil {
				return err
			}
		}
	}

	for _, c := range []struct {
		query  string
		bad    func(float64) bool
		metric string // the series whose raw samples say when
		why    func(m model.Metric, prev, v float64, first bool) string
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
		},
		{
			query:  `sum by (instance, job) (increase(cairn_ops_total{direction="inverse"}[%s]))`,
			bad:    func(v float64) bool { return v > 0 },
			metric: `cairn_ops_total{direction="inverse"}`,
			why: func(m model.Metric, prev, v float64, first bool) string {
				if first || !increased(prev, v) {
					return ""
				}
				return fmt.Sprintf("rolled back (ran %s ops backwards)", m["kind"])
			},
		},
	} {
		values, err := at(fmt.Sprintf(c.query, g.w), g.now)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if v, ok := values[h.target]; !ok || !c.bad(v) {
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
		what, when = "broke a condition ("+metric+")", model.TimeFromUnixNano(g.from.UnixNano())
		return h.add("%s in the window from %s", what, stamp(when.Time()))
	}
	return h.add("%s at %s", what, stamp(when.Time()))
}

// whyDown says how the host was not scraped throughout.
func (g *gate) whyDown(h *member) error {
	// The lookback of an instant query: the sample that answers for the
	// window's start is at most this old.
	const lookback = 5 * time.Minute
	m, err := g.raw(h, "up", g.from.Add(-lookback))
	if err != nil {
		return err
	}
	var values []model.SamplePair
	for _, s := range m {
		values = append(values, s.Values...)
	}
	from := model.TimeFromUnixNano(g.from.UnixNano())
	var before *model.SamplePair
	for i, p := range values {
		if p.Timestamp <= from {
			before = &values[i]
			continue
		}
		if before == nil {
			return h.add("not scraped at the window's start %s: first scraped at %s", stamp(g.from), stamp(p.Timestamp.Time()))
		}
		if before.Value != 1 {
			return h.add("down at the window's start %s: its last scrape before it, at %s, failed", stamp(g.from), stamp(before.Timestamp.Time()))
		}
		if p.Value != 1 {
			return h.add("down: its scrape at %s failed", stamp(p.Timestamp.Time()))
		}
	}
	if before == nil {
		return h.add("not scraped from %s to %s", stamp(g.from), stamp(g.now))
	}
	if before.Value != 1 {
		return h.add("down at the window's start %s: its last scrape before it, at %s, failed", stamp(g.from), stamp(before.Timestamp.Time()))
	}
	return h.add("not scraped since %s, before the window's start %s", stamp(before.Timestamp.Time()), stamp(g.from))
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
				return h.add("reported no applied commit at %s", stamp(p.Timestamp.Time()))
			case len(cs) > 1 || cs[0] != g.o.Commit:
				other := cs[0]
				if other == g.o.Commit {
					other = cs[1]
				}
				return h.add("at commit %s, not %s, at %s", short(other), short(g.o.Commit), stamp(p.Timestamp.Time()))
			}
		}
	}
	return h.add("not at commit %s on every scrape from %s", short(g.o.Commit), stamp(g.from))
}

func (h *member) add(format string, args ...any) error {
	h.reasons = append(h.reasons, fmt.Sprintf(format, args...))
	return nil
}
