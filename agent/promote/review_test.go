package promote_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/agent/promote"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// oddHosts names groups that are not one file name.
const oddHosts = `hosts {
  group "a/b" {
    match = ["ab-*"]
  }
  group "../x" {
    match = ["x-*"]
  }
  group ".." {
    match = ["dd-*"]
  }
  group "` + "\u00e9t\u00e9" + `" {
    match = ["summer-*"]
  }
}
`

// TestLockGroupNames: a group whose name is not one file name cannot be
// locked as .cairn/locks/NAME (the lock would be a directory that promote
// does not read, or a tree git refuses): bad input, nothing pushed. A
// unicode name is one file name and locks.
func TestLockGroupNames(t *testing.T) {
	operator(t)
	work := gittest.New(t)
	base := work.Commit("main", map[string]string{"hosts.cairn": oddHosts})
	bare := filepath.Join(t.TempDir(), "config.git")
	gittest.Run(t, work.Dir, "clone", "-q", "--bare", work.Dir, bare)
	gittest.Run(t, bare, "config", "daemon.receivepack", "true")
	url := gittest.ServeDaemon(t, bare)
	ctx := context.Background()
	for _, g := range []string{"a/b", "../x", "..", "", strings.Repeat("g", 300)} {
		_, err := promote.LockGroup(ctx, promote.LockOptions{Conn: promote.Conn{Repo: url}, Group: g, Reason: "r"})
		if !errors.Is(err, promote.ErrBadInput) {
			t.Errorf("lock %q: %v, want bad input", g, err)
		}
		if got := gittest.Run(t, bare, "rev-parse", "main"); got != base {
			t.Fatalf("lock %q pushed %s", g, got)
		}
	}
	lr, err := promote.LockGroup(ctx, promote.LockOptions{Conn: promote.Conn{Repo: url}, Group: "\u00e9t\u00e9", Reason: "r"})
	if err != nil || !lr.Pushed {
		t.Fatalf("lock été: %+v, %v", lr, err)
	}
	if _, err := promote.LockGroup(ctx, promote.LockOptions{Conn: promote.Conn{Repo: url}, Group: "\u00e9t\u00e9", Reason: "r"}); !errors.Is(err, promote.ErrLockState) {
		t.Errorf("lock été again: %v, want it locked already", err)
	}
}

// TestLockReasonControl: a reason with control characters (a terminal
// escape that promote would print on an operator's terminal, a NUL that
// git cuts the message at) is refused.
func TestLockReasonControl(t *testing.T) {
	operator(t)
	f := newFixture(t, daemon)
	for _, reason := range []string{"a\x1b[2Jb", "a\x00b", "tab\there", "a\u0085b", "a\u202eb"} {
		_, err := promote.LockGroup(context.Background(), promote.LockOptions{Conn: promote.Conn{Repo: f.url}, Group: "web", Reason: reason})
		if !errors.Is(err, promote.ErrBadInput) {
			t.Errorf("reason %q: %v, want bad input", reason, err)
		}
	}
	if got := f.tip(t, "main"); got != f.base {
		t.Errorf("main moved to %s", got)
	}
}

// TestParseLockControl: a lock file edited by hand with a terminal escape
// in its reason is shown without it.
func TestParseLockControl(t *testing.T) {
	l := promote.ParseLock("web", []byte("reason: x\x1b]0;owned\x07y\r\nby: \x1b[31mred\nsince: garbage\n\x00\xff\xfe"))
	if s := l.String(); strings.ContainsAny(s, "\x1b\x07\r\x00") {
		t.Errorf("String() = %q keeps control characters", s)
	}
	if !l.Since.IsZero() {
		t.Errorf("since = %v from garbage", l.Since)
	}
}

// rejectNotesOnce refuses the first update of the notes, as a race with
// another promotion's note would.
const rejectNotesOnce = `#!/bin/sh
[ "$1" = refs/notes/cairn-promotions ] || exit 0
[ -e "$GIT_DIR/rejected" ] && [ ! -e "$GIT_DIR/always" ] && exit 0
touch "$GIT_DIR/rejected"
echo "notes refused" >&2
exit 1
`

// TestPromoteNotAtomic: a server without the atomic capability moves the
// branch and refuses the note. The branch was promoted: promote must not
// say that nothing changed (a run again finds nothing to do, and the note
// is never written); it writes the note alone, or says that it could not.
func TestPromoteNotAtomic(t *testing.T) {
	f := newFixture(t, daemon)
	gittest.Run(t, f.bare, "config", "receive.advertiseAtomic", "false")
	installHook(t, f.bare, "update", rejectNotesOnce)
	res, err := promote.Promote(context.Background(), options(f, &gate{ok: true}, "canary", "db"))
	if err != nil || res.Status != promote.StatusPromoted || res.Atomic {
		t.Fatalf("promote, notes refused once: %+v, %v", res, err)
	}
	if got := f.tip(t, "db"); got != f.canary {
		t.Fatalf("db = %s, want %s", got, f.canary)
	}
	if note := gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary); !strings.Contains(note, "cairn promote canary -> db") {
		t.Errorf("note:\n%s", note)
	}

	// Notes always refused: an error that says the branch moved.
	g := newFixture(t, daemon)
	gittest.Run(t, g.bare, "config", "receive.advertiseAtomic", "false")
	installHook(t, g.bare, "update", rejectNotesOnce)
	if err := os.WriteFile(filepath.Join(g.bare, "always"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = promote.Promote(context.Background(), options(g, &gate{ok: true}, "canary", "db"))
	if err == nil || strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "was moved to "+g.canary[:10]) {
		t.Fatalf("promote, notes always refused: %v", err)
	}
	if got := g.tip(t, "db"); got != g.canary {
		t.Fatalf("db = %s, want %s", got, g.canary)
	}
}

// silentServer accepts connections and never answers, until the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestPromoteHangingServer: a git server that never answers ends promote
// and lock within the time limit, and a cancelled context (SIGTERM) ends
// them at once.
func TestPromoteHangingServer(t *testing.T) {
	addr := silentServer(t)
	for _, url := range []string{"git://" + addr + "/config.git", "http://" + addr + "/config.git"} {
		start := time.Now()
		_, err := promote.Promote(context.Background(), promote.Options{Conn: promote.Conn{Repo: url, Timeout: time.Second},
			From: "canary", To: "web", Soak: time.Minute, Gate: (&gate{ok: true}).check})
		if err == nil || time.Since(start) > 10*time.Second {
			t.Errorf("%s, timeout 1s: %v after %s", url, err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start = time.Now()
		_, err = promote.LockGroup(ctx, promote.LockOptions{Conn: promote.Conn{Repo: url}, Group: "web", Reason: "r"})
		cancel()
		if err == nil || time.Since(start) > 5*time.Second {
			t.Errorf("%s, cancelled: %v after %s", url, err, time.Since(start))
		}
	}
}

// TestPromoteConcurrent: two promotions of one commit to two branches at
// once share the notes: one wins, the other fails without changing
// anything, and once run again the note tells both.
func TestPromoteConcurrent(t *testing.T) {
	f := newFixture(t, daemon)
	var wg sync.WaitGroup
	wg.Add(2)
	both := func() { wg.Done(); wg.Wait() } // each gate answers once both were asked
	type out struct {
		res *promote.Result
		err error
	}
	outs := make(chan out, 2)
	for _, to := range []string{"web", "db"} {
		go func() {
			res, err := promote.Promote(context.Background(), options(f, &gate{ok: true, during: both}, "canary", to))
			outs <- out{res, err}
		}()
	}
	var won, lost int
	for range 2 {
		o := <-outs
		switch {
		case o.err == nil && o.res.Promoted:
			won++
		case o.err != nil && (errors.Is(o.err, mirror.ErrStale) || errors.Is(o.err, mirror.ErrRejected)):
			lost++
		default:
			t.Errorf("promote: %+v, %v", o.res, o.err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("won %d, lost %d", won, lost)
	}
	for _, to := range []string{"web", "db"} {
		if _, err := promote.Promote(context.Background(), options(f, &gate{ok: true}, "canary", to)); err != nil {
			t.Fatalf("again to %s: %v", to, err)
		}
	}
	note := gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary)
	if !strings.Contains(note, "canary -> web") || !strings.Contains(note, "canary -> db") {
		t.Errorf("note:\n%s", note)
	}
	if f.tip(t, "main") != f.canary || f.tip(t, "db") != f.canary {
		t.Errorf("main %s, db %s, want %s", f.tip(t, "main"), f.tip(t, "db"), f.canary)
	}
}

// TestPromoteLockDuringGate: a lock pushed while promote asks the gate
// (after promote read the locks) stops the promotion, also of a group
// on its own branch: the push also checks that the control branch did not
// move. The next run says locked.
func TestPromoteLockDuringGate(t *testing.T) {
	operator(t)
	f := newFixture(t, daemon)
	lock := func() {
		if _, err := promote.LockGroup(context.Background(), promote.LockOptions{Conn: promote.Conn{Repo: f.url}, Group: "db", Reason: "migration"}); err != nil {
			t.Errorf("lock: %v", err)
		}
	}
	_, err := promote.Promote(context.Background(), options(f, &gate{ok: true, during: lock}, "canary", "db"))
	if !errors.Is(err, mirror.ErrStale) && !errors.Is(err, mirror.ErrRejected) {
		t.Fatalf("promote with a lock pushed meanwhile: %v", err)
	}
	if got := f.tip(t, "db"); got != f.base {
		t.Fatalf("db moved to %s though it was locked before the push", got)
	}
	res, err := promote.Promote(context.Background(), options(f, &gate{ok: true}, "canary", "db"))
	if err != nil || res.Status != promote.StatusLocked {
		t.Fatalf("again: %+v, %v", res, err)
	}
}

// TestPromoteSSH: over ssh, the branch, the note and the check of the
// control branch go in one atomic push.
func TestPromoteSSH(t *testing.T) {
	gittest.NeedTool(t, "sshd")
	var key, known string
	f := newFixture(t, func(t *testing.T, dir string) string {
		var u string
		u, key, known = gittest.ServeSSH(t, dir)
		return u
	})
	o := options(f, &gate{ok: true}, "canary", "db")
	o.SSHKey, o.KnownHosts = key, known
	res, err := promote.Promote(context.Background(), o)
	if err != nil || !res.Promoted || !res.Atomic {
		t.Fatalf("promote over ssh: %+v, %v", res, err)
	}
	if f.tip(t, "db") != f.canary || f.tip(t, "main") != f.base {
		t.Errorf("db %s, main %s", f.tip(t, "db"), f.tip(t, "main"))
	}
}

// TestPromoteNoteThere: a note that a person wrote on the commit, in a
// notes tree fanned out as git does for many notes, is kept, and the
// evidence follows it in the same note.
func TestPromoteNoteThere(t *testing.T) {
	f := newFixture(t, daemon)
	cmd := exec.Command("git", "hash-object", "-w", "--stdin")
	cmd.Dir, cmd.Env, cmd.Stdin = f.bare, gittest.Environ(), strings.NewReader("reviewed by Ada\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	human := strings.TrimSpace(string(out))
	mktree := func(line string) string {
		cmd := exec.Command("git", "mktree")
		cmd.Dir, cmd.Env, cmd.Stdin = f.bare, gittest.Environ(), strings.NewReader(line+"\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	sub := mktree("100644 blob " + human + "\t" + f.canary[2:])
	root := mktree("040000 tree " + sub + "\t" + f.canary[:2])
	notes := gittest.Run(t, f.bare, "commit-tree", "-m", "Notes added by 'git notes add'", root)
	gittest.Run(t, f.bare, "update-ref", promote.NotesRef, notes)

	if _, err := promote.Promote(context.Background(), options(f, &gate{ok: true}, "canary", "db")); err != nil {
		t.Fatal(err)
	}
	note := gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary)
	if !strings.HasPrefix(note, "reviewed by Ada\n\ncairn promote canary -> db\n") {
		t.Errorf("note:\n%s", note)
	}
	if list := gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "list"); strings.Count(list, f.canary) != 1 {
		t.Errorf("notes list:\n%s", list)
	}
	if got := gittest.Run(t, f.bare, "rev-parse", promote.NotesRef+"^"); got != notes {
		t.Errorf("the notes commit's parent is %s, want %s", got, notes)
	}
}

// TestUnlockGroupGone: a locked group that the hosts block no longer
// names can still be unlocked (its lock file would stay on the control
// branch for good otherwise, and lock again if the name came back).
func TestUnlockGroupGone(t *testing.T) {
	operator(t)
	f := newFixture(t, daemon)
	ctx := context.Background()
	conn := promote.Conn{Repo: f.url}
	if _, err := promote.LockGroup(ctx, promote.LockOptions{Conn: conn, Group: "api", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	f.work.Git("fetch", "-q", f.bare, "main")
	f.work.Git("checkout", "-q", "-B", "main", "FETCH_HEAD")
	f.work.Commit("main", map[string]string{"hosts.cairn": strings.Replace(hosts, "group \"api\" {\n    match = [\"api-*\"]\n  }\n", "", 1)})
	f.work.Git("push", "-q", f.bare, "main")
	if _, err := promote.UnlockGroup(ctx, promote.LockOptions{Conn: conn, Group: "api"}); err != nil {
		t.Fatalf("unlock api, gone from the hosts block: %v", err)
	}
	if _, err := promote.UnlockGroup(ctx, promote.LockOptions{Conn: conn, Group: "api"}); !errors.Is(err, promote.ErrBadInput) {
		t.Errorf("unlock api again: %v, want bad input (no such group)", err)
	}
}

// TestPromoteNotAtomicBranchRefused: a server without atomic pushes that
// refuses the branch (a hook protecting it) must not keep the note: it
// would say that a commit was promoted to a branch that never moved.
func TestPromoteNotAtomicBranchRefused(t *testing.T) {
	f := newFixture(t, daemon)
	gittest.Run(t, f.bare, "config", "receive.advertiseAtomic", "false")
	installHook(t, f.bare, "update", "#!/bin/sh\n[ \"$1\" = refs/heads/db ] && { echo protected >&2; exit 1; }\nexit 0\n")
	_, err := promote.Promote(context.Background(), options(f, &gate{ok: true}, "canary", "db"))
	if err == nil {
		t.Fatal("promote to a protected branch: no error")
	}
	if got := f.tip(t, "db"); got != f.base {
		t.Fatalf("db moved to %s", got)
	}
	if f.hasRef(promote.NotesRef) {
		t.Errorf("the note was pushed though the branch was refused:\n%s", gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary))
	}
}

// notesRacer moves the notes while the branch db is pushed, as another
// promotion's note would between the two pushes a non-atomic server gets.
const notesRacer = `#!/bin/sh
[ "$1" = refs/heads/db ] || exit 0
export GIT_COMMITTER_NAME=racer GIT_COMMITTER_EMAIL=racer@example.org GIT_AUTHOR_NAME=racer GIT_AUTHOR_EMAIL=racer@example.org
t=$(git mktree </dev/null) && c=$(git commit-tree -m "other notes" "$t") && git update-ref refs/notes/cairn-promotions "$c"
`

// TestPromoteNotAtomicNotesRace: on a non-atomic server, the notes move
// between the branch's push and the note's: the branch moved, so the note
// is written on the notes' new tip, not reported as "nothing changed".
func TestPromoteNotAtomicNotesRace(t *testing.T) {
	f := newFixture(t, daemon)
	gittest.Run(t, f.bare, "config", "receive.advertiseAtomic", "false")
	installHook(t, f.bare, "update", notesRacer)
	res, err := promote.Promote(context.Background(), options(f, &gate{ok: true}, "canary", "db"))
	if err != nil || !res.Promoted {
		t.Fatalf("promote: %+v, %v", res, err)
	}
	if got := gittest.Run(t, f.bare, "log", "-1", "--format=%s", promote.NotesRef+"^"); got != "other notes" {
		t.Errorf("the note's parent is %q, want the other notes", got)
	}
	if note := gittest.Run(t, f.bare, "notes", "--ref", "cairn-promotions", "show", f.canary); !strings.Contains(note, "canary -> db") {
		t.Errorf("note:\n%s", note)
	}
}

// TestLockSignKeyRelative: --sign-key given as a path relative to the
// operator's directory signs with that key, although git runs in the
// temporary mirror (git hands user.signingkey to ssh-keygen as it is, so a
// relative path was looked for there, and the lock failed).
func TestLockSignKeyRelative(t *testing.T) {
	operator(t)
	f := newFixture(t, daemon)
	key := gittest.NewSSHSigner(t, "test@example.org")
	t.Chdir(filepath.Dir(key.KeyFile))
	lr, err := promote.LockGroup(context.Background(), promote.LockOptions{Conn: promote.Conn{Repo: f.url}, Group: "db",
		Reason: "relative key", SignKey: filepath.Base(key.KeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	verifySigned(t, f, key, lr.Commit)
}
