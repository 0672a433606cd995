package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// transports serve an upstream and return the URL to fetch it from, the
// options that go with it, and (for HTTP) the log of requests.
var transports = []struct {
	name  string
	serve func(t *testing.T, u *upstream) (string, mirror.Options, *gittest.Requests)
}{
	{"path", func(t *testing.T, u *upstream) (string, mirror.Options, *gittest.Requests) {
		return u.work, mirror.Options{}, nil // a work tree, read through its .git
	}},
	{"file", func(t *testing.T, u *upstream) (string, mirror.Options, *gittest.Requests) {
		return "file://" + u.bare, mirror.Options{}, nil
	}},
	{"git", func(t *testing.T, u *upstream) (string, mirror.Options, *gittest.Requests) {
		return gittest.ServeDaemon(t, u.bare), mirror.Options{}, nil
	}},
	{"http", func(t *testing.T, u *upstream) (string, mirror.Options, *gittest.Requests) {
		url, log := gittest.ServeHTTP(t, u.bare)
		return url, mirror.Options{}, log
	}},
	{"ssh", func(t *testing.T, u *upstream) (string, mirror.Options, *gittest.Requests) {
		url, key, knownHosts := gittest.ServeSSH(t, u.bare)
		return url, mirror.Options{SSHKey: key, KnownHosts: knownHosts}, nil
	}},
}

// packs returns the names of the pack files in a bare repository.
func packs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fetch(t *testing.T, m *mirror.Mirror, branches ...string) map[string]plumbing.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tips, err := m.Fetch(ctx, branches...)
	if err != nil {
		t.Fatalf("Fetch(%v): %v", branches, err)
	}
	return tips
}

func wantTip(t *testing.T, tips map[string]plumbing.Hash, branch, want string) {
	t.Helper()
	if got := tips[branch].String(); got != want {
		t.Errorf("tip of %s = %s, want %s", branch, got, want)
	}
}

func ancestor(t *testing.T, m *mirror.Mirror, a, c string, want bool) {
	t.Helper()
	got, err := m.IsAncestor(plumbing.NewHash(a), plumbing.NewHash(c))
	if err != nil {
		t.Fatalf("IsAncestor(%.7s, %.7s): %v", a, c, err)
	}
	if got != want {
		t.Errorf("IsAncestor(%.7s, %.7s) = %v, want %v", a, c, got, want)
	}
}

// wantRequests checks the requests an HTTP fetch made.
func wantRequests(t *testing.T, log *gittest.Requests, want ...string) {
	t.Helper()
	if log == nil {
		return
	}
	if got := log.Take(); !slices.Equal(got, want) {
		t.Errorf("HTTP requests:\n got %q\nwant %q", got, want)
	}
}

const (
	infoRefs   = "GET /repo.git/info/refs?service=git-upload-pack"
	uploadPack = "POST /repo.git/git-upload-pack"
)

func TestFetchOverEachTransport(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			c1 := u.commit(t, "one")
			git(t, u.work, "branch", "canary")
			u.push(t)
			url, opts, log := tc.serve(t, u)
			dir := filepath.Join(t.TempDir(), "state", "git")
			m, err := mirror.Open(dir, url, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("mirror directory: %v, %v; want mode 0700", fi.Mode(), err)
			}
			if m.Dir() != dir {
				t.Errorf("Dir() = %q, want %q", m.Dir(), dir)
			}

			// The first fetch brings the commit, readable through gitfs.
			wantTip(t, fetch(t, m, "main"), "main", c1)
			wantRequests(t, log, infoRefs, uploadPack)
			r, err := gitfs.Open(m.Dir())
			if err != nil {
				t.Fatal(err)
			}
			fsys, _, err := r.FS(c1)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := fs.ReadFile(fsys, "site.cairn"); err != nil || !strings.Contains(string(b), "one") {
				t.Errorf("site.cairn at the fetched commit: %q, %v", b, err)
			}
			r.Close()

			// A fetch that finds the tip unchanged: one advertisement, no pack.
			before := packs(t, dir)
			wantTip(t, fetch(t, m, "main"), "main", c1)
			wantRequests(t, log, infoRefs)
			if after := packs(t, dir); !slices.Equal(before, after) {
				t.Errorf("an unchanged fetch wrote packs: %v, then %v", before, after)
			}

			// A new commit; two branches in one fetch.
			c2 := u.commit(t, "two")
			u.push(t)
			tips := fetch(t, m, "main", "canary")
			wantTip(t, tips, "main", c2)
			wantTip(t, tips, "canary", c1)
			wantRequests(t, log, infoRefs, uploadPack)
			ancestor(t, m, c1, c2, true)
			ancestor(t, m, c2, c1, false)
			ancestor(t, m, c2, c2, true)

			// A force-push: the mirror follows, and keeps the old commit.
			git(t, u.work, "reset", "-q", "--hard", c1)
			c3 := u.commit(t, "three, rewritten")
			u.push(t)
			wantTip(t, fetch(t, m, "main"), "main", c3)
			wantRequests(t, log, infoRefs, uploadPack)
			ancestor(t, m, c2, c3, false)
			ancestor(t, m, c1, c3, true)
			if c, err := m.Commit(plumbing.NewHash(c2)); err != nil || !strings.Contains(c.Message, "two") {
				t.Errorf("the commit left by the force-push: %v, %v", c, err)
			}
			if h, err := m.Resolve("main"); err != nil || h.String() != c3 {
				t.Errorf("Resolve(main) = %s, %v; want %s", h, err, c3)
			}

			// A missing branch fails the fetch, names the branch and the
			// URL, and changes nothing.
			c4 := u.commit(t, "four")
			u.push(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = m.Fetch(ctx, "main", "nope")
			if !errors.Is(err, mirror.ErrNoBranch) {
				t.Fatalf("Fetch(main, nope) = %v, want ErrNoBranch", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `"nope"`) || !strings.Contains(msg, url) {
				t.Errorf("error %q does not name the branch and %s", msg, url)
			}
			wantRequests(t, log, infoRefs)
			if h, err := m.Resolve("main"); err != nil || h.String() != c3 {
				t.Errorf("after a failed fetch, main = %s, %v; want %s still", h, err, c3)
			}
			wantTip(t, fetch(t, m, "main"), "main", c4)

			// A repository that is not there: the error names it.
			missing := strings.Replace(url, "repo.git", "missing.git", 1)
			if missing == url {
				missing += "-missing"
			}
			m2, err := mirror.Open(t.TempDir(), missing, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Close()
			if _, err := m2.Fetch(ctx, "main"); err == nil || !strings.Contains(err.Error(), missing) {
				t.Errorf("Fetch from %s = %v, want an error naming it", missing, err)
			} else {
				t.Logf("Fetch from a missing repository: %v", err)
			}
		})
	}
}

func TestCancelAndTimeout(t *testing.T) {
	keys := t.TempDir()
	gittest.SSHKeygen(t, filepath.Join(keys, "user_key"))
	hostPub := gittest.SSHKeygen(t, filepath.Join(keys, "host_key"))
	for _, scheme := range []string{"git", "http", "ssh"} {
		t.Run(scheme, func(t *testing.T) {
			addr := stalledServer(t)
			url := fmt.Sprintf("%s://%s/repo.git", scheme, addr)
			opts := mirror.Options{SSHKey: filepath.Join(keys, "user_key"), KnownHosts: filepath.Join(t.TempDir(), "known_hosts")}
			if err := os.WriteFile(opts.KnownHosts, []byte(gittest.KnownHostsLine(addr, hostPub)), 0o600); err != nil {
				t.Fatal(err)
			}

			t.Run("cancel", func(t *testing.T) {
				opts := opts
				opts.Timeout = time.Hour
				m, err := mirror.Open(t.TempDir(), url, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				start := time.Now()
				_, err = m.Fetch(ctx, "main")
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("Fetch returned %v after it was cancelled", took-300*time.Millisecond)
				}
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Fetch from a stalled server, cancelled = %v, want context.Canceled", err)
				}
			})

			t.Run("timeout", func(t *testing.T) {
				opts := opts
				opts.Timeout = 500 * time.Millisecond
				m, err := mirror.Open(t.TempDir(), url, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				start := time.Now()
				err = m.FetchAll(ctx)
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("FetchAll from a stalled server took %v with a timeout of %v", took, opts.Timeout)
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), addr) {
					t.Errorf("FetchAll from a stalled server = %v, want a timeout naming %s", err, addr)
				}
			})
		})
	}
}

func TestCredentialsNeverShown(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit(t, "one")
	u.push(t)
	url, _ := gittest.ServeHTTP(t, u.bare)
	// The same server, behind basic authentication.
	backend := strings.TrimSuffix(url, "/repo.git")
	authed := authProxy(t, backend, "alice", "s3cret-token")
	var logs bytes.Buffer
	opts := mirror.Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	dir := t.TempDir()

	m, err := mirror.Open(dir, strings.Replace(authed, "://", "://alice:s3cret-token@", 1)+"/repo.git", opts)
	if err != nil {
		t.Fatal(err)
	}
	wantTip(t, fetch(t, m, "main"), "main", c1) // the credentials were sent
	m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []string
	for _, bad := range []string{
		strings.Replace(authed, "://", "://alice:s3cret-token@", 1) + "/missing.git", // 404
		strings.Replace(authed, "://", "://alice:wrong-s3cret@", 1) + "/repo.git",    // 401
		strings.Replace(authed, "://", "://s3cret-token@", 1) + "/repo.git",          // a token as user
	} {
		m, err := mirror.Open(dir, bad, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Fetch(ctx, "main")
		if err == nil {
			t.Errorf("Fetch from %s succeeded", bad)
			continue
		}
		errs = append(errs, err.Error())
		m.Close()
	}
	_, err = mirror.Open(dir, "ftp://alice:s3cret-token@example.com/repo.git", opts)
	if !errors.Is(err, mirror.ErrUnsupportedURL) {
		t.Errorf("Open(ftp://...) = %v, want ErrUnsupportedURL", err)
	}
	errs = append(errs, fmt.Sprint(err))
	config, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"errors": strings.Join(errs, "\n"), "logs": logs.String(), "config": string(config)} {
		if strings.Contains(text, "s3cret") || strings.Contains(text, "alice") {
			t.Errorf("the %s show credentials:\n%s", what, text)
		}
	}
	if !strings.Contains(errs[0], "xxxxx@127.0.0.1") || !strings.Contains(errs[len(errs)-1], "ftp://xxxxx") && !strings.Contains(errs[len(errs)-1], "alice:xxxxx") {
		t.Errorf("errors do not show the redacted URL:\n%s", strings.Join(errs, "\n"))
	}
}

// authProxy serves the backend at target behind HTTP basic authentication
// and returns its URL.
func authProxy(t *testing.T, target, user, password string) string {
	t.Helper()
	tu, err := neturl.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(tu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestOpen(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit(t, "one")
	u.push(t)
	dir := filepath.Join(t.TempDir(), "git")
	m, err := mirror.Open(dir, u.bare, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, m, "main")
	m.Close()

	// The same repository, named otherwise: still the same mirror.
	m, err = mirror.Open(dir, "file://"+u.bare, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := m.Resolve("main"); err != nil || h.String() != c1 {
		t.Errorf("reopened, Resolve(main) = %s, %v; want %s", h, err, c1)
	}
	m.Close()

	// Another repository: re-pointed, branches dropped, objects kept.
	other := newUpstream(t)
	o1 := other.commit(t, "other")
	other.push(t)
	var logs bytes.Buffer
	m, err = mirror.Open(dir, other.bare, mirror.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if h, err := m.Resolve("main"); !errors.Is(err, mirror.ErrUnknownRevision) {
		t.Errorf("re-pointed, Resolve(main) = %s, %v; want ErrUnknownRevision", h, err)
	}
	if _, err := m.Commit(plumbing.NewHash(c1)); err != nil {
		t.Errorf("re-pointed, the commit fetched before is gone: %v", err)
	}
	if !strings.Contains(logs.String(), "re-pointed") {
		t.Errorf("re-pointing was not logged: %q", logs.String())
	}
	wantTip(t, fetch(t, m, "main"), "main", o1)
	ancestor(t, m, c1, o1, false)

	// A directory that holds something else is refused.
	junk := t.TempDir()
	if err := os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mirror.Open(junk, u.bare, mirror.Options{}); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("Open of a directory holding other files = %v, want an error naming it", err)
	}
}

func TestResolveAndFetchAll(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit(t, "one")
	git(t, u.work, "tag", "light")
	git(t, u.work, "tag", "-a", "-m", "release", "v1.0")
	git(t, u.work, "branch", "old")
	c2 := u.commit(t, "two")
	u.push(t)
	m, err := mirror.Open(t.TempDir(), "file://"+u.bare, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if err := m.FetchAll(ctx); err != nil {
		t.Fatal(err)
	}
	for rev, want := range map[string]string{
		"main": c2, "old": c1, "light": c1, "v1.0": c1, c1: c1, c2[:7]: c2, "main~1": c1,
		"refs/heads/main": c2, "refs/tags/v1.0": c1,
	} {
		if h, err := m.Resolve(rev); err != nil || h.String() != want {
			t.Errorf("Resolve(%q) = %s, %v; want %s", rev, h, err, want)
		}
	}
	for _, rev := range []string{"nope", "0123456789012345678901234567890123456789", "deadbee"} {
		if _, err := m.Resolve(rev); !errors.Is(err, mirror.ErrUnknownRevision) || !strings.Contains(err.Error(), rev) {
			t.Errorf("Resolve(%q) = %v, want ErrUnknownRevision naming it", rev, err)
		}
	}

	// A branch and a tag deleted upstream go; their commits stay.
	git(t, u.bare, "branch", "-D", "old")
	git(t, u.bare, "tag", "-d", "light")
	if err := m.FetchAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"old", "light"} {
		if _, err := m.Resolve(rev); !errors.Is(err, mirror.ErrUnknownRevision) {
			t.Errorf("after deletion upstream, Resolve(%q) = %v, want ErrUnknownRevision", rev, err)
		}
	}
	if h, err := m.Resolve(c1[:10]); err != nil || h.String() != c1 {
		t.Errorf("Resolve(%.10s) = %s, %v", c1, h, err)
	}
	if _, err := m.Fetch(ctx, "bad..name"); err == nil {
		t.Errorf("Fetch(bad..name) succeeded")
	}
}

// TestLongHistory checks, on a history of many commits with merges, that
// IsAncestor is exact and fast, and that a local fetch of one new commit
// does not walk the whole history.
func TestLongHistory(t *testing.T) {
	const n = 10000
	u := newUpstream(t)
	// main: 1..n in a line; side: from 1, one commit, merged into main at
	// 100 as the second parent; lone: from 1, never merged.
	var b strings.Builder
	commit := func(branch string, mark, when int, from ...int) {
		fmt.Fprintf(&b, "commit refs/heads/%s\nmark :%d\ncommitter T <t@example.com> %d +0000\ndata <<END\nc%d\nEND\n",
			branch, mark, 1700000000+when*60, mark)
		for i, f := range from {
			fmt.Fprintf(&b, "%s :%d\n", []string{"from", "merge"}[min(i, 1)], f)
		}
		b.WriteString("\n")
	}
	for i := 1; i <= n; i++ {
		switch {
		case i == 1:
			commit("main", 1, 1)
			commit("side", n+1, 2, 1)
			commit("lone", n+2, 3, 1)
		case i == 100:
			commit("main", i, i, i-1, n+1)
		default:
			commit("main", i, i, i-1)
		}
	}
	fastImport(t, u.bare, b.String())
	m, err := mirror.Open(t.TempDir(), u.bare, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tips := fetch(t, m, "main", "side", "lone")
	root, err := m.Resolve(fmt.Sprintf("main~%d", n-1))
	if err != nil {
		t.Fatal(err)
	}
	near, err := m.Resolve("main~3")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		anc, commit plumbing.Hash
		want        bool
		max         time.Duration
	}{
		{"near", near, tips["main"], true, 50 * time.Millisecond},
		{"root", root, tips["main"], true, 10 * time.Second},
		{"merged side branch", tips["side"], tips["main"], true, 10 * time.Second},
		{"never merged", tips["lone"], tips["main"], false, 10 * time.Second},
		{"backwards", tips["main"], root, false, 50 * time.Millisecond},
	} {
		start := time.Now()
		got, err := m.IsAncestor(c.anc, c.commit)
		took := time.Since(start)
		if err != nil || got != c.want {
			t.Errorf("%s: IsAncestor = %v, %v; want %v", c.name, got, err, c.want)
		}
		if took > c.max {
			t.Errorf("%s: IsAncestor took %v, more than %v", c.name, took, c.max)
		}
		t.Logf("IsAncestor, %s: %v", c.name, took)
	}
	if _, err := m.IsAncestor(plumbing.NewHash("0123456789012345678901234567890123456789"), tips["main"]); err == nil {
		t.Errorf("IsAncestor of a missing commit succeeded")
	}

	// One more commit: the local fetch sends it alone.
	fastImport(t, u.bare, fmt.Sprintf("commit refs/heads/main\ncommitter T <t@example.com> 1800000000 +0000\ndata 4\nnew\nfrom %s\n\n", tips["main"]))
	start := time.Now()
	next := fetch(t, m, "main")
	if took := time.Since(start); took > time.Second {
		t.Errorf("fetching one new commit on a history of %d took %v", n, took)
	}
	if c, err := m.Commit(next["main"]); err != nil || c.Message != "new\n" || c.ParentHashes[0] != tips["main"] {
		t.Errorf("the new commit: %v, %v", c, err)
	}
}

// fastImport runs git fast-import in the repository dir with stream as input.
func fastImport(t *testing.T, dir, stream string) {
	t.Helper()
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = gittest.Environ()
	cmd.Stdin = strings.NewReader(stream)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
}

// TestSSHHostKeys checks that ssh host keys are always checked, and that
// the key and known hosts file default to ~/.ssh.
func TestSSHHostKeys(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit(t, "one")
	u.push(t)
	url, key, knownHosts := gittest.ServeSSH(t, u.bare)
	addr := strings.TrimPrefix(strings.TrimSuffix(url, u.bare), "ssh://root@")
	keys := t.TempDir()
	otherHost := gittest.SSHKeygen(t, filepath.Join(keys, "other"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for name, c := range map[string]struct {
		knownHosts []byte
		want       string
	}{
		"unknown host": {[]byte("# nothing\n"), "is not in"},
		"wrong key":    {[]byte(gittest.KnownHostsLine(addr, otherHost)), "host key"},
	} {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, c.knownHosts, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := mirror.Open(t.TempDir(), url, mirror.Options{SSHKey: key, KnownHosts: kh})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Fetch(ctx, "main")
		m.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), url) {
			t.Errorf("%s: Fetch = %v, want an error naming %s and saying %q", name, err, url, c.want)
		}
	}

	// No key and no known hosts given: ~/.ssh/id_ed25519 and
	// ~/.ssh/known_hosts.
	home := t.TempDir()
	dotSSH := filepath.Join(home, ".ssh")
	if err := os.Mkdir(dotSSH, 0o700); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{key: "id_ed25519", knownHosts: "known_hosts"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dotSSH, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", home)
	m, err := mirror.Open(t.TempDir(), url, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	wantTip(t, fetch(t, m, "main"), "main", c1)
}
