package mirror_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// need skips the test when ok is false, or fails it when CI=true: on CI
// every server must be there.
func need(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, but %s", why)
	}
	t.Skip(why)
}

// needBinary skips (or on CI fails) the test when path is not executable.
func needBinary(t testing.TB, path string) {
	t.Helper()
	if filepath.IsAbs(path) {
		fi, err := os.Stat(path)
		need(t, err == nil && fi.Mode()&0o111 != 0, path+" is missing")
		return
	}
	_, err := exec.LookPath(path)
	need(t, err == nil, path+" is not on PATH")
}

// git runs git in dir with a fixed identity and no user configuration, and
// returns its trimmed output.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "init.defaultBranch=main", "-c", "gc.auto=0"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
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
	needBinary(t, "git")
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
	cmd.Env = append(gitEnv(), "GIT_COMMITTER_DATE="+date, "GIT_AUTHOR_DATE="+date)
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

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon starts cmd in its own process group, stops the group at the
// end of the test, and waits until something accepts connections on addr.
func startDaemon(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s said:\n%s", filepath.Base(cmd.Path), out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", cmd.Path, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v\n%s", cmd.Path, addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gitDaemon serves u over git:// and returns the repository's URL.
func gitDaemon(t testing.TB, u *upstream) string {
	t.Helper()
	needBinary(t, "git")
	port := freePort(t)
	cmd := exec.Command("git", "daemon", "--export-all", "--base-path="+u.base, "--reuseaddr",
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--informative-errors", u.base)
	cmd.Env = gitEnv()
	startDaemon(t, cmd, fmt.Sprintf("127.0.0.1:%d", port))
	return fmt.Sprintf("git://127.0.0.1:%d/repo.git", port)
}

// httpBackend serves u with git http-backend behind a test server and
// returns the repository's URL and the log of requests made to it.
func httpBackend(t testing.TB, u *upstream) (string, *requestLog) {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	needBinary(t, backend)
	log := &requestLog{}
	h := &cgi.Handler{Path: backend, Stderr: io.Discard, Env: append(gitEnv(), "GIT_PROJECT_ROOT="+u.base, "GIT_HTTP_EXPORT_ALL=1")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.Method + " " + r.URL.RequestURI())
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/repo.git", log
}

// requestLog records the requests a test server got.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, s)
}

// take returns the requests logged since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// sshServer is sshd on a loopback port, letting root log in with a test key.
type sshServer struct {
	addr       string // 127.0.0.1:port
	key        string // the client's private key file
	knownHosts string // a known_hosts file naming the server's host key
}

// keygen makes an ed25519 key pair with ssh-keygen at path (and path.pub)
// and returns the public key.
func keygen(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// startSSHD runs sshd on a loopback port with its own configuration.
func startSSHD(t testing.TB) *sshServer {
	t.Helper()
	need(t, os.Geteuid() == 0, "sshd needs root (it logs in as root here)")
	needBinary(t, "/usr/sbin/sshd")
	needBinary(t, "ssh-keygen")
	needBinary(t, "git-upload-pack")
	// sshd wants its privilege separation directory; the Debian service
	// makes it at start.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPub := keygen(t, filepath.Join(dir, "host_key"))
	userPub := keygen(t, filepath.Join(dir, "user_key"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	config := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers root
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfgFile), addr)
	s := &sshServer{addr: addr, key: filepath.Join(dir, "user_key"), knownHosts: filepath.Join(dir, "known_hosts")}
	if err := os.WriteFile(s.knownHosts, knownHostsLine(addr, hostPub), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// knownHostsLine is a known_hosts line naming key as the host key of addr.
func knownHostsLine(addr string, key ssh.PublicKey) []byte {
	return []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n")
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
