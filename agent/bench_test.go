package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/bench/genconfig/gencfg"
	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// BenchmarkAgent10k runs the pipeline in process on a repository of
// bench/genconfig's 10,000-resource configuration, applied to a Debian root
// (internal/debroot) with the configuration's packages registered as
// installed, as bench/agent.sh does with the whole process (see there why
// the service blocks are made running = false):
//
//	go test -run '^$' -bench Agent10k -benchtime 5x -cpuprofile cpu.prof ./agent/
//
// CPU is the process's (getrusage, user+sys), per run; child-cpu-ms is that
// of the programs the run waited for (dpkg-query, apt-mark, systemctl).
// Unchanged is a run that finds the tip unchanged (goal: no compile, under
// 20 ms of CPU besides the drift check): nodrift-cpu-ms is that figure,
// drift-cpu-ms the drift check's share. OneLine is a run that moves to a
// commit that changes one line of one file (the in-process part of push →
// applied). The profile's samples of the runs carry the label bench=
// unchanged, oneline, unchanged-drift or oneline-drift.
func BenchmarkAgent10k(b *testing.B) {
	h := newBenchHost(b)
	b.Run("Unchanged", func(b *testing.B) {
		var sum cpuSums
		for b.Loop() {
			rep, obs := sum.run(h.p, "unchanged")
			if rep.Run.Result != ResultUnchanged || rep.Err != nil {
				b.Fatalf("unchanged run: %s, %v", rep.Run.Result, rep.Err)
			}
			if obs.compiled {
				b.Fatal("an unchanged run compiled")
			}
		}
		sum.report(b)
		report(b, "nodrift-cpu-ms/run", sum.total-sum.drift)
	})
	b.Run("OneLine", func(b *testing.B) {
		var sum cpuSums
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			rel := fmt.Sprintf("modules/m07/files/d000/f%05d.conf", i+1)
			old, err := os.ReadFile(filepath.Join(h.repo.Dir, rel))
			if err != nil {
				b.Fatal(err)
			}
			want := h.repo.Commit("main", map[string]string{rel: string(old) + fmt.Sprintf("# change %d\n", i)})
			b.StartTimer()
			rep, obs := sum.run(h.p, "oneline")
			if rep.Run.Result != ResultApplied || rep.Run.Commit != want || rep.Err != nil {
				b.Fatalf("run to %s: %s at %s, %v", want, rep.Run.Result, rep.Run.Commit, rep.Err)
			}
			if obs.moved.IsZero() {
				b.Fatal("the move was not announced")
			}
		}
		sum.report(b)
		report(b, "nodrift-cpu-ms/run", sum.total-sum.drift)
		report(b, "moved-ms/run", sum.moved)
		sum.reportStates(b)
	})
}

// cpuSums add up the CPU times of runs, the wall time until the move was
// announced (the in-process part of push → applied), and each state's wall
// time.
type cpuSums struct {
	total, drift, children, moved time.Duration
	states                        map[string]time.Duration
}

// run runs p once, its profile samples labelled bench=label, and adds its
// CPU times.
func (c *cpuSums) run(p *Pipeline, label string) (*Report, *cpuObserver) {
	obs := &cpuObserver{label: label, last: "open", since: time.Now()}
	obs.setLabel("")
	defer pprof.SetGoroutineLabels(context.Background())
	start := rusage()
	began := obs.since
	rep := p.Run(context.Background(), Request{}, obs)
	end := rusage()
	obs.Enter("", time.Now())
	c.total += end.self - start.self
	c.drift += obs.driftEnd.self - obs.drift.self
	c.children += end.children - start.children
	if !obs.moved.IsZero() {
		c.moved += obs.moved.Sub(began)
	}
	if c.states == nil {
		c.states = map[string]time.Duration{}
	}
	for s, d := range obs.states {
		c.states[s] += d
	}
	return rep, obs
}

// reportStates reports each state's wall time per run, "open" being the
// time before the first (steps.Open).
func (c *cpuSums) reportStates(b *testing.B) {
	for s, d := range c.states {
		report(b, s+"-ms/run", d)
	}
}

// report reports the sums per run.
func (c *cpuSums) report(b *testing.B) {
	report(b, "cpu-ms/run", c.total)
	report(b, "drift-cpu-ms/run", c.drift)
	report(b, "child-cpu-ms/run", c.children)
}

// report reports d per iteration of b's loop in milliseconds.
func report(b *testing.B, unit string, d time.Duration) {
	b.ReportMetric(float64(d)/float64(time.Millisecond)/float64(b.N), unit)
}

// benchHost is a Debian root at the first commit of a 10k-resource
// repository.
type benchHost struct {
	repo *gittest.Repo
	p    *Pipeline
}

// servicesRunning are the restart_on lines of genconfig's service blocks.
var servicesRunning = regexp.MustCompile(`(?m)^  restart_on = .*$`)

// packageBlock is a package block of genconfig, with its version if any.
var packageBlock = regexp.MustCompile(`(?m)^package "([^"]+)" \{(?:\n  version = "([^"]+)")?`)

func newBenchHost(b *testing.B) *benchHost {
	b.Helper()
	root := debroot.New(b)
	repo := gittest.New(b)
	// genconfig writes only into an empty directory: the work tree has .git.
	gen := filepath.Join(b.TempDir(), "config")
	if _, err := gencfg.Generate(gen, gencfg.Params{Resources: 10000, Dirs: 500, Modules: 20}); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"site.cairn", "modules"} {
		if err := os.Rename(filepath.Join(gen, name), filepath.Join(repo.Dir, name)); err != nil {
			b.Fatal(err)
		}
	}
	mains, err := filepath.Glob(filepath.Join(repo.Dir, "modules", "*", "main.cairn"))
	if err != nil || len(mains) == 0 {
		b.Fatalf("no modules: %v", err)
	}
	status, err := os.OpenFile(filepath.Join(root, "var/lib/dpkg/status"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer status.Close()
	units := filepath.Join(root, "usr/lib/systemd/system")
	for _, m := range mains {
		src, err := os.ReadFile(m)
		if err != nil {
			b.Fatal(err)
		}
		// No systemd runs the root's units: enable, no start or restart.
		src = servicesRunning.ReplaceAll(src, []byte("  running    = false"))
		if err := os.WriteFile(m, src, 0o644); err != nil {
			b.Fatal(err)
		}
		// The packages are in no archive: registered as installed.
		for _, pm := range packageBlock.FindAllSubmatch(src, -1) {
			name, ver := string(pm[1]), string(pm[2])
			if ver == "" {
				ver = "1.0-1"
			}
			fmt.Fprintf(status, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: bench <bench@example.org>\nArchitecture: all\nVersion: %s\nDescription: a stand-in of BenchmarkAgent10k\n\n", name, ver)
			// An empty file list: else dpkg --audit finds the database unclean.
			if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/info", name+".list"), nil, 0o644); err != nil {
				b.Fatal(err)
			}
			unit := fmt.Sprintf("[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n", name)
			if err := os.WriteFile(filepath.Join(units, name+".service"), []byte(unit), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	repo.Commit("main", nil)
	r, err := rootfs.Open(root)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	p, err := New(Config{
		Repo: repo.Dir, Host: gencfg.Host, Branch: "main", Facts: map[string]string{"release": gencfg.Release},
		Root: r, AllowUnsigned: true, Drift: DriftReport, MaxRemoval: 25, LockWait: time.Minute,
		Drivers: steps.Host{Packages: debian.NewApt(root), Accounts: benchAccounts{debian.NewAccounts(root)}, Units: systemd.New(root)},
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if rep := p.Run(context.Background(), Request{}, nil); rep.Run.Result != ResultApplied || rep.Err != nil {
		b.Fatalf("first run: %s, %v", rep.Run.Result, rep.Err)
	}
	b.Logf("first apply of 10k resources in %v", time.Since(start).Round(time.Millisecond))
	return &benchHost{repo: repo, p: p}
}

// cpuTimes are the CPU times of this process and of its waited-for
// children.
type cpuTimes struct{ self, children time.Duration }

func rusage() cpuTimes {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		panic(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		panic(err)
	}
	cpu := func(r *syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return cpuTimes{cpu(&self), cpu(&children)}
}

// cpuObserver takes the CPU times when the drift check starts and when it
// ends, and notes a compile. It labels the run's CPU profile samples
// bench=LABEL, and those of the drift check bench=LABEL-drift:
//
//	go tool pprof -tagfocus bench=unchanged agent.test cpu.prof
type cpuObserver struct {
	label           string
	drift, driftEnd cpuTimes
	inDrift         bool
	compiled        bool
	// last is the state entered last, since then; states the wall time of
	// each; moved when the move was announced.
	last   string
	since  time.Time
	states map[string]time.Duration
	moved  time.Time
}

// setLabel labels the goroutine's profile samples (and those of the
// goroutines it starts) bench=LABEL+suffix.
func (o *cpuObserver) setLabel(suffix string) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("bench", o.label+suffix)))
}

func (o *cpuObserver) Enter(s State, at time.Time) {
	now := time.Now()
	if o.states == nil {
		o.states = map[string]time.Duration{}
	}
	o.states[o.last] += now.Sub(o.since)
	o.last, o.since = string(s), now
	switch {
	case s == Compiling:
		o.compiled = true
	case s == CheckingDrift:
		o.setLabel("-drift")
		o.drift, o.inDrift = rusage(), true
	case o.inDrift:
		o.driftEnd, o.inDrift = rusage(), false
		o.setLabel("")
	}
}

func (o *cpuObserver) Fetched(bool, time.Time) {}

func (o *cpuObserver) Moved(string, string, string, time.Time, int) { o.moved = time.Now() }

// benchAccounts adapts debian's accounts driver to steps.Accounts, as the
// command line's drivers do.
type benchAccounts struct{ d *debian.Accounts }

func (a benchAccounts) User(name string) (*steps.User, error) {
	u, err := a.d.User(name)
	return (*steps.User)(u), err
}

func (a benchAccounts) Group(name string) (*steps.Group, error) {
	g, err := a.d.Group(name)
	return (*steps.Group)(g), err
}

func (a benchAccounts) AddUser(s steps.UserSpec) error    { return a.d.AddUser(debian.UserSpec(s)) }
func (a benchAccounts) ModifyUser(s steps.UserSpec) error { return a.d.ModifyUser(debian.UserSpec(s)) }
func (a benchAccounts) DeleteUser(name string, removeHome bool) error {
	return a.d.DeleteUser(name, removeHome)
}
func (a benchAccounts) RestoreUser(u steps.User) error   { return a.d.RestoreUser(debian.User(u)) }
func (a benchAccounts) AddGroup(s steps.GroupSpec) error { return a.d.AddGroup(debian.GroupSpec(s)) }
func (a benchAccounts) ModifyGroup(s steps.GroupSpec) error {
	return a.d.ModifyGroup(debian.GroupSpec(s))
}
func (a benchAccounts) DeleteGroup(name string) error    { return a.d.DeleteGroup(name) }
func (a benchAccounts) RestoreGroup(g steps.Group) error { return a.d.RestoreGroup(debian.Group(g)) }
