package promote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
