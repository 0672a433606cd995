package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The fleet's configuration: three groups by host name, a few files under
// /etc/fleet and /etc/motd, and a CHECK that /etc/fleet/health says ok.
// canary follows its own branch; web and db have no branch and so follow
// the control branch, main. Everything is beneath each agent's --root.
const hostsCairn = `# The simulated fleet: which host is in which group. web and db follow the
# control branch (main); the canaries take every commit of branch canary first.
hosts {
  group "canary" {
    match  = ["canary-*"]
    branch = "canary"
  }
  group "web" {
    match = ["web-*"]
  }
  group "db" {
    match = ["db-*"]
  }
}
`

const mainCairn = `# What every host of the simulated fleet gets, beneath its --root.
dir "/etc/fleet" {}

file "/etc/motd" {
  content = "${fact.hostname}: group ${fact.group}, managed by cairn\n"
}

file "/etc/fleet/release" {
  source = "files/release"
}

file "/etc/fleet/health" {
  source = "files/health"
}

file "/etc/fleet/role" {
  content = "${fact.group}\n"
  mode    = "0640"
}

# A move that breaks health is undone (and reported) by the host itself.
check "health" {
  command  = "grep -qx 'status=ok' \"$CAIRN_ROOT/etc/fleet/health\""
  timeout  = "2s"
  interval = "500ms"
}
`

// repo is the operator's side of the configuration repository: a work tree
// whose commits git signs with a throw-away SSH key, the bare repository
// the agents fetch from (served by git daemon), and the allowed-signers
// file the agents trust.
type repo struct {
	dir     string   // the scratch directory it all lives in
	work    string   // the operator's clone
	bare    string   // the served repository
	trust   string   // the allowed-signers file
	env     []string // git's environment: no user or system configuration
	url     string   // git://127.0.0.1:PORT/fleet.git once served
	gitAddr string   // 127.0.0.1:PORT of git daemon
	daemon  *proc    // git daemon
}

// newRepo makes the key, the bare repository and the work tree in dir.
func newRepo(dir string) (*repo, error) {
	r := &repo{dir: dir, work: filepath.Join(dir, "work"), bare: filepath.Join(dir, "srv", "fleet.git"),
		trust: filepath.Join(dir, "allowed_signers")}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	r.env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	key := filepath.Join(dir, "signing_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@fleet", "-f", key).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.trust, fmt.Appendf(nil, "ops@fleet namespaces=\"git\" %s", pub), 0o644); err != nil {
		return nil, err
	}
	if _, err := r.git("", "init", "-q", "--bare", "-b", "main", r.bare); err != nil {
		return nil, err
	}
	if _, err := r.git("", "init", "-q", "-b", "main", r.work); err != nil {
		return nil, err
	}
	for _, kv := range [][2]string{
		{"user.name", "Ops"}, {"user.email", "ops@fleet"}, {"gpg.format", "ssh"},
		{"user.signingkey", key}, {"gpg.ssh.allowedSignersFile", r.trust}, {"commit.gpgsign", "true"},
	} {
		if _, err := r.git(r.work, "config", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if _, err := r.git(r.work, "remote", "add", "origin", r.bare); err != nil {
		return nil, err
	}
	return r, nil
}

// git runs git in dir ("" for the current directory) and returns its
// output, trimmed.
func (r *repo) git(dir string, args ...string) (string, error) {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// write writes files (path relative to the work tree → content).
func (r *repo) write(files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// commit writes files into the work tree and commits them on its one
// branch, signed, with message msg; it returns the commit. The operator's
// history is a line: what reaches which served branch is up to push.
func (r *repo) commit(files map[string]string, msg string) (string, error) {
	if err := r.write(files); err != nil {
		return "", err
	}
	if _, err := r.git(r.work, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := r.git(r.work, "commit", "-q", "-S", "-m", msg); err != nil {
		return "", err
	}
	return r.git(r.work, "rev-parse", "HEAD")
}

// push pushes commit to each of branches of the served repository in one
// atomic push.
func (r *repo) push(commit string, branches ...string) error {
	args := []string{"push", "-q", "--atomic", "origin"}
	for _, b := range branches {
		args = append(args, commit+":refs/heads/"+b)
	}
	_, err := r.git(r.work, args...)
	return err
}

// tip returns the served repository's tip of branch.
func (r *repo) tip(branch string) (string, error) {
	return r.git(r.bare, "rev-parse", "refs/heads/"+branch)
}

// serve runs git daemon on a free loopback port for the bare repository,
// in cgroup cg (nil: none), and sets r.url.
func (r *repo) serve(ps *procs, cg *cgroup) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.gitAddr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(r.gitAddr)
	base := filepath.Dir(r.bare)
	// receive-pack too: cairn promote pushes to the URL the agents fetch
	// from. --max-connections 0: no limit, a hundred agents may fetch at
	// once after a trigger.
	// git-daemon itself, not git's wrapper, so that /proc/PID/stat is the
	// daemon's (with what it reaped) where there is no cgroup.
	execPath, err := r.git("", "--exec-path")
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(execPath, "git-daemon"), "--export-all", "--enable=receive-pack", "--base-path="+base,
		"--reuseaddr", "--listen=127.0.0.1", "--port="+port, "--max-connections=0", "--informative-errors", base)
	cmd.Env = r.env
	r.daemon, err = ps.start("git daemon", cmd, filepath.Join(r.dir, "git-daemon.log"), cg)
	if err != nil {
		return err
	}
	if err := waitListening(r.gitAddr, r.daemon); err != nil {
		return fmt.Errorf("git daemon: %w", err)
	}
	r.url = fmt.Sprintf("git://%s/%s", r.gitAddr, filepath.Base(r.bare))
	return nil
}
