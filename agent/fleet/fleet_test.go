package fleet

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/cairn-cm/cairn/agent/metrics"
	"github.com/cairn-cm/cairn/internal/promtest"
)

// fakeHost serves the metrics of a cairn agent, made by the agent's own
// metrics package, on a loopback address of its own, and lets the test
// change them, fail its scrapes (down) or restart it (counters from 0).
type fakeHost struct {
	addr, host string

	mu   sync.Mutex
	reg  *prometheus.Registry
	m    *metrics.Metrics
	down bool
	hide string // a metric left out of the scrapes
}

// newFakeHost serves the metrics of host, in group at commit, converged,
// on 127.0.0.ip.
func newFakeHost(t *testing.T, ip int, host, group, commit string) *fakeHost {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", ip))
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{addr: l.Addr().String(), host: host}
	h.restart(t, group, commit)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

// restart replaces the metrics with new ones, as an agent's restart does:
// the host in group at commit, converged, its counters at 0.
func (h *fakeHost) restart(t *testing.T, group, commit string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: "test", Host: h.host, States: []string{"idle", "applying"}, Kinds: []string{"FILE"}})
	if err != nil {
		t.Fatal(err)
	}
	// As the agent's process collector exports it: a restart is a new
	// start time.
	start := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_start_time_seconds", Help: "Start time of the process."})
	start.Set(float64(time.Now().UnixNano()) / 1e9)
	reg.MustRegister(start)
	if commit != "" {
		m.SetGroup(group, group)
		m.SetApplied(commit, group, group, committed[commit])
		m.SetTarget(commit, group, committed[commit])
		m.SetConverged(true)
	}
	h.mu.Lock()
	h.reg, h.m = reg, m
	h.mu.Unlock()
}

// do changes the metrics.
func (h *fakeHost) do(f func(m *metrics.Metrics)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h.m)
}

func (h *fakeHost) setDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

func (h *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	reg, down, hide := h.reg, h.down, h.hide
	h.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := reg.Gather()
		return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == hide }), err
	})
	promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// promAPI is the API of a Prometheus server.
func promAPI(t *testing.T, url string) v1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(c)
}

// waitFor runs q until it returns one sample of value want, for at most 30 s.
func waitFor(t *testing.T, a API, q string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vec, err := vector(context.Background(), a, q, time.Now())
		if err == nil && len(vec) == 1 && float64(vec[0].Value) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s = %v: %v (%v)", q, want, vec, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var stampRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

const (
	commitC = "cccccccccccccccccccccccccccccccccccccccc"
	commitD = "dddddddddddddddddddddddddddddddddddddddd"
)

// committed are the commits' committer times: D is the newer.
var committed = map[string]time.Time{commitC: time.Unix(1700000000, 0), commitD: time.Unix(1700000100, 0)}

// TestGate: fake agents that Prometheus scrapes every second, each broken
// in one way in the middle of a soak window of 8 s, and the verdicts of
// Gate on that window.
func TestGate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus for about 20 s")
	}
	type hostCase struct {
		host, group, commit string
		// want is the start of the host's one reason, "" when it passes.
		want string
		// midway breaks the host 2 s into the window; after undoes it
		// 2.5 s later (nil: it stays so).
		midway, after func(t *testing.T, h *fakeHost)
	}
	cases := []hostCase{
		{host: "good-1", group: "canary", commit: commitC},
		{host: "good-2", group: "canary", commit: commitC},
		{host: "flip", group: "canary", commit: commitC, want: "not converged at ",
			midway: func(_ *testing.T, h *fakeHost) { h.do(func(m *metrics.Metrics) { m.SetConverged(false) }) },
			after:  func(_ *testing.T, h *fakeHost) { h.do(func(m *metrics.Metrics) { m.SetConverged(true) }) }},
		{host: "other", group: "canary", commit: commitD, want: "at commit dddddddd, not cccccccc, at "},
		// At C at the window's start, then at D: the first scrape at D is
		// the reason's time.
		{host: "moved-on", group: "canary", commit: commitC, want: "at commit dddddddd, not cccccccc, at ",
			midway: func(_ *testing.T, h *fakeHost) {
				h.do(func(m *metrics.Metrics) { m.SetApplied(commitD, "canary", "canary", time.Now()) })
			}},
		{host: "down", group: "canary", commit: commitC, want: "down: its scrape at ",
			midway: func(_ *testing.T, h *fakeHost) { h.setDown(true) },
			after:  func(_ *testing.T, h *fakeHost) { h.setDown(false) }},
		{host: "failed", group: "canary", commit: commitC, want: "a run failed (and was undone) at ",
			midway: func(_ *testing.T, h *fakeHost) {
				h.do(func(m *metrics.Metrics) { m.RunDone(metrics.ResultFailed, time.Second, time.Now(), false) })
			}},
		{host: "refused", group: "canary", commit: commitC, want: "a run refused its target commit at ",
			midway: func(_ *testing.T, h *fakeHost) {
				h.do(func(m *metrics.Metrics) { m.RunDone(metrics.ResultRefused, time.Second, time.Now(), false) })
			}},
		{host: "held", group: "canary", commit: commitC, want: "held by a rollback at ",
			midway: func(_ *testing.T, h *fakeHost) { h.do(func(m *metrics.Metrics) { m.SetHeld(true) }) },
			after:  func(_ *testing.T, h *fakeHost) { h.do(func(m *metrics.Metrics) { m.SetHeld(false) }) }},
		{host: "inverse", group: "canary", commit: commitC, want: "rolled back (ran FILE ops backwards) at ",
			midway: func(_ *testing.T, h *fakeHost) { h.do(func(m *metrics.Metrics) { m.OpDone("FILE", metrics.Inverse) }) }},
		// A restart: it may have failed a run that no counter shows any
		// more (counters start again from 0).
		{host: "restarted", group: "canary", commit: commitC, want: "the agent restarted at ",
			midway: func(t *testing.T, h *fakeHost) { h.restart(t, "canary", commitC) }},
		// A restart, then a failed run: the counter went from 2 to 1. An
		// agent without process_start_time_seconds (hidden below):
		// the counters' resets are handled.
		{host: "restarted-failed", group: "canary", commit: commitC, want: "a run failed (and was undone) at ",
			midway: func(t *testing.T, h *fakeHost) {
				h.restart(t, "canary", commitC)
				h.do(func(m *metrics.Metrics) { m.RunDone(metrics.ResultFailed, time.Second, time.Now(), false) })
			}},
		// An agent that does not export cairn_converged is not known to
		// be converged.
		{host: "no-converged", group: "canary", commit: commitC, want: "reported no cairn_converged from "},
		// An agent older than cairn_host_info: one of the group of its
		// applied commit, without a host name, as the alert rules count
		// it.
		{host: "old-agent", group: "canary", commit: commitC},
		// Left the group in the window: not one of its hosts.
		{host: "left", group: "canary", commit: commitC,
			midway: func(_ *testing.T, h *fakeHost) { h.do(func(m *metrics.Metrics) { m.SetGroup("web", "main") }) }},
		// Another group's host at another commit does not count.
		{host: "web-1", group: "web", commit: commitD},
		{host: "stable-1", group: "stable", commit: commitC},
		{host: "stable-2", group: "stable", commit: commitC},
		// A second target that says it is stable-2 (the same agent
		// scraped by two jobs, or two machines given one --host): one
		// host for --min-hosts.
		{host: "stable-2", group: "stable", commit: commitC},
	}
	var hosts []*fakeHost
	var addrs []string
	for i, c := range cases {
		h := newFakeHost(t, 2+i, c.host, c.group, c.commit)
		switch c.host {
		case "no-converged":
			h.hide = "cairn_converged"
		case "old-agent":
			h.hide = "cairn_host_info"
		case "restarted-failed":
			h.hide = "process_start_time_seconds"
		}
		if c.host == "restarted-failed" {
			h.do(func(m *metrics.Metrics) {
				m.RunDone(metrics.ResultFailed, time.Second, time.Now(), false)
				m.RunDone(metrics.ResultFailed, time.Second, time.Now(), false)
			})
		}
		hosts = append(hosts, h)
		addrs = append(addrs, h.addr)
	}
	late := newFakeHost(t, 40, "late", "canary", commitC)

	prom := promtest.Start(t, nil, addrs...)
	a := promAPI(t, prom.URL)
	waitFor(t, a, "count(up == 1)", float64(len(hosts)))
	// Every target scraped for a while before the window.
	time.Sleep(2500 * time.Millisecond)

	// A host that joins in the window: Prometheus scrapes it only from
	// then. Its discovery takes up to 5 s, so the window starts shortly
	// before Prometheus is seen to scrape it.
	prom.SetTargets(t, append(addrs, late.addr)...)
	waitFor(t, a, "count(up == 1)", float64(len(hosts)+1))
	from := time.Now().Add(-1500 * time.Millisecond)
	time.Sleep(time.Until(from.Add(2 * time.Second)))
	for i, c := range cases {
		if c.midway != nil {
			c.midway(t, hosts[i])
		}
	}
	time.Sleep(2500 * time.Millisecond)
	for i, c := range cases {
		if c.after != nil {
			c.after(t, hosts[i])
		}
	}
	time.Sleep(3500 * time.Millisecond)
	now := from.Add(8 * time.Second)
	// The window's last scrapes are stored.
	time.Sleep(1500 * time.Millisecond)

	ctx := context.Background()
	v, err := Gate(ctx, a, GateOptions{Group: "canary", Commit: commitC, Soak: 8 * time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || v.Group != "canary" || v.Commit != commitC || !v.To.Equal(now.Truncate(time.Millisecond)) || v.To.Sub(v.From) != 8*time.Second {
		t.Errorf("verdict: ok %v, group %s, commit %s, window %v..%v", v.OK, v.Group, v.Commit, v.From, v.To)
	}
	if len(v.Reasons) != 0 {
		t.Errorf("group reasons %q, want none", v.Reasons)
	}
	want := map[string]string{"late": "not scraped at the window's start "}
	mid := map[string]bool{}
	for _, c := range cases {
		mid[c.host] = c.midway != nil
		if c.group == "canary" && c.host != "left" {
			want[c.host] = c.want
		}
	}
	names := map[string]string{late.addr: "late"}
	for i, c := range cases {
		names[hosts[i].addr] = c.host
	}
	for i, h := range v.Hosts {
		t.Logf("%s (%s): ok %v %q", h.Host, h.Instance, h.OK, h.Reasons)
		if i > 0 && byHost(v.Hosts[i-1].Host, v.Hosts[i-1].Instance, h.Host, h.Instance) > 0 {
			t.Errorf("hosts not sorted: %s (%s) before %s (%s)", v.Hosts[i-1].Host, v.Hosts[i-1].Instance, h.Host, h.Instance)
		}
		name := names[h.Instance]
		wantHost := cmp.Or(name, "?")
		if name == "old-agent" {
			wantHost = ""
		}
		if h.Host != wantHost {
			t.Errorf("%s: host name %q, want %q", h.Instance, h.Host, wantHost)
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("host %s (%s) is not one of group canary's", h.Host, h.Instance)
			continue
		}
		delete(want, name)
		if w == "" {
			if !h.OK || len(h.Reasons) != 0 {
				t.Errorf("%s: ok %v, reasons %q; want it to pass", h.Host, h.OK, h.Reasons)
			}
			continue
		}
		if h.OK || len(h.Reasons) != 1 || len(h.Reasons[0]) < len(w) || h.Reasons[0][:len(w)] != w {
			t.Errorf("%s: ok %v, reasons %q; want one reason %q...", h.Host, h.OK, h.Reasons, w)
			continue
		}
		// The time named last is a scrape inside the window (the late
		// host's first scrape; the others' first bad sample), after the
		// host broke.
		lower := from
		if mid[name] {
			lower = from.Add(2 * time.Second)
		}
		stamps := stampRE.FindAllString(h.Reasons[0], -1)
		if len(stamps) == 0 {
			t.Errorf("%s: reason %q names no time", h.Host, h.Reasons[0])
		} else if at, err := time.Parse(time.RFC3339, stamps[len(stamps)-1]); err != nil || at.Before(lower.Truncate(time.Second)) || at.After(now) {
			t.Errorf("%s: reason %q names a time outside %v..%v (%v)", h.Host, h.Reasons[0], lower, now, err)
		}
	}
	for h := range want {
		t.Errorf("host %s of group canary is missing from the verdict", h)
	}

	// A healthy group passes, unless it must have more hosts than it has.
	for _, c := range []struct {
		group    string
		min      int
		ok       bool
		reason   string
		hostsLen int
	}{
		{"stable", 0, true, "", 3},
		{"stable", 2, true, "", 3},
		{"stable", 3, false, "group stable has 2 hosts, fewer than the 3 required", 3},
		{"nobody", 1, false, `group nobody has no hosts: no scrape target reported cairn_host_info with group "nobody" between `, 0},
	} {
		v, err := Gate(ctx, a, GateOptions{Group: c.group, Commit: commitC, Soak: 8 * time.Second, MinHosts: c.min, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var reason string
		if len(v.Reasons) == 1 {
			reason = v.Reasons[0]
		}
		if v.OK != c.ok || len(v.Hosts) != c.hostsLen || len(v.Reasons) != len(c.reason)/max(len(c.reason), 1) ||
			len(reason) < len(c.reason) || reason[:len(c.reason)] != c.reason {
			t.Errorf("group %s, min %d: ok %v, %d hosts, reasons %q; want ok %v, %d hosts, reason %q", c.group, c.min, v.OK, len(v.Hosts), v.Reasons, c.ok, c.hostsLen, c.reason)
		}
		for _, h := range v.Hosts {
			if !h.OK {
				t.Errorf("group %s: host %s fails: %q", c.group, h.Host, h.Reasons)
			}
		}
	}
}

// TestGateBadInput: options Gate cannot use, and a Prometheus that does not
// answer, are errors, not verdicts.
func TestGateBadInput(t *testing.T) {
	a := promAPI(t, "http://127.0.0.1:1")
	for _, o := range []GateOptions{
		{Commit: commitC, Soak: time.Minute},
		{Group: "web", Soak: time.Minute},
		{Group: "web", Commit: commitC},
		{Group: "web", Commit: commitC, Soak: time.Minute}, // nothing listens
	} {
		if v, err := Gate(context.Background(), a, o); err == nil {
			t.Errorf("%+v: verdict %+v, want an error", o, v)
		}
	}
}

// TestSnapshot: fake agents in every condition that Snapshot tells apart,
// as Prometheus sees them, and Summarize's counts of them.
func TestSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus for about 10 s")
	}
	at := newFakeHost(t, 2, "web-01", "web", commitD)     // at the tip
	behind := newFakeHost(t, 3, "web-02", "web", commitC) // moving: has fetched the tip
	behind.do(func(m *metrics.Metrics) {
		m.SetTarget(commitD, "web", time.Unix(1700000100, 0))
		m.SetConverged(false)
		m.RunDone(metrics.ResultApplied, time.Second, time.Unix(1700000200, 0), true)
	})
	failing := newFakeHost(t, 4, "web-03", "web", commitC) // tried the tip, could not move
	failing.do(func(m *metrics.Metrics) {
		m.SetTarget(commitD, "web", time.Unix(1700000100, 0))
		m.SetConverged(false)
		m.RunDone(metrics.ResultApplied, time.Second, time.Unix(1700000200, 0), true)
		m.RunDone(metrics.ResultFailed, time.Second, time.Unix(1700000300, 0), false)
		m.FetchDone(true, time.Unix(1700000250, 0))
	})
	held := newFakeHost(t, 5, "web-04", "web", commitC)
	held.do(func(m *metrics.Metrics) {
		m.SetTarget(commitD, "web", time.Unix(1700000100, 0))
		m.SetHeld(true)
		m.SetConverged(false)
		m.SetDrift(2)
		m.RunDone(metrics.ResultFailed, time.Second, time.Unix(1700000300, 0), false)
	})
	down := newFakeHost(t, 6, "web-05", "web", commitD)
	canary := newFakeHost(t, 7, "canary-01", "canary", commitD)
	fresh := newFakeHost(t, 8, "new-01", "", "") // no resolve yet
	at.do(func(m *metrics.Metrics) { m.SetTarget(commitD, "web", time.Unix(1700000100, 0)) })

	all := []*fakeHost{at, behind, failing, held, down, canary, fresh}
	var addrs []string
	for _, h := range all {
		addrs = append(addrs, h.addr)
	}
	prom := promtest.Start(t, nil, addrs...)
	a := promAPI(t, prom.URL)
	waitFor(t, a, "count(up == 1)", float64(len(all)))
	time.Sleep(1500 * time.Millisecond)
	down.setDown(true)
	waitFor(t, a, "count(up == 0)", 1)

	hosts, err := Snapshot(context.Background(), a, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Host{}
	var order []string
	for _, h := range hosts {
		got[h.Host] = h
		order = append(order, h.Host)
	}
	if want := []string{"new-01", "canary-01", "web-01", "web-02", "web-03", "web-04", "web-05"}; !slices.Equal(order, want) {
		t.Errorf("hosts %q, want %q (by group, then host)", order, want)
	}
	type facts struct {
		up, converged, held, failing bool
		applied, target              string
		drift                        int
	}
	for host, want := range map[string]facts{
		"web-01":    {up: true, converged: true, applied: commitD, target: commitD},
		"web-02":    {up: true, applied: commitC, target: commitD},
		"web-03":    {up: true, failing: true, applied: commitC, target: commitD},
		"web-04":    {up: true, held: true, applied: commitC, target: commitD, drift: 2},
		"web-05":    {},
		"canary-01": {up: true, converged: true, applied: commitD, target: commitD},
		"new-01":    {up: true},
	} {
		h := got[host]
		if f := (facts{h.Up, h.Converged, h.Held, h.Failing, h.Applied, h.Target, h.Drift}); f != want {
			t.Errorf("%s: %+v, want %+v", host, f, want)
		}
	}
	if h := got["web-03"]; h.Group != "web" || h.Branch != "web" || h.Job != "cairn" || h.Instance != failing.addr ||
		!h.LastRun.Equal(time.Unix(1700000300, 0)) || !h.LastFetch.Equal(time.Unix(1700000250, 0)) || !h.Committed.Equal(committed[commitC]) ||
		!h.TargetCommitted.Equal(time.Unix(1700000100, 0)) || h.State != "idle" {
		t.Errorf("web-03: %+v", h)
	}

	groups := Summarize(hosts)
	if len(groups) != 3 {
		t.Fatalf("groups %+v, want 3", groups)
	}
	web := groups[2]
	var lagging []string
	for _, h := range web.Lagging {
		lagging = append(lagging, h.Host)
	}
	if web.Name != "web" || web.Branch != "web" || web.Tip != commitD || web.Hosts != 5 || web.Converged != 1 ||
		web.Drifting != 1 || web.Failing != 1 || web.Held != 1 || web.Down != 1 || web.Settled() ||
		!slices.Equal(lagging, []string{"web-02", "web-03", "web-04", "web-05"}) ||
		!slices.Equal(web.Commits, []CommitHosts{{commitD, committed[commitD].UTC(), 1}, {commitC, committed[commitC].UTC(), 3}, {"", time.Time{}, 1}}) {
		t.Errorf("group web: %+v", web)
	}
	if c := groups[1]; c.Name != "canary" || !c.Settled() || c.Tip != commitD || len(c.Lagging) != 0 {
		t.Errorf("group canary: %+v", c)
	}
	if n := groups[0]; n.Name != "" || n.Settled() || n.Tip != "" || len(n.Lagging) != 1 {
		t.Errorf("the hosts without a group: %+v", n)
	}
}

// waitUntil runs q until cond holds for its vector, for at most 30 s.
func waitUntil(t *testing.T, a API, q string, what string, cond func(model.Vector) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vec, err := vector(context.Background(), a, q, time.Now())
		if err == nil && cond(vec) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s (%s): %v (%v)", what, q, vec, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gateSince lets Prometheus scrape for 2 s more, and returns the verdict
// on group canary at commit C for the window from from to half a second
// ago (whose last scrapes are stored then), and the window's end.
func gateSince(t *testing.T, a API, from time.Time) (*Verdict, time.Time) {
	t.Helper()
	time.Sleep(2 * time.Second)
	now := time.Now().Add(-500 * time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	v, err := Gate(context.Background(), a, GateOptions{Group: "canary", Commit: commitC, Soak: now.Sub(from), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v, now
}

// TestGateScrapeGap: Prometheus stops scraping one host for a few seconds
// in the middle of the window (its target leaves the service discovery and
// comes back), and every scrape it made succeeded with the host healthy:
// the samples do not cover the window, and the host fails; the host
// scraped throughout passes. And three hosts that are healthy from the
// window's start on, but were not on their last scrape before it, which
// answers for the time up to their first scrape in the window: they fail.
func TestGateScrapeGap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus for about 20 s")
	}
	steady := newFakeHost(t, 2, "steady", "canary", commitC)
	gapped := newFakeHost(t, 3, "gapped", "canary", commitC)
	settling := newFakeHost(t, 4, "settling", "canary", commitC)
	settling.do(func(m *metrics.Metrics) { m.SetConverged(false) })
	wasHeld := newFakeHost(t, 5, "was-held", "canary", commitC)
	wasHeld.do(func(m *metrics.Metrics) { m.SetHeld(true) })
	wasOther := newFakeHost(t, 6, "was-other", "canary", commitD)
	all := []string{steady.addr, gapped.addr, settling.addr, wasHeld.addr, wasOther.addr}
	prom := promtest.Start(t, nil, all...)
	a := promAPI(t, prom.URL)
	waitFor(t, a, "count(up == 1)", float64(len(all)))
	time.Sleep(2500 * time.Millisecond)

	from := time.Now()
	settling.do(func(m *metrics.Metrics) { m.SetConverged(true) })
	wasHeld.do(func(m *metrics.Metrics) { m.SetHeld(false) })
	wasOther.do(func(m *metrics.Metrics) { m.SetApplied(commitC, "canary", "canary", committed[commitC]) })
	prom.SetTargets(t, steady.addr, settling.addr, wasHeld.addr, wasOther.addr)
	// Gone: its series are marked stale, then 3 s without a scrape.
	sel := fmt.Sprintf("up{instance=%q}", gapped.addr)
	waitUntil(t, a, sel, "the target's removal", func(v model.Vector) bool { return len(v) == 0 })
	time.Sleep(3 * time.Second)
	prom.SetTargets(t, all...)
	waitFor(t, a, sel, 1)
	v, now := gateSince(t, a, from)
	if v.OK || len(v.Hosts) != len(all) {
		t.Fatalf("verdict: ok %v, hosts %+v; want the gapped host to fail", v.OK, v.Hosts)
	}
	byName := map[string]HostVerdict{}
	for _, h := range v.Hosts {
		t.Logf("%s: ok %v %q", h.Host, h.OK, h.Reasons)
		byName[h.Host] = h
	}
	for name, want := range map[string]string{
		"settling":  "not converged at the window's start ",
		"was-held":  "held by a rollback at the window's start ",
		"was-other": "at commit dddddddd, not cccccccc, at the window's start ",
	} {
		if h := byName[name]; h.OK || len(h.Reasons) != 1 || !strings.HasPrefix(h.Reasons[0], want) || !strings.Contains(h.Reasons[0], stamp(from.Truncate(time.Millisecond))) {
			t.Errorf("%s: ok %v, reasons %q; want one reason %q... at %s", h.Host, h.OK, h.Reasons, want, stamp(from))
		}
	}
	g, s := byName["gapped"], byName["steady"]
	const want = "not scraped from "
	if g.Host != "gapped" || g.OK || len(g.Reasons) != 1 || !strings.HasPrefix(g.Reasons[0], want) {
		t.Errorf("gapped: ok %v, reasons %q; want one reason %q...", g.OK, g.Reasons, want)
	} else if stamps := stampRE.FindAllString(g.Reasons[0], -1); len(stamps) != 2 {
		t.Errorf("gapped: reason %q does not name the gap's two ends", g.Reasons[0])
	} else {
		begin, _ := time.Parse(time.RFC3339, stamps[0])
		end, _ := time.Parse(time.RFC3339, stamps[1])
		if end.Sub(begin) < 3*time.Second || begin.Before(from.Truncate(time.Second)) || end.After(now) {
			t.Errorf("gapped: reason %q: want a gap of at least 3 s inside %v..%v", g.Reasons[0], from, now)
		}
	}
	if s.Host != "steady" || !s.OK {
		t.Errorf("steady: ok %v, reasons %q; want it to pass", s.OK, s.Reasons)
	}
}

// TestGatePrometheusRestart: Prometheus restarts in the middle of the
// window and scrapes nothing for a few seconds; the host, healthy on every
// scrape there is, was not seen throughout, and fails.
func TestGatePrometheusRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus for about 15 s")
	}
	h := newFakeHost(t, 2, "canary-1", "canary", commitC)
	prom := promtest.Start(t, nil, h.addr)
	a := promAPI(t, prom.URL)
	waitFor(t, a, "count(up == 1)", 1)
	time.Sleep(2500 * time.Millisecond)

	from := time.Now().Add(-time.Second)
	prom.Restart(t, 3*time.Second)
	// Scraped again: a sample in the last second.
	waitFor(t, a, "count_over_time(up[1s])", 1)
	v, now := gateSince(t, a, from)
	if v.OK || len(v.Hosts) != 1 || len(v.Hosts[0].Reasons) != 1 || !strings.HasPrefix(v.Hosts[0].Reasons[0], "not scraped from ") {
		t.Errorf("verdict: ok %v, hosts %+v; want canary-1 to fail as not scraped for a while", v.OK, v.Hosts)
	}
	// Soaked after the restart, it passes.
	v, err := Gate(context.Background(), a, GateOptions{Group: "canary", Commit: commitC, Soak: 2 * time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK {
		t.Errorf("a window after the restart: ok %v, hosts %+v; want it to pass", v.OK, v.Hosts)
	}
}
