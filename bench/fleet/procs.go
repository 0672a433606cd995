package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts the fleet's processes, each in a process group of its own
// (so that what it starts, git daemon's upload-packs or a CHECK's shell,
// goes with it), and stops them all: SIGTERM to every group, then SIGKILL to
// the groups still there after a grace period. A child also gets SIGKILL if
// this program dies without stopping it (Pdeathsig).
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// proc is one started process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit, once done is closed
}

// start starts cmd, named name in errors, with its output going to logFile,
// in cgroup cg (nil: this program's): it starts there, so that what it
// forks at once (git's wrapper runs git-daemon) is counted too.
func (p *procs) start(name string, cmd *exec.Cmd, logFile string, cg *cgroup) (*proc, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cg != nil {
		dir, err := os.Open(cg.dir)
		if err != nil {
			return nil, err
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		close(pr.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
	return pr, nil
}

// exited reports whether the process has exited.
func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// stopAll stops every process started, within grace for SIGTERM and then
// with SIGKILL, and waits for them. It returns the names of those that
// needed SIGKILL.
func (p *procs) stopAll(grace time.Duration) []string {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for _, pr := range list {
		if !pr.exited() {
			_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(grace)
	expired := false
	var killed []string
	for _, pr := range list {
		if !expired {
			select {
			case <-pr.done:
			case <-deadline:
				expired = true // no more waiting for the others
			}
		}
		if !pr.exited() {
			killed = append(killed, pr.name)
			_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
			<-pr.done
		}
		// The group may outlive its leader (a CHECK's child, an
		// upload-pack still sending): nothing of it may stay.
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
	}
	return killed
}

// cgroup is a cgroup v2 of this program's, for the git server: what its
// processes spent on the CPU is in cpu.stat.
type cgroup struct {
	dir string
}

// newCgroup makes a cgroup named name beneath the cgroup v2 hierarchy's
// root (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system).
func newCgroup(name string) (*cgroup, error) {
	root, err := cgroup2Root()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup for the git server: %w (run as root)", err)
	}
	return &cgroup{dir: dir}, nil
}

// cgroup2Root finds where the cgroup v2 hierarchy is mounted.
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return fields[1], nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (the git server's CPU is measured in one)")
}

// usage is the CPU time the cgroup's processes have used (usage_usec).
func (c *cgroup) usage() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", c.dir, err)
			}
			return time.Duration(n) * time.Microsecond, nil
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat has no usage_usec", c.dir)
}

// remove kills whatever is left in the cgroup and removes it.
func (c *cgroup) remove() error {
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0o644)
	var err error
	for range 50 {
		if err = os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}
