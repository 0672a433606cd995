// Command fleet runs a simulated fleet of cairn agents on one machine
// through the scenario of issue 11, checks every phase, and writes the
// figures:
//
//	fleet [-canary 5] [-web 60] [-db 35] [-interval 30s] [-out FILE] [-keep] ...
//
// It starts one git daemon on 127.0.0.1 (in a cgroup v2 of its own, whose
// cpu.stat gives the server's CPU; without one, its /proc/PID/stat)
// serving a configuration signed with a throw-away SSH key; one real
// `cairn agent` process per host (canary-01, web-01, ..., db-35), each
// with its own --root, --state and --listen
// 127.0.0.N:PORT (N = 2, 3, ...); and a real Prometheus scraping them all
// as job "cairn" with the shipped rules (prometheus/alerts.yml). Then:
//
//  1. bootstrap: every host converges on the first commit;
//  2. a change pushed to branch canary: the canaries move, web and db
//     (which follow main) stay;
//  3. a promotion (cairn promote --from canary --to web): everyone moves;
//  4. a commit whose CHECK fails, pushed to canary: the canaries roll back,
//     CairnRolledBack fires, and cairn promote refuses (exit 1);
//  5. the fix: the canaries move;
//  6. drift planted on five hosts: Prometheus shows exactly those five.
//
// A phase that does not reach its expected state stops the run with a
// message and exit 1. Then the figures: push → applied across hosts by
// polling and by POST /trigger fan-out (each host's /status polled every
// 0.5 s), idle RSS per agent, and the git server's CPU per 100 polls,
// written as Markdown to -out. Everything started is stopped at the end,
// on failure and on SIGINT or SIGTERM; the scratch directory (roots,
// states, logs) is removed unless -keep.
//
// It must run as root (the agents apply as root beneath their roots; the
// cgroup) and needs git, ssh-keygen and prometheus. `make fleet` builds
// bin/cairn and runs it with the defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// options are the flags.
type options struct {
	groups     []groupSize
	interval   time.Duration
	confirm    time.Duration
	soak       time.Duration
	scrape     time.Duration
	port       int
	drift      int
	out        string
	dir        string // the scratch directory
	keep       bool
	cgroup     bool // run git daemon in a cgroup v2 of its own
	cairn      string
	prometheus string
	rules      string
	timeout    time.Duration // the longest a phase may take; 0: from the interval
}

// groupSize is a group of the fleet and how many hosts it has.
type groupSize struct {
	name  string
	hosts int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "fleet: FAIL:", err)
		os.Exit(1)
	}
}

// run parses args, runs the fleet through the scenario and writes the
// figures; progress goes to w.
func run(ctx context.Context, args []string, w io.Writer) (err error) {
	fl := flag.NewFlagSet("fleet", flag.ContinueOnError)
	canary := fl.Int("canary", 5, "hosts of group canary (branch canary)")
	web := fl.Int("web", 60, "hosts of group web (the control branch, main)")
	db := fl.Int("db", 35, "hosts of group db (the control branch, main)")
	o := &options{}
	fl.DurationVar(&o.interval, "interval", 30*time.Second, "the agents' --interval (the splay is the agent's default, interval/2)")
	fl.DurationVar(&o.confirm, "confirm", 3*time.Second, "the agents' --confirm")
	fl.DurationVar(&o.soak, "soak", 30*time.Second, "cairn promote's --soak")
	fl.DurationVar(&o.scrape, "scrape", 5*time.Second, "Prometheus' scrape and rule evaluation interval")
	fl.DurationVar(&o.timeout, "phase-timeout", 0, "the longest a phase may take (default: from the interval and the fleet's size)")
	fl.IntVar(&o.port, "port", 9479, "the agents listen on 127.0.0.N:`PORT`, N = 2, 3, ...")
	fl.IntVar(&o.drift, "drift", 5, "plant drift on this many hosts")
	fl.StringVar(&o.out, "out", "", "write the figures to `FILE` (default bench/results/fleet-DATE.md)")
	fl.StringVar(&o.dir, "dir", "", "the scratch `DIR` for the repository, roots, states and logs, removed at the end unless -keep (default: a new one in $TMPDIR)")
	fl.BoolVar(&o.keep, "keep", false, "keep the scratch directory (and print where it is)")
	fl.BoolVar(&o.cgroup, "cgroup", true, "measure git daemon's CPU in a cgroup v2 of its own (false, or no cgroup v2: from /proc/PID/stat)")
	fl.StringVar(&o.cairn, "cairn", "bin/cairn", "the cairn `BINARY`")
	fl.StringVar(&o.prometheus, "prometheus", "/usr/bin/prometheus", "the Prometheus `BINARY`")
	fl.StringVar(&o.rules, "rules", "prometheus/alerts.yml", "the alert rules `FILE` Prometheus loads")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	o.groups = []groupSize{{"canary", *canary}, {"web", *web}, {"db", *db}}
	n := *canary + *web + *db
	switch {
	case *canary < 1 || *web < 1 || *db < 1:
		return errors.New("every group needs a host at least")
	case n > 254:
		return fmt.Errorf("%d hosts: at most 254 fit in 127.0.0.2-255", n)
	case o.drift > n:
		return fmt.Errorf("-drift %d: the fleet has %d hosts", o.drift, n)
	case o.interval <= 0 || o.confirm < 0 || o.scrape <= 0:
		return errors.New("-interval and -scrape must be positive, -confirm not negative")
	}
	if o.out == "" {
		o.out = filepath.Join("bench", "results", "fleet-"+time.Now().UTC().Format("2006-01-02")+".md")
	}
	if o.cairn, err = filepath.Abs(o.cairn); err != nil {
		return err
	}
	if o.timeout == 0 {
		// Two waits with their splay and a move, plus time for a busy
		// machine: the start-up of n agents at once, each compiling.
		o.timeout = 2*o.interval + o.interval/2 + o.confirm + 30*time.Second + time.Duration(n)*300*time.Millisecond
	}
	if os.Geteuid() != 0 {
		return errors.New("run it as root: the agents apply as root beneath their roots")
	}

	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "cairn-fleet."); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return err
	}
	f := &fleet{o: o, w: w, ps: &procs{}}
	defer func() {
		if err := f.stop(); err != nil {
			fmt.Fprintln(w, "fleet: cleanup:", err)
		}
		if o.keep {
			fmt.Fprintln(w, "fleet: kept", o.dir)
		} else {
			os.RemoveAll(o.dir)
		}
	}()
	fmt.Fprintf(w, "fleet: %d agents (canary %d, web %d, db %d), interval %v, in %s\n", n, *canary, *web, *db, o.interval, o.dir)
	if err := f.run(ctx); err != nil {
		if !o.keep {
			err = fmt.Errorf("%w\n(-keep keeps the agents' logs, roots and states)", err)
		}
		return err
	}
	return nil
}
