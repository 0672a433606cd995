package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// agent is one host of the fleet: a cairn agent process with its own root,
// state directory, host name and listen address.
type agent struct {
	host  string // canary-01, web-01, ..., db-35
	group string
	addr  string // 127.0.0.N:PORT
	root  string
	state string
	log   string
	proc  *proc
}

// hostNames names the hosts of the fleet: GROUP-NN for each group, in
// order, numbered from 01.
func hostNames(groups []groupSize) []*agent {
	var list []*agent
	for _, g := range groups {
		for i := 1; i <= g.hosts; i++ {
			list = append(list, &agent{host: fmt.Sprintf("%s-%02d", g.name, i), group: g.name})
		}
	}
	return list
}

// startAgents starts one cairn agent for each of hosts, the Nth (from 0)
// listening on 127.0.0.(N+2):port, and waits until each answers /healthz.
func startAgents(ctx context.Context, o *options, ps *procs, r *repo, hosts []*agent) error {
	for i, a := range hosts {
		a.addr = net.JoinHostPort(fmt.Sprintf("127.0.0.%d", i+2), strconv.Itoa(o.port))
		a.root = filepath.Join(o.dir, "hosts", a.host, "root")
		a.state = filepath.Join(o.dir, "hosts", a.host, "state")
		a.log = filepath.Join(o.dir, "hosts", a.host, "agent.log")
		if err := os.MkdirAll(filepath.Join(a.root, "etc"), 0o755); err != nil {
			return err
		}
		cmd := exec.Command(o.cairn, "agent",
			"--repo", r.url, "--trust", r.trust, "--host", a.host,
			"--root", a.root, "--state", a.state, "--listen", a.addr,
			"--interval", o.interval.String(), "--confirm", o.confirm.String(),
			"--fact", "release=12", "--fact", "codename=bookworm", "--fact", "arch=amd64",
			"--log-format", "text", "--log-level", "info")
		cmd.Env = append(os.Environ(), "HOME="+filepath.Join(o.dir, "home"))
		pr, err := ps.start(a.host, cmd, a.log, nil)
		if err != nil {
			return err
		}
		a.proc = pr
	}
	for _, a := range hosts {
		if err := waitListening(a.addr, a.proc); err != nil {
			return fmt.Errorf("agent %s: %w\n%s", a.host, err, tail(a.log, 20))
		}
	}
	return ctx.Err()
}

// waitListening waits (30 s at most) until addr accepts connections, or the
// process pr exits.
func waitListening(addr string, pr *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if pr.exited() {
			return fmt.Errorf("exited before it listened on %s: %v", addr, pr.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s within 30 s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last n lines of file.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var client = &http.Client{Timeout: 5 * time.Second}

// status fetches the agent's status document.
func (a *agent) status(ctx context.Context) (*status.Document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /status: %s", a.host, resp.Status)
	}
	var doc status.Document
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s /status: %w", a.host, err)
	}
	return &doc, nil
}

// trigger asks the agent for a run now (POST /trigger).
func (a *agent) trigger(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.addr+"/trigger", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s /trigger: %s", a.host, resp.Status)
	}
	return nil
}

// fetches is the agent's cairn_git_fetch_total, from its /metrics: all of
// them, and those with result "error".
func (a *agent) fetches(ctx context.Context) (all, failed float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cairn_git_fetch_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s /metrics: %q: %w", a.host, line, err)
		}
		all += v
		if strings.Contains(line, `result="error"`) {
			failed += v
		}
	}
	return all, failed, sc.Err()
}

// rss is the agent process's resident set size (VmRSS), in bytes.
func (a *agent) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.proc.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// describe says where a host is, for an error message.
func describe(doc *status.Document) string {
	if doc == nil {
		return "no status"
	}
	applied, target := "none", "none"
	if doc.Applied != nil {
		applied = short(doc.Applied.Commit)
	}
	if doc.Target != nil {
		target = short(doc.Target.Commit)
	}
	s := fmt.Sprintf("state %s, applied %s, target %s, converged %v", doc.State, applied, target, doc.Converged)
	if doc.LastRun != nil {
		s += ", last run " + doc.LastRun.Result
		if doc.LastRun.Error != "" {
			s += ": " + doc.LastRun.Error
		}
	}
	return s
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// appliedCommit is the host's applied commit, "" before its first move.
func appliedCommit(doc *status.Document) string {
	if doc.Applied == nil {
		return ""
	}
	return doc.Applied.Commit
}

// waitAll polls every host's /status every poll until cond holds for it
// (once it has, the host is not polled again), for at most timeout. It
// returns when each host's cond first held; the error names the hosts for
// which it never did and where they are.
func waitAll(ctx context.Context, hosts []*agent, poll, timeout time.Duration, what string, cond func(*agent, *status.Document) bool) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	reached := map[string]time.Time{}
	last := map[string]string{}
	var wg sync.WaitGroup
	for _, a := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(poll)
			defer tick.Stop()
			for {
				doc, err := a.status(ctx)
				now := time.Now()
				mu.Lock()
				if err == nil && cond(a, doc) {
					reached[a.host] = now
					mu.Unlock()
					return
				}
				if err != nil && ctx.Err() == nil {
					last[a.host] = err.Error()
				} else if err == nil {
					last[a.host] = describe(doc)
				}
				mu.Unlock()
				if a.proc.exited() {
					mu.Lock()
					last[a.host] = fmt.Sprintf("the agent exited: %v\n%s", a.proc.err, tail(a.log, 10))
					mu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	if len(reached) == len(hosts) {
		return reached, nil
	}
	var missing []string
	for _, a := range hosts {
		if _, ok := reached[a.host]; !ok {
			missing = append(missing, fmt.Sprintf("  %s: %s", a.host, last[a.host]))
		}
	}
	slices.Sort(missing)
	if len(missing) > 10 {
		missing = append(missing[:10], fmt.Sprintf("  ... and %d more", len(missing)-10))
	}
	return reached, fmt.Errorf("%d of %d hosts did not reach %s within %v:\n%s", len(hosts)-len(reached), len(hosts), what, timeout, strings.Join(missing, "\n"))
}
