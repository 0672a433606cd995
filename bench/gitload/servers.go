package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroup is a cgroup v2 directory that a server and all its children run
// in, so that cpu.stat counts the CPU of the whole server: git daemon and
// the upload-packs it forks, or nginx, fcgiwrap and the git http-backend
// and upload-pack processes that fcgiwrap starts.
type cgroup struct {
	dir string
	fd  int
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted (the
// unified one of a hybrid layout too), or "" if it is not.
func cgroup2Mount() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE OPTS
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fs := strings.Fields(right); len(fs) > 0 && fs[0] == "cgroup2" {
			if f := strings.Fields(left); len(f) > 4 {
				return f[4]
			}
		}
	}
	return ""
}

// newCgroup makes a cgroup named name under the cgroup v2 mount.
func newCgroup(name string) (*cgroup, error) {
	mnt := cgroup2Mount()
	if mnt == "" {
		return nil, errors.New("no cgroup v2 hierarchy is mounted")
	}
	dir := filepath.Join(mnt, fmt.Sprintf("cairn-gitload-%d-%s", os.Getpid(), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return &cgroup{dir: dir, fd: fd}, nil
}

// usage returns the CPU time used in the cgroup so far.
func (c *cgroup) usage() (time.Duration, error) {
	if c == nil {
		return 0, errors.New("no cgroup")
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat has no usage_usec", c.dir)
}

// remove kills what is left in the cgroup (only processes this program
// started are in it) and removes it.
func (c *cgroup) remove() {
	if c == nil {
		return
	}
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0o644)
	_ = syscall.Close(c.fd)
	for range 50 {
		if err := os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitPort waits until something accepts connections on addr.
func waitPort(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// server is one git server under test, with the processes it runs.
type server struct {
	name  string // daemon, http, http-cache
	url   string // the repository's URL
	cg    *cgroup
	procs []*exec.Cmd
	// count returns how many requests the server has logged so far, by
	// kind: "connections" for git daemon; "GET info/refs", "POST
	// upload-pack", and for the cached one "backend" (requests that
	// reached git http-backend).
	count func() (map[string]int, error)
	// stop ends the server's processes and its cgroup (the two nginx
	// servers share both).
	stop func()
}

// start runs cmd in cg with its output to log.
func start(cmd *exec.Cmd, cg *cgroup, log string) error {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cg != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cg.fd
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", cmd.Path, err)
	}
	return nil
}

// stopAll ends the processes, each by its own process group, and the
// cgroup.
func stopAll(procs []*exec.Cmd, cg *cgroup) {
	for _, p := range procs {
		if p.Process != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	cg.remove()
}

// startDaemon runs git daemon on 127.0.0.1, exporting base, in a cgroup of
// its own (cg nil: none).
func startDaemon(ctx context.Context, work, base string, cg *cgroup) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	log := filepath.Join(work, "git-daemon.log")
	// --max-connections=0: no limit, so that the load generator's
	// concurrency is what bounds the load (git daemon's default is 32).
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--verbose", "--max-connections=0",
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--base-path="+base, base)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+work)
	if err := start(cmd, cg, log); err != nil {
		return nil, err
	}
	s := &server{name: "git daemon", url: fmt.Sprintf("git://127.0.0.1:%d/repo.git", port), cg: cg, procs: []*exec.Cmd{cmd}}
	s.stop = func() { stopAll(s.procs, s.cg) }
	s.count = func() (map[string]int, error) {
		b, err := os.ReadFile(log)
		if err != nil {
			return nil, err
		}
		n := map[string]int{}
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "Connection from ") {
				n["connections"]++
			}
			if strings.Contains(line, "Request upload-pack for ") {
				n["upload-pack"]++
			}
		}
		return n, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitPort(wctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		s.stop()
		return nil, fmt.Errorf("git daemon: %w", err)
	}
	return s, nil
}

// nginxConf is the configuration of the nginx under test: one server
// block hands every request to git http-backend through fcgiwrap, as
// operators deploy it; the next does the same but answers the ref
// advertisement from a cache for TTL; the last is the first over TLS.
// Its workers run as root, as fcgiwrap does here: in the work directory
// (mode 0700) that is simplest; a deployment runs both as www-data.
const nginxConf = `daemon off;
user root;
master_process on;
worker_processes 1;
pid {{W}}/nginx.pid;
error_log {{W}}/nginx-error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path {{W}}/tmp/body;
    proxy_temp_path {{W}}/tmp/proxy;
    fastcgi_temp_path {{W}}/tmp/fastcgi;
    uwsgi_temp_path {{W}}/tmp/uwsgi;
    scgi_temp_path {{W}}/tmp/scgi;
    log_format gitload '$request_method $request_uri $status $body_bytes_sent $upstream_cache_status';

    # The ref advertisement of every repository, for TTL.
    fastcgi_cache_path {{W}}/cache levels=1:2 keys_zone=gitrefs:1m max_size=16m inactive=1m use_temp_path=off;

    server {
        listen 127.0.0.1:{{PLAIN}};
        access_log {{W}}/plain.log gitload;
        location ~ ^/git(/.*)$ {
            client_max_body_size 0;
            {{BACKEND}}
        }
    }

    server {
        listen 127.0.0.1:{{CACHED}};
        access_log {{W}}/cached.log gitload;
        location ~ ^/git(/.*/info/refs)$ {
            {{BACKEND}}
            # git http-backend says no-cache; the cache keeps it TTL anyway.
            # The key holds the query (service=git-upload-pack) and the
            # credentials, so that no client sees an answer made for another.
            fastcgi_cache gitrefs;
            fastcgi_cache_key "$request_uri $http_authorization";
            fastcgi_cache_valid 200 {{TTL}};
            fastcgi_ignore_headers Cache-Control Expires Set-Cookie;
            # One request refreshes an expired entry; the others wait for it
            # (no stale answer past the TTL: a push is seen within it).
            fastcgi_cache_lock on;
        }
        location ~ ^/git(/.*)$ {
            client_max_body_size 0;
            {{BACKEND}}
        }
    }

    server {
        listen 127.0.0.1:{{TLS}} ssl;
        ssl_certificate {{W}}/server.crt;
        ssl_certificate_key {{W}}/server.key;
        access_log {{W}}/tls.log gitload;
        location ~ ^/git(/.*)$ {
            client_max_body_size 0;
            {{BACKEND}}
        }
    }
}
`

// nginxBackend hands a request to git http-backend, in nginxConf's
// locations whose $1 is the path in the repositories.
const nginxBackend = `include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT {{BASE}};
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param PATH_INFO $1;
            fastcgi_pass unix:{{W}}/fcgiwrap.sock;`

// startNginx runs nginx and fcgiwrap (with children fcgiwrap processes)
// in cg, and returns three servers: git http-backend behind nginx, the
// same with the ref advertisement cached for ttl, and the first over
// https, whose certificate is in WORK/nginx/server.crt.
func startNginx(ctx context.Context, work, base string, cg *cgroup, children int, ttl time.Duration) (plain, cached, tls *server, err error) {
	w := filepath.Join(work, "nginx")
	for _, d := range []string{"tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(w, d), 0o755); err != nil {
			return nil, nil, nil, err
		}
	}
	pPlain, err := freePort()
	if err != nil {
		return nil, nil, nil, err
	}
	pCached, err := freePort()
	if err != nil {
		return nil, nil, nil, err
	}
	pTLS, err := freePort()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := writeCert(w); err != nil {
		return nil, nil, nil, err
	}
	conf := strings.NewReplacer("{{BACKEND}}", nginxBackend).Replace(nginxConf)
	conf = strings.NewReplacer("{{W}}", w, "{{BASE}}", base, "{{PLAIN}}", strconv.Itoa(pPlain),
		"{{CACHED}}", strconv.Itoa(pCached), "{{TLS}}", strconv.Itoa(pTLS), "{{TTL}}", fmt.Sprintf("%ds", int(ttl.Seconds()))).Replace(conf)
	confPath := filepath.Join(w, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, nil, nil, err
	}
	sock := filepath.Join(w, "fcgiwrap.sock")
	fcgi := exec.Command("fcgiwrap", "-c", strconv.Itoa(children), "-s", "unix:"+sock)
	fcgi.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + work, "GIT_CONFIG_NOSYSTEM=1"}
	if err := start(fcgi, cg, filepath.Join(w, "fcgiwrap.log")); err != nil {
		return nil, nil, nil, err
	}
	ngx := exec.Command("nginx", "-c", confPath, "-p", w, "-e", filepath.Join(w, "nginx-error.log"))
	if err := start(ngx, cg, filepath.Join(w, "nginx.out")); err != nil {
		stopAll([]*exec.Cmd{fcgi}, cg)
		return nil, nil, nil, err
	}
	procs := []*exec.Cmd{ngx, fcgi}
	stop := func() { stopAll(procs, cg) }
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range []int{pPlain, pCached, pTLS} {
		if err := waitPort(wctx, fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
			stop()
			b, _ := os.ReadFile(filepath.Join(w, "nginx-error.log"))
			return nil, nil, nil, fmt.Errorf("nginx: %w\n%s", err, b)
		}
	}
	for range 100 { // fcgiwrap makes its socket when it is ready
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	counter := func(log string) func() (map[string]int, error) {
		return func() (map[string]int, error) {
			b, err := os.ReadFile(log)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			n := map[string]int{}
			for line := range strings.Lines(string(b)) {
				f := strings.Fields(line)
				if len(f) < 5 {
					continue
				}
				switch {
				case f[0] == "GET" && strings.Contains(f[1], "/info/refs"):
					n["GET info/refs"]++
					n["advertisement bytes"], _ = strconv.Atoi(f[3])
				case f[0] == "POST" && strings.HasSuffix(f[1], "/git-upload-pack"):
					n["POST upload-pack"]++
				default:
					n["other"]++
				}
				if f[2] != "200" {
					n["status "+f[2]]++
				}
				// "-": no cache involved; MISS, EXPIRED, UPDATING...: the
				// request reached git http-backend too.
				if f[4] != "HIT" {
					n["backend"]++
				}
			}
			return n, nil
		}
	}
	plain = &server{name: "nginx + fcgiwrap + git http-backend", url: fmt.Sprintf("http://127.0.0.1:%d/git/repo.git", pPlain),
		cg: cg, procs: procs, stop: stop, count: counter(filepath.Join(w, "plain.log"))}
	cached = &server{name: fmt.Sprintf("the same, info/refs cached %s", ttl), url: fmt.Sprintf("http://127.0.0.1:%d/git/repo.git", pCached),
		cg: cg, procs: procs, stop: stop, count: counter(filepath.Join(w, "cached.log"))}
	tls = &server{name: "the same over https", url: fmt.Sprintf("https://127.0.0.1:%d/git/repo.git", pTLS),
		cg: cg, procs: procs, stop: stop, count: counter(filepath.Join(w, "tls.log"))}
	return plain, cached, tls, nil
}

// writeCert writes server.crt and server.key into dir: a self-signed
// certificate for 127.0.0.1, valid for a day; the load generator trusts it
// through SSL_CERT_FILE.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "server.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
