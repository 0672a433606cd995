package gittest

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need skips the test when ok is false, or fails it when CI is "true": on
// CI every tool and server must be there.
func Need(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, but %s", why)
	}
	t.Skip(why)
}

// NeedTool skips (or on CI fails) the test unless the program is there:
// an absolute path that is executable, or a name on PATH.
func NeedTool(t testing.TB, name string) {
	t.Helper()
	if filepath.IsAbs(name) {
		fi, err := os.Stat(name)
		Need(t, err == nil && fi.Mode()&0o111 != 0, name+" is missing")
		return
	}
	_, err := exec.LookPath(name)
	Need(t, err == nil, name+" is not on PATH")
}

// ServeDaemon serves the repository dir (bare, or a work tree) with git
// daemon on a loopback port until the test ends, and returns its URL,
// git://127.0.0.1:PORT/NAME with NAME dir's base name. The daemon exports
// dir's parent directory, so that a sibling name makes a missing
// repository.
func ServeDaemon(t testing.TB, dir string) string {
	t.Helper()
	NeedTool(t, "git")
	base, name := filepath.Split(filepath.Clean(dir))
	port := freePort(t)
	cmd := exec.Command("git", "daemon", "--export-all", "--base-path="+base, "--reuseaddr",
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--informative-errors", base)
	cmd.Env = Environ()
	startServer(t, cmd, fmt.Sprintf("127.0.0.1:%d", port))
	return fmt.Sprintf("git://127.0.0.1:%d/%s", port, name)
}

// Requests is the log of the requests an HTTP server of [ServeHTTP] got,
// each as "METHOD /path?query".
type Requests struct {
	mu   sync.Mutex
	reqs []string
}

func (l *Requests) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, s)
}

// Take returns the requests logged since the last Take.
func (l *Requests) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// ServeHTTP serves the repository dir (bare, or a work tree) with git
// http-backend, run through net/http/cgi behind a loopback test server,
// until the test ends. It returns the repository's URL,
// http://127.0.0.1:PORT/NAME with NAME dir's base name (the server
// exports dir's parent directory), and the log of the requests made.
func ServeHTTP(t testing.TB, dir string) (string, *Requests) {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	NeedTool(t, backend)
	base, name := filepath.Split(filepath.Clean(dir))
	log := &Requests{}
	h := &cgi.Handler{Path: backend, Stderr: io.Discard, Env: append(Environ(), "GIT_PROJECT_ROOT="+base, "GIT_HTTP_EXPORT_ALL=1")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.Method + " " + r.URL.RequestURI())
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + name, log
}

// ServeSSH runs sshd on a loopback port until the test ends, letting root
// log in with a key made for it (so it needs root), and returns the URL of
// the repository dir, ssh://root@127.0.0.1:PORT/DIR, the client's private
// key file, and a known_hosts file that names the server's host key.
func ServeSSH(t testing.TB, dir string) (url, key, knownHosts string) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "sshd needs root (it logs in as root here)")
	NeedTool(t, "/usr/sbin/sshd")
	NeedTool(t, "ssh-keygen")
	NeedTool(t, "git-upload-pack")
	// sshd wants its privilege separation directory; the Debian service
	// makes it at start.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	hostPub := SSHKeygen(t, filepath.Join(tmp, "host_key"))
	userPub := SSHKeygen(t, filepath.Join(tmp, "user_key"))
	if err := os.WriteFile(filepath.Join(tmp, "authorized_keys"), []byte(userPub+"\n"), 0o600); err != nil {
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
`, port, filepath.Join(tmp, "host_key"), filepath.Join(tmp, "authorized_keys"), filepath.Join(tmp, "sshd.pid"))
	cfgFile := filepath.Join(tmp, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	startServer(t, exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfgFile), addr)
	knownHosts = filepath.Join(tmp, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(KnownHostsLine(addr, hostPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return "ssh://root@" + addr + abs, filepath.Join(tmp, "user_key"), knownHosts
}

// SSHKeygen makes an ed25519 key pair without a passphrase with ssh-keygen
// at path (and path.pub) and returns the public key, as an authorized_keys
// line ("ssh-ed25519 AAAA... test").
func SSHKeygen(t testing.TB, path string) string {
	t.Helper()
	NeedTool(t, "ssh-keygen")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// KnownHostsLine is a known_hosts line naming pub (an authorized_keys
// line) as the host key of addr (HOST:PORT), as ssh writes it: the host
// alone for port 22, else [HOST]:PORT.
func KnownHostsLine(addr, pub string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port != "22" {
		host = "[" + host + "]:" + port
	} else if err != nil {
		host = addr
	}
	f := strings.Fields(pub)
	if len(f) > 2 {
		f = f[:2] // no comment
	}
	return host + " " + strings.Join(f, " ") + "\n"
}

// FreeAddr returns a loopback address, 127.0.0.1:PORT, whose port was free
// a moment ago: for a server of the test's that takes its address as an
// argument (a Prometheus, a git daemon).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startServer starts cmd in its own process group, stops the group at the
// end of the test, and waits (at most 10 s) until something accepts
// connections on addr.
func startServer(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	var out Buffer
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

// Buffer is a buffer that a process writes (its stdout or stderr) while
// the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
