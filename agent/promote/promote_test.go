package promote_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/cairn-cm/cairn/agent/fleet"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/agent/promote"
	"github.com/cairn-cm/cairn/agent/trust"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// hosts: canary on its own branch, web and api sharing the control branch
// main, db on its own branch.
const hosts = `hosts {
  group "canary" {
    match  = ["canary-*"]
    branch = "canary"
  }
  group "web" {
    match = ["web-*"]
  }
  group "api" {
    match = ["api-*"]
  }
  group "db" {
    match  = ["db-*"]
    branch = "db"
  }
}
`

// fixture is a configuration repository served by a git server that
// accepts pushes.
type fixture struct {
	work *gittest.Repo
	bare string // the served repository
	url  string
	// base is the commit every branch starts at; canary is the canary
	// branch's tip, one commit ahead.
	base, canary string
}

// newFixture makes the repository and serves it with serve (gittest's
// ServeDaemon or ServeHTTP).
func newFixture(t *testing.T, serve func(t *testing.T, dir string) string) *fixture {
	t.Helper()
	f := &fixture{work: gittest.New(t)}
	f.base = f.work.Commit("main", map[string]string{"hosts.cairn": hosts, "main.cairn": "# base\n"})
	f.work.Git("branch", "db")
	f.canary = f.work.Commit("canary", map[string]string{"main.cairn": "# canary change\n"})
	f.bare = filepath.Join(t.TempDir(), "config.git")
	gittest.Run(t, f.work.Dir, "clone", "-q", "--bare", f.work.Dir, f.bare)
	gittest.Run(t, f.bare, "config", "daemon.receivepack", "true")
	gittest.Run(t, f.bare, "config", "http.receivepack", "true")
	f.url = serve(t, f.bare)
	return f
}

func daemon(t *testing.T, dir string) string { return gittest.ServeDaemon(t, dir) }
func httpBackend(t *testing.T, dir string) string {
	u, _ := gittest.ServeHTTP(t, dir)
	return u
}

// tip is a branch's tip on the server.
func (f *fixture) tip(t *testing.T, ref string) string {
	t.Helper()
	return gittest.Run(t, f.bare, "rev-parse", ref)
}

// hasRef reports whether the server has the reference.
func (f *fixture) hasRef(ref string) bool {
	cmd := exec.Command("git", "rev-parse", "-q", "--verify", ref)
	cmd.Dir = f.bare
	cmd.Env = gittest.Environ()
	return cmd.Run() == nil
}

// gate is a gate that passes (or not) and records what it was asked.
type gate struct {
	ok    bool
	asked []fleet.GateOptions
	// during runs while the gate is asked: a race.
	during func()
}

func (g *gate) check(_ context.Context, o fleet.GateOptions) (*fleet.Verdict, error) {
	g.asked = append(g.asked, o)
	if g.during != nil {
		g.during()
	}
	v := &fleet.Verdict{Group: o.Group, Commit: o.Commit, From: o.Now.Add(-o.Soak), To: o.Now, OK: g.ok,
		Hosts: []fleet.HostVerdict{{Host: "canary-01", Instance: "127.0.0.2:9100", OK: g.ok}}}
	if !g.ok {
		v.Hosts[0].Reasons = []string{"at commit 1a2b3c4d, not " + o.Commit[:8] + ", from 12:03:15Z"}
	}
	return v, nil
}

var when = time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)

func options(f *fixture, g *gate, from, to string) promote.Options {
	return promote.Options{
		Conn: promote.Conn{Repo: f.url, Branch: "main"},
		From: from, To: to, Soak: 10 * time.Minute, MinHosts: 1,
		Gate: g.check, Prometheus: "http://127.0.0.1:9090", By: "ops@admin-01",
		Now: func() time.Time { return when },
	}
}

// operator gives git an operator's configuration that signs with an ssh
// key, and returns the signer.
func operator(t *testing.T) *gittest.Signer {
	t.Helper()
	s := gittest.NewSSHSigner(t, "test@example.org")
	t.Setenv("GIT_CONFIG_GLOBAL", s.GlobalConfig(t))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return s
}

func TestPromote(t *testing.T) {
	for _, srv := range []struct {
		name  string
		serve func(*testing.T, string) string
	}{{"daemon", daemon}, {"http", httpBackend}} {
		t.Run(srv.name, func(t *testing.T) {
			f := newFixture(t, srv.serve)
			ctx := context.Background()
			g := &gate{ok: true}
			res, err := promote.Promote(ctx, options(f, g, "canary", "web"))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Promoted || res.Status != promote.StatusPromoted || !res.OK {
				t.Fatalf("result = %+v, want promoted", res)
			}
			if got := f.tip(t, "main"); got != f.canary {
				t.Errorf("main on the server = %s, want the canary tip %s", got, f.canary)
			}
			if strings.Join(res.To.Groups, ",") != "web,api" || res.To.Branch != "main" || res.To.Tip != f.base {
				t.Errorf("to = %+v, want web and api on main, at %s", res.To, f.base)
			}
			if !res.Atomic {
				t.Error("the branch and the note were not pushed atomically")
			}
			if len(g.asked) != 1 || g.asked[0].Group != "canary" || g.asked[0].Commit != f.canary || g.asked[0].Soak != 10*time.Minute {
				t.Errorf("the gate was asked %+v", g.asked)
			}
			note := gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary)
			for _, want := range []string{"cairn promote canary -> web", "commit: " + f.canary,
				"to: group web, branch main (groups on it: web, api), was " + f.base,
				"soak: 10m0s from 2026-12-03T17:50:00Z to 2026-12-03T18:00:00Z", "canary-01 127.0.0.2:9100",
				"prometheus: http://127.0.0.1:9090", "when: 2026-12-03T18:00:00Z", "by: ops@admin-01"} {
				if !strings.Contains(note, want) {
					t.Errorf("the note lacks %q:\n%s", want, note)
				}
			}
			if strings.TrimSpace(res.Note) != note {
				t.Errorf("result's note differs from the server's:\n%s\n---\n%s", res.Note, note)
			}

			// To db: the note is appended to.
			if res, err = promote.Promote(ctx, options(f, g, "canary", "db")); err != nil || !res.Promoted {
				t.Fatalf("canary -> db: %+v, %v", res, err)
			}
			note = gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary)
			if !strings.Contains(note, "canary -> web") || !strings.Contains(note, "canary -> db") {
				t.Errorf("the note after two promotions:\n%s", note)
			}

			// Again: nothing to do.
			res, err = promote.Promote(ctx, options(f, g, "canary", "api"))
			if err != nil || res.Status != promote.StatusUpToDate || !res.OK || res.Promoted {
				t.Errorf("promote again: %+v, %v; want up-to-date", res, err)
			}
		})
	}
}

func TestPromoteRefuses(t *testing.T) {
	f := newFixture(t, daemon)
	ctx := context.Background()

	t.Run("gate", func(t *testing.T) {
		res, err := promote.Promote(ctx, options(f, &gate{ok: false}, "canary", "db"))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK || res.Status != promote.StatusRefused || len(res.Reasons) == 0 ||
			!strings.Contains(strings.Join(res.Reasons, "\n"), "canary-01 (127.0.0.2:9100): at commit 1a2b3c4d") {
			t.Errorf("result = %+v, want refused with the host's reason", res)
		}
		if got := f.tip(t, "db"); got != f.base {
			t.Errorf("db moved to %s", got)
		}
	})

	t.Run("dry-run", func(t *testing.T) {
		o := options(f, &gate{ok: true}, "canary", "db")
		o.DryRun = true
		res, err := promote.Promote(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Promoted || res.Status != promote.StatusDryRun || !strings.Contains(res.Note, "canary -> db") {
			t.Errorf("result = %+v, want a dry run with the note", res)
		}
		if got := f.tip(t, "db"); got != f.base {
			t.Errorf("a dry run moved db to %s", got)
		}
		if f.hasRef(promote.NotesRef) {
			t.Error("a dry run pushed the notes")
		}
	})

	bad := []struct {
		name, from, to, want string
	}{
		{"unknown group", "canary", "wbe", `--to wbe: no such group in the hosts block at the tip of main (did you mean "web"?)`},
		{"same branch", "web", "api", "--from web and --to api both follow branch main"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			g := &gate{ok: true}
			_, err := promote.Promote(ctx, options(f, g, c.from, c.to))
			if !errors.Is(err, promote.ErrBadInput) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want bad input saying %q", err, c.want)
			}
			if len(g.asked) > 0 {
				t.Error("the gate was asked")
			}
		})
	}

	t.Run("no branch", func(t *testing.T) {
		gittest.Run(t, f.bare, "branch", "-D", "db")
		defer gittest.Run(t, f.bare, "branch", "db", f.base)
		_, err := promote.Promote(ctx, options(f, &gate{ok: true}, "canary", "db"))
		if !errors.Is(err, promote.ErrBadInput) || !strings.Contains(err.Error(), "--to db (db), which the hosts block names") {
			t.Errorf("error = %v, want bad input naming the missing branch", err)
		}
	})

	t.Run("race", func(t *testing.T) {
		// While the gate is asked, someone else pushes to db.
		other := filepath.Join(t.TempDir(), "other")
		gittest.Run(t, f.work.Dir, "clone", "-q", "-b", "db", f.bare, other)
		g := &gate{ok: true, during: func() {
			gittest.Run(t, other, "commit", "-q", "--allow-empty", "-m", "racing push")
			gittest.Run(t, other, "push", "-q", "origin", "db")
		}}
		_, err := promote.Promote(ctx, options(f, g, "canary", "db"))
		if !errors.Is(err, mirror.ErrStale) || !strings.Contains(err.Error(), "another push won the race") {
			t.Fatalf("error = %v, want a lost race", err)
		}
		if errors.Is(err, promote.ErrBadInput) {
			t.Error("a lost race is bad input")
		}
		if got, want := f.tip(t, "db"), gittest.Run(t, other, "rev-parse", "HEAD"); got != want {
			t.Errorf("db on the server = %s, want the racing push's %s", got, want)
		}
	})
}

// TestLockAndPromote locks a group that shares the control branch, sees
// promote refuse, unlocks it, and sees promote ask for a merge of the lock
// commits.
func TestLockAndPromote(t *testing.T) {
	signer := operator(t)
	f := newFixture(t, httpBackend)
	ctx := context.Background()
	lo := promote.LockOptions{Conn: promote.Conn{Repo: f.url}, Group: "api", Reason: "database migration until 20:00",
		Now: func() time.Time { return when }}
	lr, err := promote.LockGroup(ctx, lo)
	if err != nil {
		t.Fatal(err)
	}
	if !lr.Pushed || !lr.Locked || lr.Lock.By != "test <test@example.org>" || f.tip(t, "main") != lr.Commit {
		t.Fatalf("lock = %+v, server main %s", lr, f.tip(t, "main"))
	}
	file := gittest.Run(t, f.bare, "show", "main:.cairn/locks/api")
	if file != "reason: database migration until 20:00\nby: test <test@example.org>\nsince: 2026-12-03T18:00:00Z" {
		t.Errorf("lock file:\n%s", file)
	}
	verifySigned(t, f, signer, lr.Commit)

	// Locked twice, or a reason that is empty or two lines: refused.
	if _, err := promote.LockGroup(ctx, lo); !errors.Is(err, promote.ErrLockState) || !strings.Contains(err.Error(), "group api is locked by test <test@example.org> since 2026-12-03T18:00:00Z: database migration") {
		t.Errorf("lock again: %v", err)
	}
	for _, reason := range []string{" ", "two\nlines"} {
		o := lo
		o.Reason = reason
		if _, err := promote.LockGroup(ctx, o); !errors.Is(err, promote.ErrBadInput) {
			t.Errorf("reason %q: %v, want bad input", reason, err)
		}
	}

	// web shares main with api: refused, naming api's lock.
	g := &gate{ok: true}
	res, err := promote.Promote(ctx, options(f, g, "canary", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Status != promote.StatusLocked || len(res.Locks) != 1 || res.Locks[0].Group != "api" ||
		!strings.Contains(res.Reasons[0], "group api is locked by test <test@example.org> since 2026-12-03T18:00:00Z: database migration until 20:00") {
		t.Errorf("promote to a locked branch: %+v", res)
	}
	if len(g.asked) > 0 {
		t.Error("the gate was asked for a locked branch")
	}

	// Unlock, signed with --sign-key rather than the configuration.
	other := gittest.NewSSHSigner(t, "test@example.org")
	lo.SignKey = other.KeyFile
	ur, err := promote.UnlockGroup(ctx, lo)
	if err != nil {
		t.Fatal(err)
	}
	if ur.Locked || ur.Lock.Reason != "database migration until 20:00" || f.tip(t, "main") != ur.Commit {
		t.Errorf("unlock = %+v", ur)
	}
	verifySigned(t, f, other, ur.Commit)
	if _, err := promote.UnlockGroup(ctx, lo); !errors.Is(err, promote.ErrLockState) || !strings.Contains(err.Error(), "group api is not locked") {
		t.Errorf("unlock again: %v", err)
	}

	// main now has the lock and unlock commits, which canary lacks.
	_, err = promote.Promote(ctx, options(f, g, "canary", "web"))
	if !errors.Is(err, promote.ErrBadInput) {
		t.Fatalf("promote onto the lock commits: %v, want bad input", err)
	}
	for _, want := range []string{"branch main (groups web, api) is not an ancestor of branch canary", "2 commit(s)",
		ur.Commit[:10] + " cairn unlock api", lr.Commit[:10] + " cairn lock api: database migration until 20:00",
		"merge main into canary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// The fix the message gives works.
	gittest.Run(t, f.work.Dir, "fetch", "-q", f.bare, "main")
	f.work.Git("checkout", "-q", "canary")
	f.work.Git("merge", "-q", "--no-edit", "FETCH_HEAD")
	f.work.Git("push", "-q", f.bare, "canary")
	if res, err := promote.Promote(ctx, options(f, g, "canary", "web")); err != nil || !res.Promoted {
		t.Errorf("after the merge: %+v, %v", res, err)
	}
}

// verifySigned checks the commit's signature with git verify-commit and
// with agent/trust.
func verifySigned(t *testing.T, f *fixture, s *gittest.Signer, commit string) {
	t.Helper()
	trustFile := gittest.TrustFile(t, s)
	cmd := exec.Command("git", "-c", "gpg.ssh.allowedSignersFile="+trustFile, "verify-commit", commit)
	cmd.Dir = f.bare
	cmd.Env = gittest.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("git verify-commit %s: %v\n%s", commit, err, out)
	}
	keys, err := trust.Load(trustFile)
	if err != nil {
		t.Fatal(err)
	}
	c := commitObject(t, f.bare, commit)
	if _, err := keys.VerifyCommit(c); err != nil {
		t.Errorf("agent/trust refuses %s: %v", commit, err)
	}
}

// commitObject reads a commit of the bare repository with go-git.
func commitObject(t *testing.T, bare, commit string) *object.Commit {
	t.Helper()
	m, err := mirror.Open(filepath.Join(t.TempDir(), "m"), bare, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Fetch(context.Background(), "main"); err != nil {
		t.Fatal(err)
	}
	h, err := m.Resolve(commit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Commit(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// racingHook is an update hook that, at the first push to main, moves main
// on itself, as another push that wins the race would: the server's
// compare-and-set then refuses the push.
const racingHook = `#!/bin/sh
[ "$1" = refs/heads/main ] || exit 0
[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
export GIT_COMMITTER_NAME=racer GIT_COMMITTER_EMAIL=racer@example.org GIT_AUTHOR_NAME=racer GIT_AUTHOR_EMAIL=racer@example.org
c=$(git commit-tree -p "$2" -m "racing push" "$2^{tree}") && git update-ref refs/heads/main "$c" "$2"
`

func installHook(t *testing.T, bare, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bare, "hooks", name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestLockRace: the server refuses the lock's push because main moved
// while it ran; lock fetches again and succeeds on the new tip, keeping
// the racing commit. A promotion that loses such a race fails, and leaves
// the server as the other push made it.
func TestLockRace(t *testing.T) {
	operator(t)
	f := newFixture(t, daemon)
	installHook(t, f.bare, "update", racingHook)
	ctx := context.Background()
	lr, err := promote.LockGroup(ctx, promote.LockOptions{Conn: promote.Conn{Repo: f.url}, Group: "web", Reason: "freeze"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.tip(t, "main"); got != lr.Commit {
		t.Fatalf("main = %s, want the lock commit %s", got, lr.Commit)
	}
	if got := gittest.Run(t, f.bare, "log", "-1", "--format=%s", lr.Commit+"^"); got != "racing push" {
		t.Errorf("the lock commit's parent is %q, want the racing push", got)
	}

	// A promotion to db whose push the server refuses.
	installHook(t, f.bare, "update", strings.ReplaceAll(racingHook, "main", "db"))
	if err := os.Remove(filepath.Join(f.bare, "raced")); err != nil {
		t.Fatal(err)
	}
	_, err = promote.Promote(ctx, options(f, &gate{ok: true}, "canary", "db"))
	if !errors.Is(err, mirror.ErrRejected) || !strings.Contains(err.Error(), "another push won the race") {
		t.Fatalf("promote that loses the race: %v", err)
	}
	if got := gittest.Run(t, f.bare, "log", "-1", "--format=%s", "db"); got != "racing push" {
		t.Errorf("db's tip is %q, want the racing push", got)
	}
	if f.hasRef(promote.NotesRef) {
		t.Error("the notes were pushed though the branch was refused (not atomic)")
	}
}

// TestLockGPG: an operator whose git signs with OpenPGP locks a group; git
// and agent/trust accept the signature.
func TestLockGPG(t *testing.T) {
	s := gittest.NewGPGSigner(t, "Ops <ops@example.org>")
	t.Setenv("GIT_CONFIG_GLOBAL", s.GlobalConfig(t))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	f := newFixture(t, daemon)
	lr, err := promote.LockGroup(context.Background(), promote.LockOptions{Conn: promote.Conn{Repo: f.url}, Group: "db", Reason: "backup restore test"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := trust.Parse("trust", []byte(s.Trust))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.VerifyCommit(commitObject(t, f.bare, lr.Commit)); err != nil {
		t.Errorf("agent/trust refuses the lock commit: %v", err)
	}
	if got := gittest.Run(t, f.bare, "cat-file", "-p", "main"); !strings.Contains(got, "gpgsig -----BEGIN PGP SIGNATURE-----") {
		t.Errorf("the lock commit on the server has no OpenPGP signature:\n%s", got)
	}
}

// TestPromoteCache: with a cache directory, the mirror stays between runs
// and the next run fetches only the new commits (a pack of its own without
// the history); runs that share the cache take turns, and one that waits
// too long fails naming the cache.
func TestPromoteCache(t *testing.T) {
	f := newFixture(t, daemon)
	ctx := context.Background()
	cache := filepath.Join(t.TempDir(), "cache")
	o := options(f, &gate{ok: true}, "canary", "web")
	o.Conn.Cache = cache
	if res, err := promote.Promote(ctx, o); err != nil || !res.Promoted {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	packs := func() map[string]bool {
		idx, _ := filepath.Glob(filepath.Join(cache, "mirror", "objects", "pack", "*.idx"))
		m := map[string]bool{}
		for _, p := range idx {
			m[p] = true
		}
		return m
	}
	before := packs()
	if len(before) == 0 {
		t.Fatalf("no pack in the cache %s after the first run", cache)
	}

	next := f.work.Commit("canary", map[string]string{"main.cairn": "# the next change\n"})
	gittest.Run(t, f.work.Dir, "push", "-q", f.bare, "canary")
	res, err := promote.Promote(ctx, o)
	if err != nil || !res.Promoted || f.tip(t, "main") != next {
		t.Fatalf("second run: %+v, %v; main at %s, want %s", res, err, f.tip(t, "main"), next)
	}
	var fresh []string
	for p := range packs() {
		if !before[p] {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("the second run left %d new packs in the cache, want 1 (packs before: %v)", len(fresh), before)
	}
	cmd := exec.Command("git", "show-index")
	cmd.Stdin, _ = os.Open(fresh[0])
	ids, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ids), next) || strings.Contains(string(ids), f.base) {
		t.Errorf("the second run's pack should hold the new commit and not the history before it:\n%s", ids)
	}

	// A run that finds the cache in use waits, then fails naming it.
	defer promote.SetCacheWait(300 * time.Millisecond)()
	held, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, err = promote.Promote(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "cache "+cache+": in use by another run") {
		t.Fatalf("a run while the cache is held: %v", err)
	}
	syscall.Flock(int(held.Fd()), syscall.LOCK_UN)
	if res, err := promote.Promote(ctx, o); err != nil || res.Status != promote.StatusUpToDate {
		t.Errorf("a run after the cache is released: %+v, %v; want up to date", res, err)
	}
}
