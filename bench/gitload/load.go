package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/bench/genconfig/gencfg"
)

// control is the control branch; groups are the branches of the groups
// that the simulated hosts follow, one each, in turn.
const control = "main"

var groups = []string{"canary", "web", "db"}

// upstream is the repository served: a work tree where commits are made
// and the bare repository they are pushed to.
type upstream struct {
	work, base, bare string
	n                int
}

// git runs git in dir.
func git(dir string, args ...string) error {
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main", "-c", "gc.auto=0",
		"-c", "user.name=gitload", "-c", "user.email=gitload@localhost"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %v: %v\n%s", args, err, out)
	}
	return nil
}

// newUpstream writes a configuration of resources resources (bench/genconfig's
// layout), commits it with a few more commits of history, makes the group
// branches and tags tags, and pushes everything to a bare repository.
func newUpstream(work string, resources, tags int) (*upstream, string, error) {
	u := &upstream{work: filepath.Join(work, "config"), base: filepath.Join(work, "srv")}
	u.bare = filepath.Join(u.base, "repo.git")
	st, err := gencfg.Generate(u.work, gencfg.Params{Resources: resources, Dirs: resources / 20, Modules: 20})
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(u.bare, 0o755); err != nil {
		return nil, "", err
	}
	steps := [][]string{
		{"init", "-q", "--bare", u.bare},
		{"init", "-q"},
		{"add", "-A"},
		{"commit", "-q", "-m", "configuration"},
	}
	for _, s := range steps {
		if err := git(u.work, s...); err != nil {
			return nil, "", err
		}
	}
	for range 5 { // some history
		if err := u.commit(); err != nil {
			return nil, "", err
		}
	}
	for _, g := range groups {
		if err := git(u.work, "branch", g); err != nil {
			return nil, "", err
		}
	}
	if tags > 0 {
		var b strings.Builder
		for i := range tags {
			fmt.Fprintf(&b, "create refs/tags/v%d HEAD\n", i)
		}
		cmd := exec.Command("git", "update-ref", "--stdin")
		cmd.Dir, cmd.Stdin = u.work, strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("git update-ref: %v\n%s", err, out)
		}
	}
	if err := git(u.work, "push", "-q", u.bare, "--all"); err != nil {
		return nil, "", err
	}
	if err := git(u.work, "push", "-q", u.bare, "--tags"); err != nil {
		return nil, "", err
	}
	return u, st.String(), nil
}

// commit appends one line to site.cairn on main and commits it (not
// pushed).
func (u *upstream) commit() error {
	u.n++
	f, err := os.OpenFile(filepath.Join(u.work, "site.cairn"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "# change %d\n", u.n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return git(u.work, "commit", "-q", "-a", "-m", fmt.Sprintf("change %d", u.n))
}

// push commits a one-line change on the control branch and pushes it.
func (u *upstream) push() error {
	if err := u.commit(); err != nil {
		return err
	}
	return git(u.work, "push", "-q", u.bare, control)
}

// host is one simulated agent: its mirror directory and the branches it
// fetches.
type host struct {
	mu       sync.Mutex // one fetch at a time, as in the agent
	dir      string
	branches []string
}

func newHosts(work string, n int) []*host {
	hosts := make([]*host, n)
	for i := range hosts {
		hosts[i] = &host{dir: filepath.Join(work, "hosts", fmt.Sprintf("h%05d", i), "mirror"),
			branches: []string{control, groups[i%len(groups)]}}
	}
	return hosts
}

// poll is one agent's fetch, as agent/fetch.go does it at every run: open
// the mirror, fetch the control branch and the group's branch in one
// reference advertisement, close.
func (h *host) poll(ctx context.Context, url string, timeout time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, err := mirror.Open(h.dir, url, mirror.Options{Timeout: timeout})
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = m.Fetch(ctx, h.branches...)
	return err
}

// cpuSelf returns the CPU time this process has used.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// phase is what one batch of polls measured.
type phase struct {
	server, what string
	polls        int
	conc         int
	rate         float64 // polls/s asked for; 0: as fast as conc allows
	wall         time.Duration
	serverCPU    time.Duration // -1: not measured
	clientCPU    time.Duration
	lat          []time.Duration
	errs         int
	firstErr     error
	reqs         map[string]int
}

// run makes n polls against s, at rate polls/s in all (0: as fast as conc
// workers can), host after host in turn, and measures them.
func run(ctx context.Context, s *server, hosts []*host, n, conc int, rate float64, timeout time.Duration, what string) (*phase, error) {
	p := &phase{server: s.name, what: what, polls: n, conc: conc, rate: rate, lat: make([]time.Duration, n), serverCPU: -1}
	before, err := s.count()
	if err != nil {
		return nil, err
	}
	cg0, cgErr := s.cg.usage()
	cpu0 := cpuSelf()
	start := time.Now()
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if rate > 0 { // open loop: poll i starts at i/rate
					at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if d := time.Until(at); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				t := time.Now()
				err := hosts[i%len(hosts)].poll(ctx, s.url, timeout)
				p.lat[i] = time.Since(t)
				if err != nil {
					mu.Lock()
					p.errs++
					if p.firstErr == nil {
						p.firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	p.wall = time.Since(start)
	p.clientCPU = cpuSelf() - cpu0
	if cg1, err := s.cg.usage(); cgErr == nil && err == nil {
		p.serverCPU = cg1 - cg0
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s, %s: %w", s.name, what, err)
	}
	// The servers write their logs as they answer; the last lines may
	// come a moment after the last answer.
	time.Sleep(100 * time.Millisecond)
	after, err := s.count()
	if err != nil {
		return nil, err
	}
	p.reqs = map[string]int{}
	for k, v := range after {
		if k == "advertisement bytes" {
			p.reqs[k] = v
			continue
		}
		if d := v - before[k]; d != 0 {
			p.reqs[k] = d
		}
	}
	slices.Sort(p.lat)
	return p, nil
}

// pct returns the q-th quantile of sorted durations.
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}
