package mirror_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
)

// git runs git in dir with a fixed identity and no user configuration, and
// returns its trimmed output.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gittest.Run(t, dir, append([]string{"-c", "init.defaultBranch=main", "-c", "gc.auto=0"}, args...)...)
}

// upstream is a repository to fetch from: a work tree where commits are
// made, and a bare repository (served) that they are pushed to.
type upstream struct {
	work string // a work tree
	base string // the directory the servers export
	bare string // base/repo.git
	n    int    // commits made, for distinct contents and dates
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	gittest.NeedTool(t, "git")
	root := t.TempDir()
	u := &upstream{work: filepath.Join(root, "work"), base: filepath.Join(root, "srv")}
	u.bare = filepath.Join(u.base, "repo.git")
	for _, d := range []string{u.work, u.bare} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, u.bare, "init", "-q", "--bare")
	git(t, u.work, "init", "-q")
	git(t, u.work, "remote", "add", "origin", u.bare)
	return u
}

// commit writes site.cairn with a new content, commits it on the current
// branch and returns the commit's hash.
func (u *upstream) commit(t testing.TB, msg string) string {
	t.Helper()
	u.n++
	if err := os.WriteFile(filepath.Join(u.work, "site.cairn"), []byte(fmt.Sprintf("# %d %s\n", u.n, msg)), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, u.work, "add", "site.cairn")
	date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(u.n) * time.Minute).Format(time.RFC3339)
	cmd := exec.Command("git", "commit", "-q", "-m", msg)
	cmd.Dir = u.work
	cmd.Env = append(gittest.Environ(), "GIT_COMMITTER_DATE="+date, "GIT_AUTHOR_DATE="+date)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
	return git(t, u.work, "rev-parse", "HEAD")
}

// push force-pushes the work tree's branches and tags to the bare
// repository.
func (u *upstream) push(t testing.TB) {
	t.Helper()
	git(t, u.work, "push", "-q", "--force", "--all", "origin")
	git(t, u.work, "push", "-q", "--force", "--tags", "origin")
}

// stalledServer accepts TCP connections on a loopback port and never
// answers; it returns the address.
func stalledServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for { // ends when the listener is closed
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
