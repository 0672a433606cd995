package steps_test

// Where path ops act (issue 8, items 2 and 5): an op, its undo and its
// recovery act in the directory the op's undo image was taken in, and
// refuse (exit 3) rather than follow a link swapped in between; links that
// another user could have planted are not followed into root's files.
// Helpers (crashCairn, crashBuild, crashSnapshot, ...) are in
// crash_test.go.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
	"golang.org/x/sys/unix"
)

// placeFixture is a host whose /data a test swaps for a link to /victim,
// a tree cairn never manages, with sources for the journals.
type placeFixture struct {
	h      crashHost
	src    string            // journals and sources
	sums   map[string]string // source name → sha256
	before crashTree         // the root before any move
	victim crashTree         // /victim before any move
}

var placeContents = map[string]string{"a": "alpha\n", "b": "bravo\n"}

// placeHost makes the host. /data and /victim hold files of the same
// names, so that an op or undo that acted in the wrong one would show.
func placeHost(t *testing.T) *placeFixture {
	t.Helper()
	crashNeedRoot(t)
	base := crashBaseDir(t)
	f := &placeFixture{src: filepath.Join(base, "src"), sums: map[string]string{}}
	f.h = crashHost{root: filepath.Join(base, "host", "root"), state: filepath.Join(base, "host", "state")}
	if err := os.MkdirAll(filepath.Join(f.src, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range placeContents {
		sum := sha256.Sum256([]byte(content))
		f.sums[name] = hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(f.src, "files", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pre := []crashPre{
		{Path: "/etc", Type: "dir", Mode: 0o755},
		{Path: "/etc/passwd", Type: "file", Mode: 0o644, Content: []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")},
		{Path: "/etc/group", Type: "file", Mode: 0o644, Content: []byte("root:x:0:\nalice:x:1000:\n")},
		{Path: "/data", Type: "dir", Mode: 0o755},
		{Path: "/data/f0", Type: "file", Mode: 0o644, Content: []byte("data's f0\n")},
		{Path: "/victim", Type: "dir", Mode: 0o755},
		{Path: "/victim/f0", Type: "file", Mode: 0o644, Content: []byte("victim's f0\n")},
		{Path: "/victim/f1", Type: "file", Mode: 0o600, Content: []byte("victim's f1\n")},
		{Path: "/victim/new", Type: "dir", Mode: 0o700},
		{Path: "/victim/new/n", Type: "file", Mode: 0o644, Content: []byte("victim's n\n")},
	}
	crashBuild(t, f.h.root, pre)
	f.before = crashSnapshot(t, f.h.root)
	f.victim = crashSnapshot(t, filepath.Join(f.h.root, "victim"))
	return f
}

// journal writes a journal of lines into the source directory.
func (f *placeFixture) journal(t *testing.T, name string, lines ...string) string {
	t.Helper()
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "%s # site.cairn:%d:3\n", l, i+1)
	}
	file := filepath.Join(f.src, name)
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// moveLines are the ops on /data that the tests break: an overwrite, a new
// file, a new directory and a file in it.
func (f *placeFixture) moveLines() []string {
	return []string{
		"COPY files/a /data/f0 sha256=" + f.sums["a"],
		"COPY files/a /data/f1 sha256=" + f.sums["a"],
		"MKDIR /data/new",
		"COPY files/b /data/new/n sha256=" + f.sums["b"],
	}
}

// swapScript is the shell that turns ROOT/data into a link to target,
// keeping the real directory as ROOT/data.real; it does it once.
func swapScript(target string) string {
	return fmt.Sprintf(`[ -L "$CAIRN_ROOT/data" ] || { mv "$CAIRN_ROOT/data" "$CAIRN_ROOT/data.real" && ln -s %q "$CAIRN_ROOT/data"; }`, target)
}

// swap does what swapScript does, from the test.
func (f *placeFixture) swap(t *testing.T, target string) {
	t.Helper()
	data := filepath.Join(f.h.root, "data")
	if err := os.Rename(data, data+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, data); err != nil {
		t.Fatal(err)
	}
}

// unswap puts the real directory back.
func (f *placeFixture) unswap(t *testing.T) {
	t.Helper()
	data := filepath.Join(f.h.root, "data")
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(data+".real", data); err != nil {
		t.Fatal(err)
	}
}

// victimUntouched fails the test if /victim changed.
func (f *placeFixture) victimUntouched(t *testing.T) {
	t.Helper()
	if d := crashDiff(f.victim, crashSnapshot(t, filepath.Join(f.h.root, "victim")), 20); len(d) > 0 {
		t.Fatalf("/victim, which cairn never managed, changed:\n%s", strings.Join(d, "\n"))
	}
}

// refused checks an exit-3 refusal: it names the path, says why, and that
// nothing was touched; the intent log stays.
func (f *placeFixture) refused(t *testing.T, r crashResult) {
	t.Helper()
	for _, want := range []string{"/data/f1: refusing to act: /data is ", "nothing was touched", "the undo is incomplete"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(f.h.state, "intent.log")); err != nil {
		t.Errorf("the intent log is gone after a refused undo: %v", err)
	}
}

// placeTargets name the links the tests swap /data for: relative and
// absolute targets that lead to /victim, and the host path of /victim,
// which beneath the root leads nowhere.
var placeTargets = []string{"relative", "absolute", "host path"}

// target returns the target of the link placeTargets names.
func (f *placeFixture) target(name string) string {
	switch name {
	case "relative":
		return "victim"
	case "absolute":
		return "/victim"
	}
	return filepath.Join(f.h.root, "victim")
}

// TestPlaceUndoAfterSwap: a CHECK swaps /data for a link during a move,
// then fails. The undo of the ops that ran in /data refuses (exit 3),
// touching nothing in /victim; cairn's own files stay in the real
// directory. Once the directory is back, the next command finishes the
// undo and the host is as before.
func TestPlaceUndoAfterSwap(t *testing.T) {
	for _, name := range placeTargets {
		t.Run(name, func(t *testing.T) {
			f := placeHost(t)
			target := f.target(name)
			// The first run must finish its mv and ln before the
			// timeout kills it, on a loaded machine too; later runs
			// find the link and fail at once.
			lines := append(f.moveLines(), fmt.Sprintf("CHECK command %s timeout=2s interval=1s", strconv.Quote(swapScript(target)+"; exit 1")))
			j := f.journal(t, "swap.journal", lines...)
			r := crashMust(t, 3, f.h.args("journal", "apply", j)...)
			f.refused(t, r)
			f.victimUntouched(t)
			if got, err := os.ReadFile(filepath.Join(f.h.root, "data.real", "f1")); err != nil || string(got) != placeContents["a"] {
				t.Errorf("cairn's own /data/f1 is not in the real directory any more: %q, %v", got, err)
			}
			// Every retry refuses as long as the link is there.
			r = crashMust(t, 3, f.h.args("journal", "show")...)
			f.refused(t, r)
			f.victimUntouched(t)
			// The directory back: the undo completes.
			f.unswap(t)
			r = crashMust(t, 0, f.h.args("journal", "show")...)
			if !strings.Contains(r.stderr, "recovered an interrupted move") {
				t.Errorf("journal show did not say that it finished the undo:\n%s", r.stderr)
			}
			if d := crashDiff(f.before, crashSnapshot(t, f.h.root), 20); len(d) > 0 {
				t.Fatalf("after the undo the host is not as before:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestPlaceRecoveryAfterSwap: a move killed with SIGKILL, then /data
// swapped for a link before the next command: recovery refuses (exit 3)
// and touches nothing in /victim, every time, until the directory is back.
func TestPlaceRecoveryAfterSwap(t *testing.T) {
	for _, name := range placeTargets {
		t.Run(name, func(t *testing.T) {
			f := placeHost(t)
			target := f.target(name)
			mark := filepath.Join(filepath.Dir(f.src), "exec.mark")
			lines := append(f.moveLines(), fmt.Sprintf("EXEC %s", strconv.Quote("touch "+mark+"; sleep 60")))
			j := f.journal(t, "kill.journal", lines...)
			cmd := crashStart(t, f.h.args("journal", "apply", j)...)
			deadline := time.Now().Add(60 * time.Second)
			for {
				if _, err := os.Stat(mark); err == nil {
					break
				}
				if time.Now().After(deadline) {
					crashKill(t, cmd)
					t.Fatalf("the EXEC did not run within a minute:\n%s", cmd.Stdout)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !crashKill(t, cmd) {
				t.Fatal("the move ended although its EXEC blocks")
			}
			f.swap(t, target)
			for range 2 {
				r := crashMust(t, 3, f.h.args("journal", "show")...)
				f.refused(t, r)
				f.victimUntouched(t)
			}
			if got, err := os.ReadFile(filepath.Join(f.h.root, "data.real", "new", "n")); err != nil || string(got) != placeContents["b"] {
				t.Errorf("cairn's own /data/new/n is not in the real directory any more: %q, %v", got, err)
			}
			f.unswap(t)
			r := crashMust(t, 0, f.h.args("journal", "show")...)
			if !strings.Contains(r.stderr, "recovered an interrupted move") {
				t.Errorf("journal show did not recover:\n%s", r.stderr)
			}
			if d := crashDiff(f.before, crashSnapshot(t, f.h.root), 20); len(d) > 0 {
				t.Fatalf("after recovery the host is not as before:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestPlaceUndoRemakesDirectory: a move removes a directory cairn made
// and the files in it (the inverses of OLD's steps), then fails. Its undo
// makes the directory again (a new inode) and restores the files in it,
// whose places name the old directory: the undo pass knows it replaced it.
func TestPlaceUndoRemakesDirectory(t *testing.T) {
	f := placeHost(t)
	oldJ := f.journal(t, "old.journal",
		"MKDIR /data/made mode=0750",
		"COPY files/a /data/made/x sha256="+f.sums["a"],
		"MKDIR /data/made/sub",
		"COPY files/b /data/made/sub/y sha256="+f.sums["b"])
	crashMust(t, 0, f.h.args("journal", "apply", oldJ)...)
	applied := crashSnapshot(t, f.h.root)
	j := f.journal(t, "fail.journal", "CHECK command false timeout=100ms interval=50ms")
	r := crashMust(t, 1, f.h.args("journal", "apply", "--allow-removal", j)...)
	if !strings.Contains(r.stderr, `"false"`) {
		t.Errorf("the error does not name the failing CHECK:\n%s", r.stderr)
	}
	if d := crashDiff(applied, crashSnapshot(t, f.h.root), 20); len(d) > 0 {
		t.Fatalf("after the undo the host is not as before:\n%s", strings.Join(d, "\n"))
	}
}

// TestPlaceRace races swaps of a directory and a link to /victim against
// moves of a few thousand files, each ending with a failing CHECK so that
// everything is undone. Whatever each move's result, /victim is untouched;
// once the swapping stops, the host comes back to where it was. The links
// are swapped in a root-owned directory (by a root process, as a CHECK
// might) from the moment the move has first seen /data, and in a
// user-owned directory (as its owner might) from before the move.
func TestPlaceRace(t *testing.T) {
	crashNeedRoot(t)
	const dirs, files = 40, 60
	for _, tc := range []struct {
		name  string
		dir   string // the directory that holds data and the link
		owner int
		early bool // swap from before the move
	}{
		{"root directory", "/", 0, false},
		{"user directory", "/home/alice", 1000, false},
		{"user directory from the start", "/home/alice", 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := crashBaseDir(t)
			h := crashHost{root: filepath.Join(base, "root"), state: filepath.Join(base, "state")}
			dataDir := filepath.Join(h.root, tc.dir, "data")
			linkDir := filepath.Join(h.root, tc.dir, "data.swap")
			pre := []crashPre{
				{Path: "/etc", Type: "dir", Mode: 0o755},
				{Path: "/etc/passwd", Type: "file", Mode: 0o644, Content: []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")},
				{Path: "/etc/group", Type: "file", Mode: 0o644, Content: []byte("root:x:0:\nalice:x:1000:\n")},
				{Path: "/home", Type: "dir", Mode: 0o755},
				{Path: "/home/alice", Type: "dir", Mode: 0o755, UID: 1000, GID: 1000},
				{Path: "/victim", Type: "dir", Mode: 0o755},
				{Path: objPath(tc.dir, "data"), Type: "dir", Mode: 0o755, UID: tc.owner, GID: tc.owner},
				{Path: objPath(tc.dir, "data.swap"), Type: "symlink", Target: "/victim", UID: tc.owner, GID: tc.owner},
			}
			src := filepath.Join(base, "src")
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			var lines []string
			lines = append(lines, "COPY - "+objPath(tc.dir, "data/0-first")+" sha256=SUM0")
			blobs := map[string][]byte{}
			for d := range dirs {
				dp := objPath(tc.dir, fmt.Sprintf("data/d%02d", d))
				lines = append(lines, "MKDIR "+dp+" owner=alice")
				pre = append(pre, crashPre{Path: fmt.Sprintf("/victim/d%02d", d), Type: "dir", Mode: 0o755})
				for i := range files {
					content := fmt.Appendf(nil, "managed %d/%d\n", d, i)
					sum := sha256.Sum256(content)
					hexsum := hex.EncodeToString(sum[:])
					blobs[hexsum] = content
					lines = append(lines, fmt.Sprintf("COPY - %s/f%03d sha256=%s owner=alice", dp, i, hexsum))
					if i%3 == 0 { // a file of the same name in the victim
						pre = append(pre, crashPre{Path: fmt.Sprintf("/victim/d%02d/f%03d", d, i), Type: "file", Mode: 0o644, Content: fmt.Appendf(nil, "victim %d/%d\n", d, i)})
					}
				}
			}
			first := []byte("first\n")
			sum0 := sha256.Sum256(first)
			blobs[hex.EncodeToString(sum0[:])] = first
			lines[0] = strings.Replace(lines[0], "SUM0", hex.EncodeToString(sum0[:]), 1)
			lines = append(lines, "CHECK command false timeout=10ms interval=10ms")
			blobDir := filepath.Join(src, ".cairn", "blobs")
			if err := os.MkdirAll(blobDir, 0o755); err != nil {
				t.Fatal(err)
			}
			for sum, content := range blobs {
				if err := os.WriteFile(filepath.Join(blobDir, sum), content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			crashBuild(t, h.root, pre)
			before := crashSnapshot(t, h.root)
			victim := crashSnapshot(t, filepath.Join(h.root, "victim"))
			j, err := journal.Parse("race.journal", []byte(strings.Join(lines, "\n")+"\n"))
			if err != nil {
				t.Fatal(err)
			}

			for round := range 6 {
				// The racer exchanges data and data.swap (a directory
				// and a link) with renameat2(RENAME_EXCHANGE).
				var stop atomic.Bool
				var swaps atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// Later each round, so that moves get further.
					time.Sleep(time.Duration(round) * 80 * time.Millisecond)
					// The link stays up to 1 ms, the directory up to 10:
					// the move gets on between swaps, differently each round.
					for deadline := time.Now().Add(30 * time.Second); !stop.Load() && time.Now().Before(deadline); {
						if err := unix.Renameat2(unix.AT_FDCWD, dataDir, unix.AT_FDCWD, linkDir, unix.RENAME_EXCHANGE); err != nil {
							t.Errorf("swap: %v", err)
							return
						}
						hold := 10000
						if swaps.Add(1)%2 == 1 {
							hold = 1000
						}
						time.Sleep(time.Duration(rand.IntN(hold)) * time.Microsecond)
					}
				}()
				if tc.early {
					close(start)
				} else {
					go func() {
						// From the moment the move has first seen data:
						// its first op has run.
						for !stop.Load() {
							if _, err := os.Lstat(filepath.Join(dataDir, "0-first")); err == nil {
								break
							}
							time.Sleep(50 * time.Microsecond)
						}
						close(start)
					}()
				}
				res, applyErr := placeApply(t, h, j.Steps, src)
				stop.Store(true)
				wg.Wait()
				// Back to the directory.
				var st unix.Stat_t
				if err := unix.Lstat(dataDir, &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&unix.S_IFMT == unix.S_IFLNK {
					if err := unix.Renameat2(unix.AT_FDCWD, dataDir, unix.AT_FDCWD, linkDir, unix.RENAME_EXCHANGE); err != nil {
						t.Fatal(err)
					}
				}
				ran := 0
				if res != nil {
					ran = res.Ran
				}
				t.Logf("round %d: %d swaps, %d ops ran, exit %d: %.300v", round, swaps.Load(), ran, steps.ExitCode(applyErr), applyErr)
				if d := crashDiff(victim, crashSnapshot(t, filepath.Join(h.root, "victim")), 20); len(d) > 0 {
					t.Fatalf("round %d: /victim, which cairn never managed, changed:\n%s", round, strings.Join(d, "\n"))
				}
				if applyErr == nil {
					t.Fatalf("round %d: the move succeeded although its last CHECK fails", round)
				}
				if steps.ExitCode(applyErr) == steps.ExitUndoFailed {
					// The link was there when the undo ran; now it is
					// not, and the next open finishes the undo.
					r := crashMust(t, 0, h.args("journal", "show")...)
					if !strings.Contains(r.stderr, "recovered") {
						t.Errorf("round %d: journal show did not finish the undo:\n%s", round, r.stderr)
					}
				}
				if d := crashDiff(before, crashSnapshot(t, h.root), 20); len(d) > 0 {
					t.Fatalf("round %d: the host is not as before the move:\n%s", round, strings.Join(d, "\n"))
				}
			}
		})
	}
}

// objPath joins an object path and a relative one.
func objPath(dir, rel string) string {
	if dir == "/" {
		return "/" + rel
	}
	return dir + "/" + rel
}

// placeApply moves a host with the library, as the CLI does.
func placeApply(t *testing.T, h crashHost, js []journal.Step, src string) (*steps.Result, error) {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state, Create: true})
	if err != nil {
		t.Fatalf("open the state: %v", err)
	}
	defer a.Close()
	return a.Apply(ctx, steps.Move{Journal: "race.journal", Steps: js, Source: os.DirFS(src), SourceName: src, Blobs: os.DirFS(filepath.Join(src, ".cairn", "blobs")), BlobsName: filepath.Join(src, ".cairn", "blobs")})
}

// TestPlaceUnsafeHome: alice's .ssh turned into a link to /root/.ssh
// after cairn made it: the next apply refuses to write her key through it
// (exit 1, naming the link and the owners), drift says it cannot check,
// and /root/.ssh is untouched; a repair replaces the link itself with the
// directory cairn manages. Her own links among her own directories still
// work.
func TestPlaceUnsafeHome(t *testing.T) {
	f := placeHost(t)
	extra := []crashPre{
		{Path: "/home", Type: "dir", Mode: 0o755},
		{Path: "/home/alice", Type: "dir", Mode: 0o755, UID: 1000, GID: 1000},
		{Path: "/home/alice/dotfiles", Type: "dir", Mode: 0o755, UID: 1000, GID: 1000},
		{Path: "/home/alice/dotfiles/conf", Type: "dir", Mode: 0o755, UID: 1000, GID: 1000},
		{Path: "/home/alice/conf", Type: "symlink", Target: "dotfiles/conf", UID: 1000, GID: 1000},
		{Path: "/root", Type: "dir", Mode: 0o700},
		{Path: "/root/.ssh", Type: "dir", Mode: 0o700},
		{Path: "/root/.ssh/authorized_keys", Type: "file", Mode: 0o600, Content: []byte("root's keys\n")},
	}
	for _, o := range extra {
		crashBuild(t, f.h.root, []crashPre{o})
	}
	rootSSH := crashSnapshot(t, filepath.Join(f.h.root, "root"))
	oldJ := f.journal(t, "old.journal",
		"MKDIR /home/alice/.ssh mode=0700 owner=alice group=alice",
		"COPY files/a /home/alice/.ssh/authorized_keys sha256="+f.sums["a"]+" mode=0600 owner=alice group=alice",
		"COPY files/a /home/alice/conf/app.conf sha256="+f.sums["a"]+" owner=alice",
	)
	crashMust(t, 0, f.h.args("journal", "apply", oldJ)...)
	if got, err := os.ReadFile(filepath.Join(f.h.root, "home/alice/dotfiles/conf/app.conf")); err != nil || string(got) != placeContents["a"] {
		t.Fatalf("a COPY through alice's own link did not land in her directory: %q, %v", got, err)
	}

	// alice replaces her .ssh with a link to root's.
	ssh := filepath.Join(f.h.root, "home/alice/.ssh")
	if err := os.RemoveAll(ssh); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/root/.ssh", ssh); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(ssh, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	want := "write /home/alice/.ssh/authorized_keys: unsafe path: /home/alice/.ssh is a link in a directory owned by uid 1000 (alice) to a directory owned by uid 0; refusing to follow it"
	rootUntouched := func(t *testing.T) {
		t.Helper()
		if d := crashDiff(rootSSH, crashSnapshot(t, filepath.Join(f.h.root, "root")), 10); len(d) > 0 {
			t.Fatalf("/root changed:\n%s", strings.Join(d, "\n"))
		}
	}

	// Drift cannot check her key, and says why.
	r := crashRun(t, f.h.args("journal", "drift")...)
	if !strings.Contains(r.stdout+r.stderr, "read /home/alice/.ssh/authorized_keys: unsafe path: /home/alice/.ssh is a link in a directory owned by uid 1000 (alice)") {
		t.Errorf("journal drift does not say the path is unsafe (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A new key, or a directory beneath .ssh: refused (exit 1).
	for _, tc := range []struct {
		name, line, want string
	}{
		{"a new key", "COPY files/b /home/alice/.ssh/authorized_keys sha256=" + f.sums["b"] + " mode=0600 owner=alice group=alice", want},
		{"a directory beneath", "COPY files/a /home/alice/.ssh/authorized_keys sha256=" + f.sums["a"] + " mode=0600 owner=alice group=alice\nMKDIR /home/alice/.ssh/keys.d owner=alice",
			"mkdir /home/alice/.ssh/keys.d: unsafe path: /home/alice/.ssh is a link in a directory owned by uid 1000 (alice)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := f.journal(t, "new.journal",
				"MKDIR /home/alice/.ssh mode=0700 owner=alice group=alice",
				tc.line,
				"COPY files/a /home/alice/conf/app.conf sha256="+f.sums["a"]+" owner=alice")
			r := crashMust(t, 1, f.h.args("journal", "apply", j)...)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, r.stderr)
			}
			rootUntouched(t)
			if _, err := os.Stat(filepath.Join(f.h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the intent log stays after a refused move: %v", err)
			}
		})
	}
	// Repair acts on the link itself, which cairn manages as a directory:
	// it makes .ssh a directory again, then writes the key there.
	crashMust(t, 0, f.h.args("journal", "apply", oldJ, "--repair")...)
	rootUntouched(t)
	if got, err := os.ReadFile(filepath.Join(ssh, "authorized_keys")); err != nil || string(got) != placeContents["a"] {
		t.Errorf("after repair, her key is not in her .ssh: %q, %v", got, err)
	}
}

// TestPlaceLinkTargetMadeByMove: a host link (/srv -> /data/srv) whose
// target an earlier op of the same move makes. The object beneath it was
// absent, behind a link to nothing, when its image would have been taken
// with the ops before it: the applier runs them first, then takes the image
// through the link, and the op and its undo act in the link's target.
func TestPlaceLinkTargetMadeByMove(t *testing.T) {
	f := placeHost(t)
	if err := os.Symlink("/data/srv", filepath.Join(f.h.root, "srv")); err != nil {
		t.Fatal(err)
	}
	before := crashSnapshot(t, f.h.root)
	lines := []string{
		"MKDIR /data/srv",
		"COPY files/a /srv/f sha256=" + f.sums["a"],
	}
	j := f.journal(t, "fail.journal", append(lines, "CHECK command false timeout=100ms interval=50ms")...)
	crashMust(t, 1, f.h.args("journal", "apply", j)...)
	if d := crashDiff(before, crashSnapshot(t, f.h.root), 20); len(d) > 0 {
		t.Fatalf("after the undo the host is not as before:\n%s", strings.Join(d, "\n"))
	}
	j = f.journal(t, "ok.journal", lines...)
	crashMust(t, 0, f.h.args("journal", "apply", j)...)
	if got, err := os.ReadFile(filepath.Join(f.h.root, "data/srv/f")); err != nil || string(got) != placeContents["a"] {
		t.Fatalf("/srv/f did not land in /data/srv: %q, %v", got, err)
	}
}

// TestPlaceRecoveryRedone: a recovery killed after it undid some ops (here
// a file, and the directory holding it, which the move had made where a
// link was) is redone by the next command from the same intent log. The
// file's place names a directory that is gone, replaced by the link again:
// that is the undo of the op that made it, done, so the file is gone too.
func TestPlaceRecoveryRedone(t *testing.T) {
	f := placeHost(t)
	if err := os.Symlink("/victim", filepath.Join(f.h.root, "data", "x")); err != nil {
		t.Fatal(err)
	}
	oldJ := f.journal(t, "old.journal", "SYMLINK /victim /data/x")
	crashMust(t, 0, f.h.args("journal", "apply", oldJ)...)
	before := crashSnapshot(t, f.h.root)
	mark := filepath.Join(filepath.Dir(f.src), "exec.mark")
	j := f.journal(t, "kill.journal",
		"MKDIR /data/x",
		"COPY files/a /data/x/f sha256="+f.sums["a"],
		"MKDIR /data/x/sub",
		"COPY files/b /data/x/sub/g sha256="+f.sums["b"],
		fmt.Sprintf("EXEC %s", strconv.Quote("touch "+mark+"; sleep 60")))
	cmd := crashStart(t, f.h.args("journal", "apply", j)...)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			crashKill(t, cmd)
			t.Fatalf("the EXEC did not run within a minute:\n%s", cmd.Stdout)
		}
	}
	if !crashKill(t, cmd) {
		t.Fatal("the move ended although its EXEC blocks")
	}
	// What a recovery killed half way leaves: the undos of the files and
	// of /data/x done, the link back.
	x := filepath.Join(f.h.root, "data", "x")
	if err := os.RemoveAll(x); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/victim", x); err != nil {
		t.Fatal(err)
	}
	r := crashMust(t, 0, f.h.args("journal", "show")...)
	if !strings.Contains(r.stderr, "recovered an interrupted move") {
		t.Errorf("journal show did not recover:\n%s", r.stderr)
	}
	if d := crashDiff(before, crashSnapshot(t, f.h.root), 20); len(d) > 0 {
		t.Fatalf("after recovery the host is not as before:\n%s", strings.Join(d, "\n"))
	}
	f.victimUntouched(t)
}
