package steps_test

// Failure paths of the journal applier (spec §6, cli.md exit codes): a step
// or CHECK that fails halfway through a move is undone (exit 1); an undo
// that fails keeps the intent log (exit 3) and the next command retries;
// bad input, a held state directory and another root change nothing
// (exit 2). Helpers (crashCairn, crashSnapshot, ...) are in crash_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// failFixture is a host tree, sources, and an OLD journal that the failure
// tests apply before the move they break.
type failFixture struct {
	base string // everything of the test
	dir  string // journals and sources
	oldJ string
	pre  []crashPre
	sums map[string]string // source name ("a", ...) → sha256
	log  string            // where the EXEC steps write what ran
}

// failContents are the sources: files/NAME, and the blob of COPY - for "e".
var failContents = map[string]string{
	"a": "alpha\n", "b": "bravo\n", "c": "charlie\n", "d": "delta\n", "e": "echo, a blob\n", "z": "zulu\n",
}

func newFailFixture(t *testing.T) *failFixture {
	t.Helper()
	crashNeedRoot(t)
	f := &failFixture{base: crashBaseDir(t), sums: map[string]string{}}
	f.dir = filepath.Join(f.base, "src")
	f.log = filepath.Join(f.base, "exec.log")
	for _, d := range []string{"files", ".cairn/blobs"} {
		if err := os.MkdirAll(filepath.Join(f.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range failContents {
		sum := sha256.Sum256([]byte(content))
		f.sums[name] = hex.EncodeToString(sum[:])
		file := filepath.Join(f.dir, "files", name)
		if name == "e" {
			file = filepath.Join(f.dir, ".cairn/blobs", f.sums[name])
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.pre = []crashPre{
		{Path: "/etc", Type: "dir", Mode: 0o755},
		{Path: "/etc/passwd", Type: "file", Mode: 0o644, Content: []byte("root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n")},
		{Path: "/etc/group", Type: "file", Mode: 0o644, Content: []byte("root:x:0:\nalice:x:1001:\n")},
		{Path: "/srv", Type: "dir", Mode: 0o755},
		{Path: "/srv/keep", Type: "file", Mode: 0o600, UID: 1001, GID: 1001, Content: []byte("not cairn's\n")},
		{Path: "/srv/spot", Type: "dir", Mode: 0o755},
		{Path: "/pre", Type: "dir", Mode: 0o755},
		{Path: "/pre/plain", Type: "file", Mode: 0o644, Content: []byte("a plain file\n")},
		{Path: "/pre/full", Type: "dir", Mode: 0o750, UID: 1001, GID: 1001},
		{Path: "/pre/full/entry", Type: "file", Mode: 0o644, Content: []byte("an entry\n")},
		{Path: "/pre/u", Type: "file", Mode: 0o640, UID: 1001, GID: 0, Content: []byte("the only copy of this content\n")},
	}
	for i := range 10 {
		f.pre = append(f.pre, crashPre{Path: fmt.Sprintf("/pre/f%d", i), Type: "file", Mode: 0o644, UID: i % 2 * 1001, Content: fmt.Appendf(nil, "pre-existing f%d\n", i)})
	}
	f.oldJ = f.write(t, "old.journal", []string{
		"MKDIR /srv/app mode=0750 owner=alice group=alice",
		"COPY files/a /srv/app/conf sha256=" + f.sums["a"] + " mode=0640 owner=alice",
		"SYMLINK conf /srv/app/current",
		"MKDIR /srv/old",
		"COPY files/b /srv/old/x sha256=" + f.sums["b"],
		"COPY files/c /srv/old/y sha256=" + f.sums["c"] + " mode=0600",
		"COPY files/b /pre/f0 sha256=" + f.sums["b"],
		"COPY files/c /pre/f1 sha256=" + f.sums["c"],
		"COPY files/c /pre/f2 sha256=" + f.sums["c"],
		"COPY files/c /pre/f3 sha256=" + f.sums["c"] + " owner=alice",
		"COPY files/c /pre/f4 sha256=" + f.sums["c"] + " mode=0755",
		"COPY files/c /pre/f5 sha256=" + f.sums["c"],
		"RM /pre/f6",
		"SYMLINK /srv/app /pre/f7",
	})
	return f
}

// write writes a journal into the source directory, each step with a
// source position, and returns its path.
func (f *failFixture) write(t *testing.T, name string, lines []string) string {
	t.Helper()
	var b strings.Builder
	for i, l := range lines {
		if strings.Contains(l, " # ") {
			b.WriteString(l + "\n")
		} else {
			fmt.Fprintf(&b, "%s # site.cairn:%d:3\n", l, i+1)
		}
	}
	file := filepath.Join(f.dir, name)
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// failSource is the source position the tests give the step they break.
const failSource = "site.cairn:900:5 > modules/broken/main.cairn:2:3"

// newJournal writes a NEW journal that changes much of OLD, with the lines
// of inject in the middle, after the EXEC that records it ran; it returns the
// file and the line of the first injected step.
func (f *failFixture) newJournal(t *testing.T, name string, inject ...string) (string, int) {
	t.Helper()
	lines := []string{
		"MKDIR /srv/app mode=0755 owner=alice group=alice",
		"COPY files/d /srv/app/conf sha256=" + f.sums["d"] + " owner=alice",
		"SYMLINK conf.d /srv/app/current",
		"COPY files/d /pre/f0 sha256=" + f.sums["d"],
		"COPY files/c /pre/f1 sha256=" + f.sums["c"] + " mode=0755 owner=alice group=alice",
		"RM /pre/f2",
		"COPY - /pre/f6 sha256=" + f.sums["e"] + " mode=0600",
		"RM /pre/f8",
		fmt.Sprintf("EXEC %s undo=%s", strconv.Quote("echo ran >> "+f.log), strconv.Quote("echo undone >> "+f.log)),
	}
	line := len(lines) + 1
	for _, l := range inject {
		lines = append(lines, l+" # "+failSource)
	}
	lines = append(lines, "MKDIR /srv/new mode=0700")
	for i, src := range []string{"a", "b", "c", "d", "a", "b", "c", "d"} {
		lines = append(lines, fmt.Sprintf("COPY files/%s /srv/new/n%d sha256=%s", src, i, f.sums[src]))
	}
	lines = append(lines, "SYMLINK n0 /srv/new/link", "COPY files/z /pre/f9 sha256="+f.sums["z"])
	return f.write(t, name, lines), line
}

// host makes a fresh host tree, applies OLD and returns it with its tree
// and journal listing.
func (f *failFixture) host(t *testing.T, name string) (crashHost, crashTree, string) {
	t.Helper()
	dir := filepath.Join(f.base, name)
	h := crashHost{root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
	crashBuild(t, h.root, f.pre)
	crashMust(t, 0, h.args("journal", "apply", f.oldJ)...)
	return h, crashSnapshot(t, h.root), crashMust(t, 0, h.args("journal", "show")...).stdout
}

// failUnchanged checks that the host is as before the move: the tree, the
// applied journal, no intent log, no temporary file.
func failUnchanged(t *testing.T, h crashHost, before crashTree, showBefore string) {
	t.Helper()
	if d := crashDiff(before, crashSnapshot(t, h.root), 30); len(d) > 0 {
		t.Fatalf("the host is not as before the move:\n%s", strings.Join(d, "\n"))
	}
	if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the intent log is still there (%v)", err)
	}
	if tmp := append(crashTemps(t, h.root), crashTemps(t, h.state)...); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if show := crashMust(t, 0, h.args("journal", "show")...).stdout; show != showBefore {
		t.Fatalf("journal show does not print OLD any more:\n%s", show)
	}
}

// failApply moves a host with the library, as the CLI does.
func failApply(t *testing.T, h crashHost, file, source string) (*steps.Result, []steps.AppliedStep, error) {
	t.Helper()
	j, err := journal.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
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
	res, err := a.Apply(ctx, steps.Move{Journal: file, Steps: j.Steps, Source: os.DirFS(source), SourceName: source, Blobs: os.DirFS(filepath.Join(source, ".cairn", "blobs")), BlobsName: filepath.Join(source, ".cairn", "blobs")})
	return res, a.Applied().Steps, err
}

func failReadLog(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	os.Remove(name)
	return strings.Fields(string(data))
}

// TestFailureUndo breaks a move halfway, with a CHECK or an op that fails
// after many changes: the ops already run are undone, the host is as before,
// OLD stays applied, and the error names the step (exit 1).
func TestFailureUndo(t *testing.T) {
	f := newFailFixture(t)
	for _, tc := range []struct {
		name   string
		inject []string // the first is the step that fails, unless failAt says
		want   string   // in the error
		log    []string // what the EXEC steps record, in order
		failAt int      // the index in inject of the step that fails
	}{
		{"CHECK file", []string{"CHECK file /nope timeout=200ms interval=50ms"}, "/nope does not exist", nil, 0},
		{"CHECK command false", []string{"CHECK command false timeout=200ms interval=50ms"}, `"false"`, nil, 0},
		{"CHECK tcp to a closed port", []string{"CHECK tcp 127.0.0.1:1 timeout=200ms interval=50ms"}, "connection refused", nil, 0},
		{"COPY beneath a file", []string{"COPY files/a /pre/plain/x sha256=" + f.sums["a"]}, "not a directory", nil, 0},
		{"RM of a directory with entries", []string{"RM /pre/full"}, "holds entries (entry)", nil, 0},
		// MKDIRs and COPYs run as one group: the failed MKDIR is blamed,
		// not the COPY beneath it that failed for want of it, and the
		// MKDIR and COPYs after them (which may have run meanwhile) are
		// undone too.
		{"MKDIR beneath a file", []string{"MKDIR /pre/plain/sub", "COPY files/a /pre/plain/sub/x sha256=" + f.sums["a"]}, "not a directory", nil, 0},
		{"MKDIR in a group after a COPY", []string{"COPY files/b /srv/before sha256=" + f.sums["b"], "MKDIR /pre/plain/sub"}, "not a directory", nil, 1},
		{"EXEC that exits 1", []string{
			fmt.Sprintf("EXEC %s undo=%s", strconv.Quote("echo fail-ran >> "+f.log+"; exit 1"), strconv.Quote("echo fail-undone >> "+f.log)),
		}, "exit status 1", []string{"fail-ran", "fail-undone"}, 0},
		{"COPY whose parent an EXEC turned into a file", []string{
			"COPY files/a /srv/spot/x sha256=" + f.sums["a"],
		}, "not a directory", []string{"spot-file", "spot-dir"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inject := tc.inject
			failing := 0
			if strings.HasPrefix(tc.name, "COPY whose parent") {
				// The EXEC runs before the COPY and is undone after it.
				turn := fmt.Sprintf("EXEC %s undo=%s",
					strconv.Quote(`rmdir "$CAIRN_ROOT/srv/spot" && echo > "$CAIRN_ROOT/srv/spot" && echo spot-file >> `+f.log),
					strconv.Quote(`rm "$CAIRN_ROOT/srv/spot" && mkdir -m 0755 "$CAIRN_ROOT/srv/spot" && echo spot-dir >> `+f.log))
				inject = append([]string{turn}, inject...)
				failing = 1
			}
			newJ, line := f.newJournal(t, "new.journal", inject...)
			line += failing + tc.failAt
			h, before, showBefore := f.host(t, strings.ReplaceAll(tc.name, " ", "-"))
			oldApplied := crashMust(t, 0, h.args("journal", "show")...).stdout
			pos := fmt.Sprintf("%s:%d:1", newJ, line)
			wantLog := append(append([]string{"ran"}, tc.log...), "undone")

			// Through the library: a *steps.StepError for the step.
			failReadLog(t, f.log)
			_, applied, err := failApply(t, h, newJ, f.dir)
			var se *steps.StepError
			if !errors.As(err, &se) {
				t.Fatalf("Apply: %T %v, want a *steps.StepError", err, err)
			}
			if se.Step.Pos.Line != line || se.Step.Pos.File != newJ || se.Step.Source != failSource {
				t.Errorf("the StepError names %s (from %s), want %s (from %s)", se.Step.Pos, se.Step.Source, pos, failSource)
			}
			if code := steps.ExitCode(err); code != steps.ExitFailed {
				t.Errorf("ExitCode = %d, want %d", code, steps.ExitFailed)
			}
			for _, want := range []string{pos, failSource, tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}
			var listed strings.Builder
			for _, s := range applied {
				src := s.Source
				if src == "" {
					src = s.At
				}
				fmt.Fprintf(&listed, "%s # %s\n", s.Step, src)
			}
			if listed.String() != oldApplied {
				t.Errorf("Applied() is no longer OLD:\n%s", listed.String())
			}
			failUnchanged(t, h, before, showBefore)
			if got := failReadLog(t, f.log); strings.Join(got, " ") != strings.Join(wantLog, " ") {
				t.Errorf("the EXEC steps recorded %q, want %q", got, wantLog)
			}

			// Through the command line: exit 1, the error on stderr.
			r := crashMust(t, 1, h.args("journal", "apply", newJ)...)
			for _, want := range []string{pos, failSource, tc.want} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
				}
			}
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pos) + `: `).MatchString(r.stderr) {
				t.Errorf("no line of stderr starts with %s:\n%s", pos, r.stderr)
			}
			failUnchanged(t, h, before, showBefore)
			if got := failReadLog(t, f.log); strings.Join(got, " ") != strings.Join(wantLog, " ") {
				t.Errorf("the EXEC steps recorded %q, want %q", got, wantLog)
			}
		})
	}
}

// TestFailureUndoFails makes an undo impossible: an EXEC corrupts the blob
// that holds the undo image of a file the move overwrote, then a CHECK
// fails. The move ends with exit 3 and keeps its intent log; every later
// command retries the undo, and once the blob is back one succeeds.
func TestFailureUndoFails(t *testing.T) {
	f := newFailFixture(t)
	var u crashPre
	for _, o := range f.pre {
		if o.Path == "/pre/u" {
			u = o
		}
	}
	sum := sha256.Sum256(u.Content)
	usum := hex.EncodeToString(sum[:])
	for _, first := range []string{"library", "command line"} {
		t.Run(first, func(t *testing.T) {
			h, before, showBefore := f.host(t, "undo-"+strings.ReplaceAll(first, " ", "-"))
			// The undo image of /pre/u is a small blob, packed: the EXEC
			// changes its first byte in the pack, so that it no longer has
			// its hash and the store drops it when the undo reads it.
			corrupt := fmt.Sprintf(`for p in %s/pack-*.pack; do off=$(grep -obaF %q "$p" | cut -d: -f1); [ -z "$off" ] || printf X | dd of="$p" bs=1 seek="$off" conv=notrunc status=none; done`,
				filepath.Join(h.state, "blobs"), strings.TrimSuffix(string(u.Content), "\n"))
			newJ, _ := f.newJournal(t, "new-undo-fails.journal",
				"COPY files/z /pre/u sha256="+f.sums["z"],
				"EXEC "+strconv.Quote(corrupt),
				"CHECK command false timeout=100ms interval=50ms",
			)
			if first == "library" {
				_, _, err := failApply(t, h, newJ, f.dir)
				var ue *steps.UndoError
				if !errors.As(err, &ue) {
					t.Fatalf("Apply: %T %v, want a *steps.UndoError", err, err)
				}
				if code := steps.ExitCode(err); code != steps.ExitUndoFailed {
					t.Errorf("ExitCode = %d, want %d", code, steps.ExitUndoFailed)
				}
				if !strings.Contains(err.Error(), "/pre/u") || !strings.Contains(err.Error(), `"false"`) {
					t.Errorf("the error names neither the undo that failed nor why the move was undone:\n%v", err)
				}
			} else {
				r := crashMust(t, 3, h.args("journal", "apply", newJ)...)
				for _, want := range []string{"/pre/u", "undo", "intent log", `"false"`} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("stderr does not say %q (which undo failed, why, and that the intent log stays):\n%s", want, r.stderr)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(h.state, "intent.log")); err != nil {
				t.Fatalf("the intent log is gone after a failed undo: %v", err)
			}
			// Everything else was undone; /pre/u holds the new content.
			tree := crashSnapshot(t, h.root)
			d := crashDiff(before, tree, 0)
			if len(d) != 1 || !strings.HasPrefix(d[0], "/pre/u: ") {
				t.Errorf("after the failed undo, the host differs from before in more than /pre/u:\n%s", strings.Join(d, "\n"))
			}

			// While the blob is missing, each command retries and fails.
			for _, cmd := range [][]string{{"journal", "show"}, {"journal", "apply", newJ}} {
				r := crashMust(t, 3, h.args(cmd...)...)
				if !strings.Contains(r.stderr, "/pre/u") {
					t.Errorf("cairn %s: stderr does not name the undo that failed:\n%s", cmd[1], r.stderr)
				}
				if _, err := os.Stat(filepath.Join(h.state, "intent.log")); err != nil {
					t.Fatalf("the intent log is gone after a failed retry: %v", err)
				}
			}

			// The cause gone, the next command finishes the undo.
			blobs, err := steps.OpenBlobs(filepath.Join(h.state, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := blobs.Put(bytes.NewReader(u.Content), usum); err != nil {
				t.Fatal(err)
			}
			if err := blobs.Close(); err != nil {
				t.Fatal(err)
			}
			r := crashMust(t, 0, h.args("journal", "show")...)
			if r.stdout != showBefore {
				t.Errorf("journal show after the retry does not print OLD:\n%s", r.stdout)
			}
			if !strings.Contains(r.stderr, "recovered") {
				t.Errorf("journal show did not say that it recovered the move:\n%s", r.stderr)
			}
			failUnchanged(t, h, before, showBefore)
		})
	}
}

// TestFailureCommandCorruptsBlob: a command of the move writes over a blob
// that the move put into the store before it ran and reads after it (the
// content of a later COPY). The blob's hash is checked as the COPY reads
// it, though this process put it moments before: the COPY fails, and the
// move is undone.
func TestFailureCommandCorruptsBlob(t *testing.T) {
	f := newFailFixture(t)
	h, before, showBefore := f.host(t, "command-corrupts-blob")
	corrupt := fmt.Sprintf(`for p in %s/pack-*.pack; do off=$(grep -obaF zulu "$p" | cut -d: -f1); [ -z "$off" ] || printf X | dd of="$p" bs=1 seek="$off" conv=notrunc status=none; done`,
		filepath.Join(h.state, "blobs"))
	newJ, _ := f.newJournal(t, "new-corrupts-blob.journal", "EXEC "+strconv.Quote(corrupt))
	_, _, err := failApply(t, h, newJ, f.dir)
	if err == nil || !strings.Contains(err.Error(), "/pre/f9") || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Apply: %v, want the COPY to /pre/f9 failed on a corrupt blob", err)
	}
	failUnchanged(t, h, before, showBefore)
}

// failHold takes the lock of a state directory as another cairn process
// would, and returns a function that releases it.
func failHold(t *testing.T, state string) func() {
	t.Helper()
	lf, err := os.OpenFile(filepath.Join(state, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	lf.Truncate(0)
	lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	// Released from a timer goroutine and again by Cleanup: once, safely.
	release := sync.OnceFunc(func() { lf.Close() })
	t.Cleanup(release)
	return release
}

// TestFailureLocked: apply refuses at once a state directory another process
// holds; show and drift wait for it.
func TestFailureLocked(t *testing.T) {
	f := newFailFixture(t)
	h, before, showBefore := f.host(t, "locked")
	newJ, _ := f.newJournal(t, "new-locked.journal")

	release := failHold(t, h.state)
	r := crashMust(t, 2, h.args("journal", "apply", newJ)...)
	if r.took > 5*time.Second {
		t.Errorf("journal apply took %v to give up on a held state directory, want at once", r.took)
	}
	for _, want := range []string{h.state, "held by another cairn process", "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	release()
	failUnchanged(t, h, before, showBefore)

	for _, cmd := range [][]string{{"journal", "show"}, {"journal", "drift"}} {
		t.Run(cmd[1], func(t *testing.T) {
			release := failHold(t, h.state)
			const hold = time.Second
			go func() {
				time.Sleep(hold)
				release()
			}()
			r := crashMust(t, 0, h.args(cmd...)...)
			if r.took < hold-100*time.Millisecond {
				t.Errorf("cairn %s finished after %v, while another process held the state for %v", cmd[1], r.took, hold)
			}
			if cmd[1] == "show" && r.stdout != showBefore {
				t.Errorf("journal show after waiting does not print OLD:\n%s", r.stdout)
			}
		})
	}
}

// TestFailureOtherRoot: a state directory opened with another root than it
// was applied under is exit 2, and neither root changes.
func TestFailureOtherRoot(t *testing.T) {
	f := newFailFixture(t)
	h, before, showBefore := f.host(t, "root-1")
	other := crashHost{root: filepath.Join(f.base, "root-2", "root"), state: h.state}
	crashBuild(t, other.root, f.pre)
	otherBefore := crashSnapshot(t, other.root)
	newJ, _ := f.newJournal(t, "new-other-root.journal")
	for _, cmd := range [][]string{{"journal", "apply", newJ}, {"journal", "show"}, {"journal", "drift"}} {
		r := crashMust(t, 2, other.args(cmd...)...)
		for _, want := range []string{h.state, h.root, other.root} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("cairn %s: stderr does not name %s:\n%s", cmd[1], want, r.stderr)
			}
		}
		if d := crashDiff(otherBefore, crashSnapshot(t, other.root), 10); len(d) > 0 {
			t.Fatalf("cairn %s changed the other root:\n%s", cmd[1], strings.Join(d, "\n"))
		}
	}
	failUnchanged(t, h, before, showBefore)
}

// TestFailureBadInput: a missing COPY source or blob, or content that does
// not match its sha256, is exit 2 naming FILE:LINE:COL, before anything
// changes.
func TestFailureBadInput(t *testing.T) {
	f := newFailFixture(t)
	// Content the blob store does not hold: with a blob of that hash in the
	// store, cairn needs no source (spec §3).
	sum := sha256.Sum256([]byte("content no journal applied\n"))
	absent := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name string
		step string
		want string
	}{
		{"missing source", "COPY files/missing /srv/m sha256=" + absent, "no such file or directory"},
		{"missing blob", "COPY - /srv/m sha256=" + absent, "no such file or directory"},
		{"sha256 mismatch", "COPY files/a /srv/m sha256=" + absent, "sha256 mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failReadLog(t, f.log)
			h, before, showBefore := f.host(t, "bad-"+strings.ReplaceAll(tc.name, " ", "-"))
			newJ, line := f.newJournal(t, "new-bad.journal", tc.step)
			pos := fmt.Sprintf("%s:%d:1", newJ, line)

			_, _, err := failApply(t, h, newJ, f.dir)
			var ie *steps.InputError
			if !errors.As(err, &ie) || steps.ExitCode(err) != steps.ExitBadInput {
				t.Fatalf("Apply: %T %v, want a *steps.InputError (exit 2)", err, err)
			}
			failUnchanged(t, h, before, showBefore)

			r := crashMust(t, 2, h.args("journal", "apply", newJ)...)
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pos) + `: COPY .*` + regexp.QuoteMeta(tc.want)).MatchString(r.stderr) {
				t.Errorf("stderr has no line %s: COPY ... %s:\n%s", pos, tc.want, r.stderr)
			}
			failUnchanged(t, h, before, showBefore)
			if got := failReadLog(t, f.log); len(got) > 0 {
				t.Errorf("an EXEC ran before the input was checked: %q", got)
			}
		})
	}
}
