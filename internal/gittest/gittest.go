// Package gittest makes configuration repositories with the real git
// command for tests: a work tree in a temporary directory, commits written
// file by file on named branches, with a fixed author and no user or system
// git configuration.
//
// # Use
//
//  1. [New] makes an empty repository whose first branch is main.
//  2. [Repo.Commit] writes files on a branch (made from the current commit
//     when it does not exist) and commits them; it returns the hash.
//  3. [Repo.Git] runs any other git command in the work tree.
//
// To sign commits, [NewSSHSigner] or [NewGPGSigner] makes a key,
// [Repo.SignWith] makes git commit -S sign with it, and [TrustFile] writes
// the file that trusts it (cairn's --trust).
//
// To fetch a repository over the network, [ServeDaemon] (git://),
// [ServeHTTP] (http://, git http-backend) and [ServeSSH] (ssh://, sshd)
// serve it on a loopback port until the test ends.
//
// Tests that need git (or another tool) skip without it, unless CI is
// "true": then they fail.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Env is the environment git runs with: no user or system configuration,
// a fixed author and committer.
var Env = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
	"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org",
}

// Repo is a repository with a work tree.
type Repo struct {
	t testing.TB
	// Dir is the top of the work tree.
	Dir string
}

// New makes an empty repository in a temporary directory.
func New(t testing.TB) *Repo {
	t.Helper()
	NeedTool(t, "git")
	r := &Repo{t: t, Dir: t.TempDir()}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git with args in the work tree and returns its output, trimmed;
// a failure fails the test.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return Run(r.t, r.Dir, args...)
}

// Environ is the environment of this process without its GIT_ variables
// (a test run from a git hook has GIT_DIR, say), with Env.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, Env...)
}

// Run runs git with args in dir, with Environ.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files on branch and commits them, with extra arguments for
// git commit (-S to sign, say); a file whose content is "" is removed. It
// returns the commit's hash.
func (r *Repo) Commit(branch string, files map[string]string, commitArgs ...string) string {
	r.t.Helper()
	switch {
	case !r.hasHead():
		// The first commit: the branch is born with it.
		r.Git("symbolic-ref", "HEAD", "refs/heads/"+branch)
	case r.Git("branch", "--list", branch) == "":
		r.Git("branch", branch)
		fallthrough
	default:
		r.Git("checkout", "-q", branch)
	}
	for name, content := range files {
		p := filepath.Join(r.Dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "-A")
	r.Git(append([]string{"commit", "-q", "--allow-empty", "-m", "change on " + branch}, commitArgs...)...)
	return r.Git("rev-parse", "HEAD")
}

func (r *Repo) hasHead() bool {
	cmd := exec.Command("git", "rev-parse", "--verify", "-q", "HEAD")
	cmd.Dir = r.Dir
	cmd.Env = Environ()
	return cmd.Run() == nil
}
