package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// figures are what the benchmark measures.
type figures struct {
	poll, trigger latencies // push → applied across hosts
	// Fetches that failed while the hosts moved (git daemon resets
	// connections beyond its listen backlog of 5).
	pollFailed, triggerFailed float64

	rss        []int64       // idle RSS per agent, bytes, sorted
	window     time.Duration // the idle window
	fetches    float64       // fetches the agents counted in it
	gitCPU     time.Duration // what git daemon's cgroup used in it
	allFetches float64       // fetches over the whole run
	allGitCPU  time.Duration // git daemon's CPU over the whole run
}

// latencies are per-host durations, sorted.
type latencies []time.Duration

// pct is the p-th percentile (nearest rank).
func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(l)))) - 1
	return l[max(0, min(i, len(l)-1))]
}

func (l latencies) String() string {
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s", secs(l.pct(50)), secs(l.pct(95)), secs(l.pct(99)), secs(l.pct(100)))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// fetchSum is the sum of every agent's cairn_git_fetch_total, and of
// those that failed.
func (f *fleet) fetchSum(ctx context.Context) (all, failed float64, err error) {
	for _, a := range f.hosts {
		n, e, err := a.fetches(ctx)
		if err != nil {
			return 0, 0, err
		}
		all, failed = all+n, failed+e
	}
	return all, failed, nil
}

// gitCPU is the CPU time git daemon and its children have used: from its
// cgroup, or else from /proc/PID/stat (the daemon's own time and that of
// the children it has reaped, in clock ticks of 10 ms).
func (f *fleet) gitCPU() (time.Duration, error) {
	if f.cg != nil {
		return f.cg.usage()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.r.daemon.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name, which ends at the last ')':
	// utime, stime, cutime and cstime are the 12th to 15th of them.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 15 {
		return 0, fmt.Errorf("git daemon's /proc/PID/stat: %q", b)
	}
	var ticks int64
	for _, s := range fields[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("git daemon's /proc/PID/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// measureIdle lets the fleet idle for an interval and its splay (every
// agent polls at least once), and measures what git daemon spent on the
// CPU per fetch the agents counted, and each agent's RSS at the end.
func (f *fleet) measureIdle(ctx context.Context) (string, error) {
	fetches0, _, err := f.fetchSum(ctx)
	if err != nil {
		return "", err
	}
	cpu0, err := f.gitCPU()
	if err != nil {
		return "", err
	}
	began := time.Now()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(f.o.interval + f.o.interval/2 + time.Second):
	}
	fetches1, _, err := f.fetchSum(ctx)
	if err != nil {
		return "", err
	}
	cpu1, err := f.gitCPU()
	if err != nil {
		return "", err
	}
	fg := &f.figures
	fg.window = time.Since(began)
	fg.fetches, fg.gitCPU = fetches1-fetches0, cpu1-cpu0
	fg.allFetches, fg.allGitCPU = fetches1, cpu1
	if fg.fetches == 0 {
		return "", fmt.Errorf("the agents counted no fetch in %v of idling", fg.window)
	}
	// RSS of each agent while it is idle: between runs.
	if _, err := waitAll(ctx, f.hosts, poll, f.o.timeout, "idle", func(a *agent, doc *status.Document) bool {
		if doc.State != "idle" {
			return false
		}
		rss, err := a.rss()
		if err != nil {
			return false
		}
		fg.rss = append(fg.rss, rss) // waitAll calls cond under its lock
		return true
	}); err != nil {
		return "", err
	}
	slices.Sort(fg.rss)
	return fmt.Sprintf("%.0f fetches in %.0f s cost git daemon %v of CPU; idle RSS %s", fg.fetches, fg.window.Seconds(),
		fg.gitCPU.Round(time.Millisecond), f.rssLine()), nil
}

func (f *fleet) rssLine() string {
	r := f.figures.rss
	var total int64
	for _, v := range r {
		total += v
	}
	return fmt.Sprintf("min %s, median %s, max %s per agent; %s in all", mib(r[0]), mib(r[len(r)/2]), mib(r[len(r)-1]), mib(total))
}

// measureMove pushes a commit to canary and main at once and measures, for
// every host, the time from the push to the first poll of its /status
// that shows the commit applied. With trigger, every agent is sent POST
// /trigger right after the push, all at once, as a webhook would.
func (f *fleet) measureMove(ctx context.Context, trigger bool) (string, error) {
	how := "polling"
	if trigger {
		how = "POST /trigger fan-out"
	}
	// Start from a fleet at rest: nobody in a run.
	if _, err := waitAll(ctx, f.hosts, poll, f.o.timeout, "idle", func(_ *agent, doc *status.Document) bool {
		return doc.State == "idle"
	}); err != nil {
		return "", err
	}
	_, failed0, err := f.fetchSum(ctx)
	if err != nil {
		return "", err
	}
	c, err := f.commit("fleet: a change for everyone, measured by "+how, nil)
	if err != nil {
		return "", err
	}
	if err := f.r.push(c, "canary", "main"); err != nil {
		return "", err
	}
	pushed := time.Now()
	if trigger {
		var wg sync.WaitGroup
		errs := make([]error, len(f.hosts))
		for i, a := range f.hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = a.trigger(ctx)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return "", err
			}
		}
	}
	reached, err := waitAll(ctx, f.hosts, poll, f.o.timeout, "commit "+short(c), func(_ *agent, doc *status.Document) bool {
		return appliedCommit(doc) == c
	})
	if err != nil {
		return "", err
	}
	var l latencies
	for _, t := range reached {
		l = append(l, t.Sub(pushed))
	}
	slices.Sort(l)
	_, failed1, err := f.fetchSum(ctx)
	if err != nil {
		return "", err
	}
	failed := failed1 - failed0
	if trigger {
		f.figures.trigger, f.figures.triggerFailed = l, failed
	} else {
		f.figures.poll, f.figures.pollFailed = l, failed
	}
	return fmt.Sprintf("%d hosts at %s: %v; %.0f fetches failed", len(l), short(c), l, failed), nil
}

// retryMsg is the message of the log line an agent writes when the git
// server dropped a fetch and the fetch is tried again (agent/mirror).
const retryMsg = `msg="the git server dropped the connection; trying again"`

// fetchErrors counts, in the agents' logs, the fetches the git server
// dropped and that were tried again, and the fetches that failed in the
// end, each by the error's last part ("connection reset by peer").
func (f *fleet) fetchErrors() (retried, failed string) {
	retries, fails := map[string]int{}, map[string]int{}
	for _, a := range f.hosts {
		b, err := os.ReadFile(a.log)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			_, e, ok := strings.Cut(line, ` err="fetch `)
			if !ok {
				continue
			}
			e = strings.TrimSuffix(e, `"`)
			count := fails
			if strings.Contains(line, retryMsg) {
				count = retries
			}
			count[e[strings.LastIndex(e, ": ")+2:]]++
		}
	}
	return countList(retries), countList(fails)
}

// countList writes counts of errors as "2 × connection reset by peer; ...",
// or "none".
func countList(count map[string]int) string {
	if len(count) == 0 {
		return "none"
	}
	var list []string
	for e, n := range count {
		list = append(list, fmt.Sprintf("%d × %s", n, e))
	}
	slices.Sort(list)
	return strings.Join(list, "; ")
}

// writeResults writes the results, as Markdown, to o.out.
func (f *fleet) writeResults() error {
	o, fg := f.o, &f.figures
	var b strings.Builder
	n := len(f.hosts)
	splay := o.interval / 2
	version, _ := exec.Command(o.cairn, "version").Output()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "# The simulated fleet, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`make fleet` (bench/fleet): %d `cairn agent` processes (canary %d on branch canary; web %d and db %d on main),\n",
		n, o.groups[0].hosts, o.groups[1].hosts, o.groups[2].hosts)
	fmt.Fprintf(&b, "interval %v with the hashed splay (%v), --confirm %v, one `git daemon` on 127.0.0.1, Prometheus\n", o.interval, splay, o.confirm)
	fmt.Fprintf(&b, "scraping every %v with prometheus/alerts.yml. %d cores (GOMAXPROCS of this program), Linux %s; cairn %s.\n\n",
		o.scrape, runtime.NumCPU(), strings.TrimSpace(string(kernel)), strings.TrimPrefix(strings.TrimSpace(firstLine(string(version))), "cairn "))
	b.WriteString("## The scenario\n\n| phase | took | what was checked |\n|---|---|---|\n")
	for _, p := range f.phases {
		fmt.Fprintf(&b, "| %s | %.0f s | %s |\n", p.name, p.took.Seconds(), strings.ReplaceAll(p.result, "|", "\\|"))
	}
	if f.promoted != "" {
		fmt.Fprintf(&b, "\n`cairn promote --from canary --to web --soak %v`, as it promoted (exit 0):\n\n```\n%s\n```\n", o.soak, f.promoted)
	}
	if f.refusal != "" {
		fmt.Fprintf(&b, "\n`cairn promote --from canary --to web` after the failed commit (exit 1):\n\n```\n%s\n```\n", f.refusal)
	}
	if f.fleetView != "" {
		fmt.Fprintf(&b, "\n`cairn fleet` after the drift was planted:\n\n```\n%s\n```\n", f.fleetView)
	}
	pollGoal := o.interval + splay + 5*time.Second
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	maxRSS := fg.rss[len(fg.rss)-1]
	b.WriteString("\n## The figures\n\n| figure | value | goal |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| push → applied, polling (%d hosts) | %v (%.0f fetches failed) | p99 ≤ interval + splay + 5 s = %s: %s |\n",
		len(fg.poll), fg.poll, fg.pollFailed, secs(pollGoal), met(fg.poll.pct(99) <= pollGoal))
	fmt.Fprintf(&b, "| push → applied, `POST /trigger` to every agent at once | %v (%.0f fetches failed) | p99 ≤ 10 s: %s |\n",
		fg.trigger, fg.triggerFailed, met(fg.trigger.pct(99) <= 10*time.Second))
	var total int64
	for _, v := range fg.rss {
		total += v
	}
	retried, failed := f.fetchErrors()
	fmt.Fprintf(&b, "| fetches the git server dropped, tried again, over the whole run (agents' logs) | %s | |\n", retried)
	fmt.Fprintf(&b, "| fetches that failed in the end, over the whole run (agents' logs) | %s | |\n", failed)
	fmt.Fprintf(&b, "| idle RSS per agent | min %s, median %s, max %s | < 30 MiB each: %s |\n",
		mib(fg.rss[0]), mib(fg.rss[len(fg.rss)/2]), mib(maxRSS), met(maxRSS < 30<<20))
	fmt.Fprintf(&b, "| idle RSS, all %d agents | %s | |\n", n, mib(total))
	fmt.Fprintf(&b, "| git daemon CPU per 100 polls | %s (%v for %.0f fetches in %.0f s idle) | |\n",
		(fg.gitCPU * 100 / time.Duration(fg.fetches)).Round(100*time.Microsecond), fg.gitCPU.Round(time.Millisecond), fg.fetches, fg.window.Seconds())
	fmt.Fprintf(&b, "| git daemon CPU over the whole run | %v for %.0f fetches | |\n\n", fg.allGitCPU.Round(time.Millisecond), fg.allFetches)
	fmt.Fprintf(&b, "Push → applied is, for each host, the time from the end of `git push` to the first poll (every 0.5 s)\n"+
		"of its `/status` that shows the new commit applied, which it does once the move has held through its --confirm\n"+
		"window (%v here): the figures include it. Idle", o.confirm)
	cpuSource := "`usage_usec` of the cgroup v2 it runs in"
	if f.cg == nil {
		cpuSource = "what /proc/PID/stat of git-daemon gives (its time and its reaped children's)"
	}
	fmt.Fprintf(&b, " RSS is VmRSS of each agent between runs. The git\n"+
		"server's CPU is %s, over an idle window, divided by the fetches the agents\n"+
		"counted (`cairn_git_fetch_total`) in that window.\n", cpuSource)
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(b.String()), 0o644)
}
