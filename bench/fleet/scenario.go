package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// fleet is the running fleet and what the scenario has found so far.
type fleet struct {
	o     *options
	w     io.Writer
	ps    *procs
	cg    *cgroup // git daemon's; nil when none could be made
	r     *repo
	hosts []*agent
	prom  *prom
	start time.Time

	release   int     // the release the last commit wrote to files/release
	phases    []phase // the scenario's phases as they passed
	refusal   string  // what cairn promote said when it refused
	promoted  string  // what cairn promote said when it promoted
	fleetView string  // what cairn fleet said after the drift
	figures   figures
}

// phase is a phase of the scenario that passed.
type phase struct {
	name, result string
	took         time.Duration
}

// poll is how often /status is polled while waiting.
const poll = 500 * time.Millisecond

// logf prints a line of progress, with the time since the start.
func (f *fleet) logf(format string, args ...any) {
	fmt.Fprintf(f.w, "[%6.1fs] %s\n", time.Since(f.start).Seconds(), fmt.Sprintf(format, args...))
}

// run sets the fleet up, runs the scenario and the measurements, and
// writes the results.
func (f *fleet) run(ctx context.Context) error {
	f.start = time.Now()
	var err error
	if f.o.cgroup {
		if f.cg, err = newCgroup(fmt.Sprintf("cairn-fleet-%d", os.Getpid())); err != nil {
			f.logf("no cgroup for git daemon (%v): its CPU is read from /proc/PID/stat instead", err)
		}
	}
	if f.r, err = newRepo(f.o.dir); err != nil {
		return err
	}
	c1, err := f.commit("fleet: the first configuration", map[string]string{
		"hosts.cairn": hostsCairn, "main.cairn": mainCairn, "files/health": "status=ok\n",
	})
	if err != nil {
		return err
	}
	if err := f.r.push(c1, "main", "canary"); err != nil {
		return err
	}
	if err := f.r.serve(f.ps, f.cg); err != nil {
		return err
	}
	f.logf("git daemon serves %s (commit %s on main and canary)", f.r.url, short(c1))
	f.hosts = hostNames(f.o.groups)
	targets := make([]string, len(f.hosts))
	for i := range f.hosts {
		targets[i] = fmt.Sprintf("127.0.0.%d:%d", i+2, f.o.port)
	}
	if f.prom, err = startProm(ctx, f.o, f.ps, targets); err != nil {
		return err
	}
	f.logf("prometheus on %s scrapes %d agents every %v", f.prom.base, len(targets), f.o.scrape)

	steps := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"bootstrap", func(ctx context.Context) (string, error) { return f.bootstrap(ctx, c1) }},
		{"change on canary", f.canaryChange},
		{"promotion", f.promotion},
		{"failing CHECK on canary", f.badCommit},
		{"fix on canary", f.fix},
		{"drift on " + strconv.Itoa(f.o.drift) + " hosts", f.plantDrift},
		{"idle: RSS and git CPU", f.measureIdle},
		{"push → applied, polling", func(ctx context.Context) (string, error) { return f.measureMove(ctx, false) }},
		{"push → applied, trigger", func(ctx context.Context) (string, error) { return f.measureMove(ctx, true) }},
	}
	for _, s := range steps {
		began := time.Now()
		f.logf("== %s", s.name)
		result, err := s.fn(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: interrupted", s.name)
			}
			return fmt.Errorf("phase %q: %w", s.name, err)
		}
		f.phases = append(f.phases, phase{s.name, result, time.Since(began)})
		f.logf("ok: %s (%.1f s)", result, time.Since(began).Seconds())
	}
	if err := f.writeResults(); err != nil {
		return err
	}
	f.logf("figures written to %s", f.o.out)
	return nil
}

// stop stops every process and removes the cgroup.
func (f *fleet) stop() error {
	var errs []error
	if killed := f.ps.stopAll(15 * time.Second); len(killed) > 0 {
		errs = append(errs, fmt.Errorf("needed SIGKILL: %s", strings.Join(killed, ", ")))
	}
	if f.cg != nil {
		errs = append(errs, f.cg.remove())
	}
	return errors.Join(errs...)
}

// commit writes files and the next release into the work tree and commits
// them, signed.
func (f *fleet) commit(msg string, files map[string]string) (string, error) {
	f.release++
	if files == nil {
		files = map[string]string{}
	}
	files["files/release"] = fmt.Sprintf("release %d\n", f.release)
	return f.r.commit(files, fmt.Sprintf("%s (release %d)", msg, f.release))
}

// group returns the hosts of group name, or of every other group when not
// is true.
func (f *fleet) group(name string, not bool) []*agent {
	var list []*agent
	for _, a := range f.hosts {
		if (a.group == name) != not {
			list = append(list, a)
		}
	}
	return list
}

// settled holds when a host is at commit, idle after its last run.
func settled(commit string) func(*agent, *status.Document) bool {
	return func(_ *agent, doc *status.Document) bool {
		return appliedCommit(doc) == commit && doc.State == "idle" && doc.LastRun != nil && doc.LastRun.Result != "failed"
	}
}

// bootstrap starts the agents and waits until every host has applied c1,
// converged, and Prometheus sees all of them converged.
func (f *fleet) bootstrap(ctx context.Context, c1 string) (string, error) {
	if err := startAgents(ctx, f.o, f.ps, f.r, f.hosts); err != nil {
		return "", err
	}
	f.logf("%d agents listening", len(f.hosts))
	if _, err := waitAll(ctx, f.hosts, poll, f.o.timeout+time.Minute, "commit "+short(c1)+", converged",
		func(a *agent, doc *status.Document) bool {
			return settled(c1)(a, doc) && doc.Converged && doc.Group == a.group
		}); err != nil {
		return "", err
	}
	for _, a := range f.hosts {
		b, err := os.ReadFile(filepath.Join(a.root, "etc/fleet/role"))
		if err != nil || string(b) != a.group+"\n" {
			return "", fmt.Errorf("%s: /etc/fleet/role beneath its root is %q (%v), want %q", a.host, b, err, a.group)
		}
	}
	n := len(f.hosts)
	if err := f.waitProm(ctx, "every host converged", "count(cairn_converged == 1)", strconv.Itoa(n)); err != nil {
		return "", err
	}
	return fmt.Sprintf("all %d hosts at %s, converged; Prometheus: count(cairn_converged == 1) = %d", n, short(c1), n), nil
}

// waitProm waits until the query's single value is want.
func (f *fleet) waitProm(ctx context.Context, what, query, want string) error {
	return waitFor(ctx, 10*f.o.scrape+30*time.Second, func() error {
		res, err := f.prom.query(ctx, query)
		if err != nil {
			return fmt.Errorf("prometheus: %s: %w", what, err)
		}
		if len(res) != 1 || res[0].value() != want {
			return fmt.Errorf("prometheus does not show %s: %s = %v, want %s", what, query, res, want)
		}
		return nil
	})
}

// stayed waits until every host of hosts has finished a run that started
// after since, and checks that each is still at commit.
func (f *fleet) stayed(ctx context.Context, hosts []*agent, since time.Time, commit string) error {
	docs := map[string]*status.Document{}
	if _, err := waitAll(ctx, hosts, poll, f.o.timeout, "a run after the push", func(a *agent, doc *status.Document) bool {
		docs[a.host] = doc // waitAll calls cond under its lock
		return doc.LastRun != nil && doc.LastRun.Started.After(since) && doc.State == "idle"
	}); err != nil {
		return err
	}
	for _, a := range hosts {
		if got := appliedCommit(docs[a.host]); got != commit {
			return fmt.Errorf("%s (group %s) moved to %s; it should have stayed at %s", a.host, a.group, short(got), short(commit))
		}
	}
	return nil
}

// canaryChange pushes a change to branch canary: the canaries move to it,
// web and db stay where they are.
func (f *fleet) canaryChange(ctx context.Context) (string, error) {
	before, err := f.r.tip("main")
	if err != nil {
		return "", err
	}
	c2, err := f.commit("fleet: a change for the canaries first", nil)
	if err != nil {
		return "", err
	}
	pushed := time.Now()
	if err := f.r.push(c2, "canary"); err != nil {
		return "", err
	}
	canaries := f.group("canary", false)
	if _, err := waitAll(ctx, canaries, poll, f.o.timeout, "commit "+short(c2), settled(c2)); err != nil {
		return "", err
	}
	others := f.group("canary", true)
	if err := f.stayed(ctx, others, pushed, before); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d canaries at %s; %d web and db hosts ran and stayed at %s", len(canaries), short(c2), len(others), short(before)), nil
}

// promotion promotes canary to web (main) and waits until every host is at
// canary's tip.
func (f *fleet) promotion(ctx context.Context) (string, error) {
	tip, err := f.r.tip("canary")
	if err != nil {
		return "", err
	}
	began := time.Now()
	how, err := f.promote(ctx, "canary", "web", true)
	if err != nil {
		return "", err
	}
	promoted := time.Since(began)
	if got, err := f.r.tip("main"); err != nil || got != tip {
		return "", fmt.Errorf("after the promotion main is at %s (%v), want canary's tip %s", short(got), err, short(tip))
	}
	note, err := f.r.git(f.r.bare, "notes", "--ref", "cairn-promotions", "show", tip)
	if err != nil {
		return "", fmt.Errorf("the promotion left no evidence: %w", err)
	}
	for _, a := range f.group("canary", false) {
		if !strings.Contains(note, a.host) {
			return "", fmt.Errorf("the promotion's note does not name %s:\n%s", a.host, note)
		}
	}
	if _, err := waitAll(ctx, f.hosts, poll, f.o.timeout, "commit "+short(tip), settled(tip)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (its git note names the canaries) after %.0f s; all %d hosts at %s", how, promoted.Seconds(), len(f.hosts), short(tip)), nil
}

// badCommit pushes a commit whose CHECK fails to canary: the canaries
// roll back to where they were and mark it bad, CairnRolledBack fires for
// them, and cairn promote refuses.
func (f *fleet) badCommit(ctx context.Context) (string, error) {
	good, err := f.r.tip("canary")
	if err != nil {
		return "", err
	}
	bad, err := f.commit("fleet: a health file the CHECK rejects", map[string]string{"files/health": "status=bad\n"})
	if err != nil {
		return "", err
	}
	if err := f.r.push(bad, "canary"); err != nil {
		return "", err
	}
	canaries := f.group("canary", false)
	if _, err := waitAll(ctx, canaries, poll, f.o.timeout, "a rollback of "+short(bad)+" to "+short(good),
		func(a *agent, doc *status.Document) bool {
			marked := slices.ContainsFunc(doc.BadCommits, func(b status.BadCommit) bool { return b.Commit == bad })
			return marked && appliedCommit(doc) == good && doc.State == "idle"
		}); err != nil {
		return "", err
	}
	f.logf("the %d canaries are back at %s and hold %s bad", len(canaries), short(good), short(bad))
	for _, a := range canaries {
		b, err := os.ReadFile(filepath.Join(a.root, "etc/fleet/health"))
		if err != nil || string(b) != "status=ok\n" {
			return "", fmt.Errorf("%s: /etc/fleet/health is %q (%v) after the rollback", a.host, b, err)
		}
	}
	want := map[string]bool{}
	for _, a := range canaries {
		want[a.addr] = true
	}
	var firing []string
	if err := waitFor(ctx, 10*f.o.scrape+30*time.Second, func() error {
		alerts, err := f.prom.alerts(ctx)
		if err != nil {
			return err
		}
		firing = firing[:0]
		for _, al := range alerts {
			if al.Labels["alertname"] == "CairnRolledBack" && al.State == "firing" {
				firing = append(firing, al.Labels["instance"])
			}
		}
		slices.Sort(firing)
		if len(firing) != len(want) || !all(firing, want) {
			return fmt.Errorf("CairnRolledBack fires for %v; want the %d canaries", firing, len(want))
		}
		return nil
	}); err != nil {
		return "", err
	}
	f.logf("CairnRolledBack fires for %s", strings.Join(firing, " "))
	if _, err := f.promote(ctx, "canary", "web", false); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d canaries rolled back to %s, %s marked bad; CairnRolledBack firing for %d instances; promote refused",
		len(canaries), short(good), short(bad), len(firing)), nil
}

func all(list []string, set map[string]bool) bool {
	for _, s := range list {
		if !set[s] {
			return false
		}
	}
	return true
}

// fix pushes the fix to canary; the canaries move to it.
func (f *fleet) fix(ctx context.Context) (string, error) {
	c, err := f.commit("fleet: the health file fixed", map[string]string{"files/health": "status=ok\n"})
	if err != nil {
		return "", err
	}
	if err := f.r.push(c, "canary"); err != nil {
		return "", err
	}
	canaries := f.group("canary", false)
	if _, err := waitAll(ctx, canaries, poll, f.o.timeout, "commit "+short(c), settled(c)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d canaries at %s", len(canaries), short(c)), nil
}

// driftHosts picks o.drift hosts spread over the fleet.
func (f *fleet) driftHosts() []*agent {
	var list []*agent
	for i := range f.o.drift {
		list = append(list, f.hosts[i*len(f.hosts)/f.o.drift+(len(f.hosts)/f.o.drift)/2])
	}
	return list
}

// plantDrift edits a managed file beneath the roots of a few hosts; each
// reports the drift at its next run, and Prometheus shows exactly those
// hosts drifting.
func (f *fleet) plantDrift(ctx context.Context) (string, error) {
	drifted := f.driftHosts()
	want := map[string]bool{}
	var names []string
	for _, a := range drifted {
		p := filepath.Join(a.root, "etc/fleet/role")
		if err := os.WriteFile(p, []byte("edited by hand\n"), 0o640); err != nil {
			return "", err
		}
		want[a.addr] = true
		names = append(names, a.host)
	}
	f.logf("edited /etc/fleet/role beneath the roots of %s", strings.Join(names, ", "))
	if _, err := waitAll(ctx, drifted, poll, f.o.timeout, "a drift report", func(_ *agent, doc *status.Document) bool {
		return len(doc.Drift) > 0
	}); err != nil {
		return "", err
	}
	n := strconv.Itoa(len(drifted))
	if err := f.waitProm(ctx, n+" hosts drifting", "count(cairn_drift_steps > 0)", n); err != nil {
		return "", err
	}
	res, err := f.prom.query(ctx, "cairn_drift_steps > 0")
	if err != nil {
		return "", err
	}
	var got []string
	for _, s := range res {
		got = append(got, s.Metric["instance"])
	}
	slices.Sort(got)
	if len(got) != len(want) || !all(got, want) {
		return "", fmt.Errorf("prometheus shows drift on %v; want exactly %v", got, names)
	}
	// The aggregator's view of the fleet as it is now, for the results
	// (exit 1: hosts lag or drift).
	out, err := exec.CommandContext(ctx, f.o.cairn, "fleet", "--prometheus", f.prom.base).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return "", fmt.Errorf("cairn fleet: %w:\n%s", err, out)
	}
	f.fleetView = strings.TrimRight(string(out), "\n")
	f.logf("cairn fleet:\n%s", indent(f.fleetView))
	return fmt.Sprintf("count(cairn_drift_steps > 0) = %s: %s", n, strings.Join(got, " ")), nil
}

// promote runs cairn promote --from from --to to against the fleet's
// Prometheus, through the URL the agents fetch from. With ok, it runs it as
// a timer would until it promotes (exit 0; exit 1, the soak not over yet,
// is tried again) and returns how; else it wants a refusal (exit 1) that
// names the hosts of from, and keeps what it said in f.refusal.
func (f *fleet) promote(ctx context.Context, from, to string, ok bool) (string, error) {
	args := []string{"promote", "--repo", f.r.url, "--from", from, "--to", to, "--prometheus", f.prom.base,
		"--soak", f.o.soak.String(), "--min-hosts", strconv.Itoa(len(f.group(from, false)))}
	deadline := time.Now().Add(f.o.soak + f.o.timeout)
	for {
		cmd := exec.CommandContext(ctx, f.o.cairn, args...)
		cmd.Env = f.r.env
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				return "", fmt.Errorf("cairn %s: %w", strings.Join(args, " "), err)
			}
			code = exit.ExitCode()
		}
		said := strings.TrimSpace(string(out))
		switch {
		case !ok && code == 1:
			for _, a := range f.group(from, false) {
				if !strings.Contains(said, a.host) {
					return "", fmt.Errorf("cairn promote refused without a word about %s:\n%s", a.host, said)
				}
			}
			f.refusal = said
			f.logf("cairn promote refused, as it should:\n%s", indent(said))
			return "refused", nil
		case !ok:
			return "", fmt.Errorf("cairn promote exited %d; want 1 (refused):\n%s", code, said)
		case code == 0:
			f.promoted = said
			f.logf("cairn promote:\n%s", indent(said))
			return "cairn promote --soak " + f.o.soak.String() + " promoted", nil
		case code != 1:
			return "", fmt.Errorf("cairn promote exited %d:\n%s", code, said)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("cairn promote did not promote within %v:\n%s", f.o.soak+f.o.timeout, said)
		}
		f.logf("cairn promote: not yet (exit 1): %s", firstLine(said))
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(max(f.o.scrape, 2*time.Second)):
		}
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
