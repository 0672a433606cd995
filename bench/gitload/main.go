// Command gitload measures what one agent poll costs a git server: it runs
// the agent's own fetch code (agent/mirror's Open and Fetch, the control
// branch and the group's branch in one reference advertisement, as
// agent/fetch.go does at every run) for many simulated hosts at once,
// each with its own mirror directory, against
//
//   - git daemon on 127.0.0.1,
//   - git http-backend behind nginx and fcgiwrap (Debian packages
//     nginx-light or nginx, and fcgiwrap), over http on loopback,
//   - the same nginx with the ref advertisement (info/refs) cached for
//     -ttl (fastcgi_cache),
//   - the same nginx over https (TLS 1.3, a P-256 certificate): a new
//     connection and handshake per poll, as the agent makes.
//
// Each server runs in a cgroup (v2) of its own, and its CPU per poll is
// the cgroup's usage_usec over the polls: the server and every process it
// starts (upload-pack; fcgiwrap's git http-backend). The hosts are
// bootstrapped by one real fetch each from git daemon; then for each
// server, every host polls once (not measured: its mirror is re-pointed to
// the server's URL), then -polls polls with nothing new, then -rounds
// rounds of a one-line commit pushed to the control branch and one poll
// of every host, which brings it.
//
//	gitload [-long] [-hosts N] [-polls N] [-conc C] [-rate R] [-rounds N]
//	        [-resources N] [-tags N] [-servers daemon,http,http-cache,https] [-ttl D] [-o FILE]
//
// It prints a markdown table (and writes it to -o): polls/s measured,
// server CPU per poll and the polls/s one server core carries at that
// cost, the client's CPU per poll, latency p50 and p99, and the requests
// the server logged per poll. Needs root (for the cgroup) and git; a
// server whose programs are missing is skipped with a note.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := mainErr(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gitload:", err)
		os.Exit(1)
	}
}

type config struct {
	hosts, polls, conc, rounds, resources, children, tags int
	rate                                                  float64
	servers                                               []string
	ttl, timeout, deadline                                time.Duration
	out                                                   string
	keep                                                  bool
}

func mainErr(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("gitload", flag.ContinueOnError)
	long := fl.Bool("long", false, "the long run: -hosts 200 -polls 4000 -rounds 5 -conc 8 (flags given too override it)")
	var c config
	fl.IntVar(&c.hosts, "hosts", 20, "simulated hosts, each with its own mirror")
	fl.IntVar(&c.polls, "polls", 300, "polls with nothing new, per server")
	fl.IntVar(&c.conc, "conc", 4, "polls under way at once")
	fl.Float64Var(&c.rate, "rate", 0, "polls per second in all (open loop); 0: as fast as -conc allows")
	fl.IntVar(&c.rounds, "rounds", 2, "rounds of a new commit polled by every host, per server")
	fl.IntVar(&c.resources, "resources", 10000, "resources of the configuration (bench/genconfig's layout)")
	fl.IntVar(&c.tags, "tags", 0, "tags to add to the repository (each is a line of the ref advertisement)")
	fl.IntVar(&c.children, "fcgi-children", runtime.NumCPU()*2, "fcgiwrap processes (its -c)")
	servers := fl.String("servers", "daemon,http,http-cache,https", "servers to measure, in order (daemon, http, http-cache, https)")
	fl.DurationVar(&c.ttl, "ttl", time.Second, "how long the cached server keeps the ref advertisement")
	fl.DurationVar(&c.timeout, "fetch-timeout", 30*time.Second, "a fetch's silence limit (mirror.Options.Timeout)")
	fl.DurationVar(&c.deadline, "deadline", 15*time.Minute, "the whole run stops after this")
	fl.StringVar(&c.out, "o", "", "also write the table to `FILE`")
	fl.BoolVar(&c.keep, "keep", false, "keep the work directory")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *long {
		set := map[string]bool{}
		fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"hosts": "200", "polls": "4000", "rounds": "5", "conc": "8"} {
			if !set[name] {
				_ = fl.Set(name, v)
			}
		}
	}
	c.servers = strings.Split(*servers, ",")
	if c.ttl < time.Second || c.ttl%time.Second != 0 {
		return errors.New("-ttl must be whole seconds (nginx's cache validity)")
	}
	if c.hosts < 1 || c.polls < 1 || c.conc < 1 || c.rounds < 0 {
		return errors.New("-hosts, -polls and -conc must be at least 1, -rounds at least 0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
	defer cancel()
	return bench(ctx, c, stdout)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func bench(ctx context.Context, c config, stdout io.Writer) error {
	work, err := os.MkdirTemp("", "cairn-gitload.")
	if err != nil {
		return err
	}
	if c.keep {
		logf("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	load0, _ := os.ReadFile("/proc/loadavg")
	logf("a configuration of %d resources, its history and branches %s, %v", c.resources, control, groups)
	u, stats, err := newUpstream(work, c.resources, c.tags)
	if err != nil {
		return err
	}
	packSize := dirSize(filepath.Join(u.bare, "objects"))

	var notes []string
	var servers []*server
	defer func() {
		seen := map[*cgroup]bool{}
		for _, s := range servers {
			if !seen[s.cg] || s.cg == nil {
				seen[s.cg] = true
				s.stop()
			}
		}
	}()
	cgDaemon, err := newCgroup("daemon")
	if err != nil {
		notes = append(notes, fmt.Sprintf("server CPU not measured: %v", err))
	}
	daemon, err := startDaemon(ctx, work, u.base, cgDaemon)
	if err != nil {
		cgDaemon.remove()
		return err
	}
	servers = append(servers, daemon)
	want := map[string]*server{"daemon": daemon}
	if slices.ContainsFunc(c.servers, func(n string) bool { return strings.HasPrefix(n, "http") }) {
		missing := ""
		for _, p := range []string{"nginx", "fcgiwrap"} {
			if _, err := exec.LookPath(p); err != nil {
				missing += " " + p
			}
		}
		if missing != "" {
			notes = append(notes, "http servers skipped: not installed:"+missing+" (apt-get install nginx-light fcgiwrap)")
		} else {
			cgNginx, err := newCgroup("nginx")
			if err != nil {
				notes = append(notes, fmt.Sprintf("server CPU not measured: %v", err))
			}
			plain, cached, tls, err := startNginx(ctx, work, u.base, cgNginx, c.children, c.ttl)
			if err != nil {
				cgNginx.remove()
				return err
			}
			// Go reads it at the first TLS connection: the agent's fetch
			// code trusts the server's certificate as it would a real CA's.
			os.Setenv("SSL_CERT_FILE", filepath.Join(work, "nginx", "server.crt"))
			servers = append(servers, plain, cached, tls)
			want["http"], want["http-cache"], want["https"] = plain, cached, tls
		}
	}

	hosts := newHosts(work, c.hosts)
	logf("bootstrapping %d hosts from git daemon, %d at once", c.hosts, c.conc)
	boot, err := run(ctx, daemon, hosts, c.hosts, c.conc, 0, c.timeout, "first fetch (clone)")
	if err != nil {
		return err
	}
	if boot.errs > 0 {
		return fmt.Errorf("bootstrap: %d of %d fetches failed, the first: %w", boot.errs, boot.polls, boot.firstErr)
	}
	phases := []*phase{boot}
	for _, name := range c.servers {
		s := want[name]
		if s == nil {
			if !strings.HasPrefix(name, "http") {
				return fmt.Errorf("-servers: unknown server %q", name)
			}
			continue
		}
		logf("%s: every host points its mirror at %s", s.name, s.url)
		rp, err := run(ctx, s, hosts, c.hosts, c.conc, 0, c.timeout, "re-point")
		if err != nil {
			return err
		}
		if rp.errs > 0 {
			return fmt.Errorf("%s: %d of %d fetches failed, the first: %w", s.name, rp.errs, rp.polls, rp.firstErr)
		}
		logf("%s: %d polls with nothing new, %d at once", s.name, c.polls, c.conc)
		idle, err := run(ctx, s, hosts, c.polls, c.conc, c.rate, c.timeout, "nothing new")
		if err != nil {
			return err
		}
		phases = append(phases, idle)
		if c.rounds == 0 {
			continue
		}
		logf("%s: %d rounds of a one-line commit fetched by all %d hosts", s.name, c.rounds, c.hosts)
		var rounds []*phase
		for range c.rounds {
			if err := u.push(); err != nil {
				return err
			}
			if name == "http-cache" {
				// nginx keeps an entry valid until the end of the second
				// in which its validity ends: up to 2 TTL for a TTL of 1 s.
				time.Sleep(2*c.ttl + 100*time.Millisecond)
			}
			p, err := run(ctx, s, hosts, c.hosts, c.conc, 0, c.timeout, "a new commit")
			if err != nil {
				return err
			}
			rounds = append(rounds, p)
		}
		phases = append(phases, merge(rounds))
	}
	load1, _ := os.ReadFile("/proc/loadavg")

	var b strings.Builder
	fmt.Fprintf(&b, "## What one agent poll costs the git server (bench/gitload)\n\n")
	fmt.Fprintf(&b, "%s UTC; %s; %s; %d cores; load average at start %s, at end %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), runtime.Version(), gitVersion(), runtime.NumCPU(),
		loadavg(load0), loadavg(load1))
	fmt.Fprintf(&b, "Repository: %s; %s of objects; branches %s, %s; %d tags; %d hosts, each fetching %s and its group's branch.\n",
		stats, size(packSize), control, strings.Join(groups, ", "), c.tags, c.hosts, control)
	fmt.Fprintf(&b, "Flags: -hosts %d -polls %d -conc %d -rate %g -rounds %d -resources %d -tags %d -ttl %s -fcgi-children %d\n\n",
		c.hosts, c.polls, c.conc, c.rate, c.rounds, c.resources, c.tags, c.ttl, c.children)
	table(&b, phases)
	for _, n := range notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	fmt.Fprint(&b, "\nserver CPU: the server's cgroup (v2) usage_usec over the polls, every child process included;"+
		" server cores busy: that over the wall time; one core carries 1 s / (server CPU per poll) polls a second. client CPU: this process's (getrusage)."+
		" requests: what the server logged, per poll.\n")
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	if c.out != "" {
		return os.WriteFile(c.out, []byte(b.String()), 0o644)
	}
	return nil
}

// merge adds up phases of the same kind.
func merge(ps []*phase) *phase {
	m := *ps[0]
	m.lat = nil
	m.reqs = map[string]int{}
	m.polls, m.wall, m.serverCPU, m.clientCPU, m.errs = 0, 0, 0, 0, 0
	for _, p := range ps {
		m.polls += p.polls
		m.wall += p.wall
		if p.serverCPU < 0 || m.serverCPU < 0 {
			m.serverCPU = -1
		} else {
			m.serverCPU += p.serverCPU
		}
		m.clientCPU += p.clientCPU
		m.errs += p.errs
		if m.firstErr == nil {
			m.firstErr = p.firstErr
		}
		m.lat = append(m.lat, p.lat...)
		for k, v := range p.reqs {
			if k == "advertisement bytes" {
				m.reqs[k] = v
			} else {
				m.reqs[k] += v
			}
		}
	}
	slices.Sort(m.lat)
	return &m
}

func table(w io.Writer, ps []*phase) {
	fmt.Fprintln(w, "| server | polls | conc | polls/s | server cores busy | server CPU / poll | polls/s per server core | client CPU / poll | p50 | p99 | requests per poll | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range ps {
		n := float64(p.polls)
		srv, core, busy := "n/a", "n/a", "n/a"
		if p.serverCPU >= 0 {
			busy = fmt.Sprintf("%.2f", p.serverCPU.Seconds()/p.wall.Seconds())
			per := p.serverCPU / time.Duration(p.polls)
			srv = ms(per)
			if per > 0 {
				core = fmt.Sprintf("%.0f", float64(time.Second)/float64(per))
			}
		}
		var reqs []string
		for _, k := range slices.Sorted(mapKeys(p.reqs)) {
			if k == "advertisement bytes" {
				reqs = append(reqs, fmt.Sprintf("advertisement %d B", p.reqs[k]))
				continue
			}
			reqs = append(reqs, fmt.Sprintf("%s %.2f", k, float64(p.reqs[k])/n))
		}
		errs := fmt.Sprint(p.errs)
		if p.firstErr != nil {
			errs += fmt.Sprintf(" (%v)", p.firstErr)
		}
		fmt.Fprintf(w, "| %s: %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			p.server, p.what, p.polls, p.conc, n/p.wall.Seconds(), busy, srv, core,
			ms(p.clientCPU/time.Duration(p.polls)), ms(pct(p.lat, 0.5)), ms(pct(p.lat, 0.99)),
			strings.Join(reqs, ", "), errs)
	}
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func size(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func loadavg(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func gitVersion() string {
	out, err := exec.Command("git", "--version").Output()
	if err != nil {
		return "git ?"
	}
	return strings.TrimSpace(string(out))
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
