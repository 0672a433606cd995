package steps

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/statedir"
)

// journalFile writes the fixture's steps to a journal file, as
// `journal apply` reads one, and returns its name.
func (f *cacheFixture) journalFile() string {
	f.t.Helper()
	name := filepath.Join(filepath.Dir(f.stateDir), "test.journal")
	text := strings.Join(journal.Canonicals(f.steps), "\n") + "\n"
	if old, err := os.ReadFile(name); err == nil && string(old) == text {
		return name
	}
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return name
}

// runNoop runs the full move with repair (plan, drift check, run), as
// `journal apply --repair` does when QuickNoop cannot prove a no-op, with
// the journal file's sha256 (none with withSum false), and returns what it
// did and its check.
func (f *cacheFixture) runNoop(every int, withSum ...bool) (*Result, *statCache) {
	f.t.Helper()
	name := f.journalFile()
	stamp := time.Now()
	info, err := os.Stat(name)
	if err != nil {
		f.t.Fatal(err)
	}
	data := mustRead(f.t, name)
	m := Move{Journal: name, Steps: f.steps, Source: os.DirFS(f.src), Repair: true, JournalSum: fmt.Sprintf("%x", sha256.Sum256(data)), JournalInfo: info, JournalStamp: stamp}
	if len(withSum) > 0 && !withSum[0] {
		m.JournalSum, m.JournalInfo = "", nil
	}
	ctx := context.Background()
	a, err := Open(ctx, Options{Root: f.root, StateDir: f.stateDir, Create: true, RehashEvery: every})
	if err != nil {
		f.t.Fatal(err)
	}
	defer a.Close()
	res, err := a.Apply(ctx, m)
	if err != nil {
		f.t.Fatal(err)
	}
	return res, a.lastStats
}

// quick runs QuickNoop for the fixture's journal file.
func (f *cacheFixture) quick(every int) bool {
	f.t.Helper()
	ok := QuickNoop(context.Background(), Options{Root: f.root, StateDir: f.stateDir, RehashEvery: every}, QuickMove{Journal: f.journalFile()})
	return ok
}

// proven waits out the racy margin and runs a full no-op, whose proof
// QuickNoop must then take.
func (f *cacheFixture) proven() {
	f.t.Helper()
	time.Sleep(2 * statMarginFine)
	f.runNoop(0)
	if !f.quick(0) {
		f.t.Fatal("QuickNoop after a no-op whose files are older than the margin: not proven")
	}
}

func historyResults(t *testing.T, dir string) string {
	t.Helper()
	h, err := History(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range h {
		out = append(out, string(e.Result))
	}
	return strings.Join(out, " ")
}

// TestNoopProofProvesNoop: after a full no-op with repair, the next runs
// are proven without a check, recorded as no-ops, and counted.
func TestNoopProofProvesNoop(t *testing.T) {
	f := newCacheFixture(t)
	f.proven()
	if !f.quick(0) {
		t.Fatal("second QuickNoop: not proven")
	}
	if got, want := historyResults(t, f.stateDir), "applied no-op no-op no-op"; got != want {
		t.Errorf("history %q, want %q", got, want)
	}
	pf, err := parseNoopProof(mustRead(t, filepath.Join(f.stateDir, noopProofFile)))
	if err != nil {
		t.Fatal(err)
	}
	// the owner databases, /d, /d/sub and the three files
	if len(pf.entries) != 7 {
		t.Errorf("proof of %d paths, want 7", len(pf.entries))
	}
	if runs, ok := readStatRuns(f.stateDir, pf.cacheStamp); !ok || runs != pf.cacheRuns+2 {
		t.Errorf("count after two proven runs: %d, %v; want %d", runs, ok, pf.cacheRuns+2)
	}
}

// TestNoopProofFindsDrift: a change of content, mode, owner or type of a
// file or a directory, or of the owner databases, is not proven, and the
// full check finds it.
func TestNoopProofFindsDrift(t *testing.T) {
	chownTo := func(uid, gid int) func(*testing.T, string) {
		return func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name, object string
		change       func(t *testing.T, p string)
	}{
		{"content, same size and mtime", "/d/f0", func(t *testing.T, p string) {
			fi, _ := os.Lstat(p)
			data, _ := os.ReadFile(p)
			data[0] ^= 0x20
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
		{"mode", "/d/f0", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"owner", "/d/f0", chownTo(1234, -1)},
		{"group", "/d/f0", chownTo(-1, 1234)},
		{"replaced by a link", "/d/f0", func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("f1", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", "/d/f0", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory mode", "/d/sub", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory owner", "/d/sub", chownTo(1234, 1234)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCacheFixture(t)
			f.proven()
			tt.change(t, filepath.Join(f.rootDir, filepath.FromSlash(tt.object)))
			if f.quick(0) {
				t.Fatal("proven after the change")
			}
			f.wantDriftOf(tt.name, tt.object)
		})
	}
}

// TestNoopProofOwnerDatabases: an owner named in the journal resolves
// through the root's /etc/passwd; a change there is not proven.
func TestNoopProofOwnerDatabases(t *testing.T) {
	f := newCacheFixture(t)
	etc := filepath.Join(f.rootDir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(etc, "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.proven()
	if err := os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\nsvc:x:1234:1234::/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f.quick(0) {
		t.Fatal("proven after /etc/passwd changed")
	}
	f.proven()
	if err := os.WriteFile(filepath.Join(etc, "group"), []byte("root:x:0:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f.quick(0) {
		t.Fatal("proven after /etc/group appeared")
	}
}

// TestNoopProofInputs: another journal, source, applied journal, stat
// cache, build, a blob store that the full run refuses, a missing record
// of the root (which the full run writes), a move to recover, a damaged
// proof or a clock set back is not proven.
func TestNoopProofInputs(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *cacheFixture)
	}{
		{"another journal", func(t *testing.T, f *cacheFixture) {
			name := f.journalFile()
			if err := os.WriteFile(name, append(mustRead(t, name), "# a comment\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a journal that is not a file", func(t *testing.T, f *cacheFixture) {
			name := f.journalFile()
			os.Remove(name)
			if err := os.Mkdir(name, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"the applied journal replaced", func(t *testing.T, f *cacheFixture) {
			name := filepath.Join(f.stateDir, appliedFile)
			data := mustRead(t, name)
			if err := os.WriteFile(name+".new", data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(name+".new", name); err != nil {
				t.Fatal(err)
			}
		}},
		{"the stat cache replaced", func(t *testing.T, f *cacheFixture) {
			name := filepath.Join(f.stateDir, statCacheFile)
			if err := os.WriteFile(name+".new", mustRead(t, name), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(name+".new", name); err != nil {
				t.Fatal(err)
			}
		}},
		{"the blob store replaced by a link", func(t *testing.T, f *cacheFixture) {
			blobs := filepath.Join(f.stateDir, blobsDir)
			if err := os.Rename(blobs, blobs+".real"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(blobsDir+".real", blobs); err != nil {
				t.Fatal(err)
			}
			// which the full run refuses
			if _, err := Open(context.Background(), Options{Root: f.root, StateDir: f.stateDir}); err == nil || !strings.Contains(err.Error(), "is not a directory (a link is not followed): refused") {
				t.Fatalf("Open: %v; want the blob store refused", err)
			}
		}},
		{"the record of the root removed", func(t *testing.T, f *cacheFixture) {
			if err := os.Remove(filepath.Join(f.stateDir, statedir.RootFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a move to recover", func(t *testing.T, f *cacheFixture) {
			if err := os.WriteFile(filepath.Join(f.stateDir, intentFile), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"another build", func(t *testing.T, f *cacheFixture) {
			rewriteProof(t, f, func(s string) string {
				return strings.Replace(s, noopProofMagic+" "+buildID(), noopProofMagic+" other", 1)
			})
		}},
		{"a damaged proof", func(t *testing.T, f *cacheFixture) {
			name := filepath.Join(f.stateDir, noopProofFile)
			data := mustRead(t, name)
			data[len(data)/2] ^= 1
			if err := os.WriteFile(name, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a proof from the future", func(t *testing.T, f *cacheFixture) {
			rewriteProof(t, f, func(s string) string {
				i := strings.Index(s, "\nstart ")
				j := i + 1 + strings.IndexByte(s[i+1:], '\n')
				return s[:i] + fmt.Sprintf("\nstart %d", time.Now().Add(time.Hour).UnixNano()) + s[j:]
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCacheFixture(t)
			f.proven()
			tt.setup(t, f)
			if QuickNoop(context.Background(), Options{Root: f.root, StateDir: f.stateDir}, QuickMove{Journal: filepath.Join(filepath.Dir(f.stateDir), "test.journal")}) {
				t.Fatal("proven; want false")
			}
		})
	}
	t.Run("the same bytes, written again", func(t *testing.T) {
		f := newCacheFixture(t)
		f.proven()
		name := f.journalFile()
		data := mustRead(t, name)
		os.Remove(name)
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if !f.quick(0) {
			t.Fatal("not proven: the bytes are those of the proof")
		}
	})
	t.Run("no sum (an INCLUDE)", func(t *testing.T) {
		f := newCacheFixture(t)
		time.Sleep(2 * statMarginFine)
		f.runNoop(0, false)
		if _, err := os.Stat(filepath.Join(f.stateDir, noopProofFile)); err == nil {
			t.Fatal("a proof without the journal's sum")
		}
	})
	t.Run("another source", func(t *testing.T) {
		f := newCacheFixture(t)
		f.proven()
		if QuickNoop(context.Background(), Options{Root: f.root, StateDir: f.stateDir}, QuickMove{Journal: f.journalFile(), Commit: "abc"}) {
			t.Fatal("another commit: proven; want false")
		}
	})
}

// rewriteProof edits the proof's text and writes it back with a valid
// checksum line.
func rewriteProof(t *testing.T, f *cacheFixture, edit func(string) string) {
	t.Helper()
	name := filepath.Join(f.stateDir, noopProofFile)
	body, _, ok := cutLastLine(mustRead(t, name))
	if !ok {
		t.Fatal("no end line")
	}
	text := edit(string(body))
	h := fmt.Sprintf("%x", sha256.Sum256([]byte(text)))
	if err := os.WriteFile(name, []byte(text+"end "+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseNoopProof(mustRead(t, name)); err != nil {
		t.Fatal(err)
	}
}

// TestNoopProofRacy: a proof whose paths were written within the margin of
// its check's start is not taken (those files are hashed by the full check).
func TestNoopProofRacy(t *testing.T) {
	f := newCacheFixture(t)
	f.runNoop(0) // the files were just written
	if _, err := os.Stat(filepath.Join(f.stateDir, noopProofFile)); err != nil {
		t.Fatalf("no proof after a no-op: %v", err)
	}
	if f.quick(0) {
		t.Fatal("proven with racy paths")
	}
}

// TestNoopProofRehashEvery: the proven runs count as checks, and every
// Nth run is the full check that hashes every file, as without a proof.
func TestNoopProofRehashEvery(t *testing.T) {
	f := newCacheFixture(t)
	time.Sleep(2 * statMarginFine)
	var got []string
	for range 9 {
		if f.quick(3) {
			got = append(got, "proven")
			continue
		}
		_, c := f.runNoop(3)
		got = append(got, fmt.Sprint(c.hashed.Load()))
	}
	// As TestStatCacheRehashEvery ([3 0 3 0 0 3 0]): the first check has
	// no cache and hashes every file; every third is full; the runs between
	// are proven (the files are older than the margin: the first check's
	// proof holds).
	want := "3 proven 3 proven proven 3 proven proven 3"
	if strings.Join(got, " ") != want {
		t.Errorf("runs with RehashEvery 3: %v, want %s", got, want)
	}
}

// TestNoopProofKinds: a journal with a step whose check reads more than a
// path's lstat (a link's target) writes no proof.
func TestNoopProofKinds(t *testing.T) {
	f := newCacheFixture(t)
	jn, err := journal.Parse("test.journal", []byte("SYMLINK /d/f0 /d/l\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.steps = append(f.steps, jn.Steps...)
	f.runNoop(0) // applies the link
	time.Sleep(2 * statMarginFine)
	os.Remove(filepath.Join(f.stateDir, noopProofFile))
	f.runNoop(0)
	if _, err := os.Stat(filepath.Join(f.stateDir, noopProofFile)); err == nil {
		t.Fatal("a proof of a journal with a SYMLINK step")
	}
	if f.quick(0) {
		t.Fatal("proven")
	}
}

// TestNoopProofNewlinePath: a path that a line of the proof cannot hold
// takes no proof, and the proof of the journal before goes.
func TestNoopProofNewlinePath(t *testing.T) {
	f := newCacheFixture(t)
	f.proven()
	jn, err := journal.Parse("test.journal", []byte("MKDIR \"/d/a\\nb\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.steps = append(f.steps, jn.Steps...)
	f.runNoop(0) // makes the directory
	time.Sleep(2 * statMarginFine)
	f.runNoop(0)
	if _, err := os.Stat(filepath.Join(f.stateDir, noopProofFile)); err == nil {
		t.Fatal("a proof is left after a no-op of a journal with a path holding a newline")
	}
	if f.quick(0) {
		t.Fatal("proven")
	}
}

// TestSplitLines: the parts are whole lines, in order, all of the text.
func TestSplitLines(t *testing.T) {
	for _, text := range []string{"", "a\n", "a\nb\n", "aaaa\nb\ncc\nd\neeeeeeee\n", "\n\n\n\n"} {
		for n := 1; n <= 5; n++ {
			parts := splitLines(text, n)
			if len(parts) > n || strings.Join(parts, "") != text {
				t.Errorf("splitLines(%q, %d) = %q", text, n, parts)
			}
			for _, p := range parts {
				if p == "" || !strings.HasSuffix(p, "\n") {
					t.Errorf("splitLines(%q, %d): part %q", text, n, p)
				}
			}
		}
	}
}

// TestNoopProofNotWhenEveryRunIsFull: with RehashEvery 1 every run hashes
// every file, so no run writes a proof, and QuickNoop reads none.
func TestNoopProofNotWhenEveryRunIsFull(t *testing.T) {
	f := newCacheFixture(t)
	time.Sleep(2 * statMarginFine)
	f.runNoop(1)
	if _, err := os.Stat(filepath.Join(f.stateDir, noopProofFile)); err == nil {
		t.Fatal("a proof written with RehashEvery 1")
	}
	f.runNoop(0)
	if f.quick(1) {
		t.Fatal("proven with RehashEvery 1")
	}
}

// TestDirCache: lstat through the cache says what Root.Lstat says, for
// paths in many directories and at the root, and holds four directories
// at most: it closes the one it replaces.
func TestDirCache(t *testing.T) {
	tmp := t.TempDir()
	var paths []string
	for d := range 6 {
		dir := filepath.Join(tmp, fmt.Sprintf("d%d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, fmt.Sprintf("/d%d", d))
		for f := range 3 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), []byte{byte(f)}, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, fmt.Sprintf("/d%d/f%d", d, f), fmt.Sprintf("/d%d/missing", d))
		}
	}
	paths = append(paths, "/d0/f1", "/d5/f0", "/nowhere/f", "/d1/f1/under-a-file")
	r, err := rootfs.Open(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	openFDs := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(fds)
	}
	before := openFDs()
	var dc dirCache
	defer dc.close()
	for _, p := range paths {
		got, gerr := dc.lstat(r, p)
		want, werr := r.Lstat(p)
		if entryOf(got, "") != entryOf(want, "") || (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Errorf("%s: %v, %v; Root.Lstat: %v, %v", p, got, gerr, want, werr)
		}
		if n := openFDs(); n > before+len(dc.dirs) {
			t.Fatalf("after %s: %d descriptors open, %d before", p, n, before)
		}
	}
	dc.close()
	if n := openFDs(); n != before {
		t.Errorf("after close: %d descriptors open, %d before", n, before)
	}
}

// TestNoopProofBuild: a proof written by one build is not taken by
// another, and the build is named by its executable file: a file put in
// its place (a new inode) or written again in place is another build, as
// is a build of no name (no /proc).
func TestNoopProofBuild(t *testing.T) {
	old := buildID
	t.Cleanup(func() { buildID = old })
	buildID = func() string { return "one" }
	f := newCacheFixture(t)
	f.proven()
	buildID = func() string { return "two" }
	if f.quick(0) {
		t.Fatal("proven by the proof of another build")
	}
	buildID = func() string { return "" }
	f.runNoop(0)
	if _, err := os.Stat(filepath.Join(f.stateDir, noopProofFile)); err == nil {
		t.Fatal("a proof written by a build of no name")
	}

	exe := filepath.Join(t.TempDir(), "cairn")
	if err := os.WriteFile(exe, []byte("one build"), 0o755); err != nil {
		t.Fatal(err)
	}
	first := buildIDOf(exe)
	if first == "" || buildIDOf(exe) != first || strings.ContainsAny(first, " \n") {
		t.Fatalf("buildIDOf: %q, then %q", first, buildIDOf(exe))
	}
	if err := os.WriteFile(exe+".new", []byte("one build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	second := buildIDOf(exe)
	if second == first {
		t.Errorf("the same name for a file put in the other's place: %q", first)
	}
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(exe, []byte("two build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if buildIDOf(exe) == second {
		t.Errorf("the same name for a file written again: %q", second)
	}
	if id := buildIDOf(filepath.Join(exe, "none")); id != "" {
		t.Errorf("buildIDOf a path that leads through a file (ENOTDIR): %q", id)
	}
	if buildIDOf("/proc/self/exe") == "" {
		t.Error("this test binary has no build name")
	}
}

// TestNoopProofJournalRacy: the journal's stat is trusted under the racy
// rule against the time taken before that stat, not the check's start
// (later, after the journal was read): a journal whose mtime is within the
// margin of that time may have been written again under the same stat,
// and is taken only if its bytes have the proof's sha256.
func TestNoopProofJournalRacy(t *testing.T) {
	f := newCacheFixture(t)
	name := f.journalFile()
	f.proven() // the journal older than the margin at the check's start
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	setLine := func(s, key, value string) string {
		i := strings.Index(s, "\n"+key+" ")
		if i < 0 {
			t.Fatalf("no %s line in the proof", key)
		}
		j := i + 1 + strings.IndexByte(s[i+1:], '\n')
		return s[:i+1] + key + " " + value + s[j:]
	}
	otherSum := func(s string) string {
		i := strings.Index(s, "\njournal ")
		sum := s[i+len("\njournal ") : i+len("\njournal ")+64]
		return strings.Replace(s, "journal "+sum, "journal "+strings.Repeat("0", 64), 1)
	}
	// The bytes differ from the proof's, the stat is the same and not
	// racy: trusted, as the stat cache trusts a file's.
	rewriteProof(t, f, otherSum)
	if !f.quick(0) {
		t.Fatal("a journal of the same stat, not racy: not proven")
	}
	// The same, stat'ed within the margin of its mtime: not trusted,
	// though the check's start is past the margin.
	f.proven()
	rewriteProof(t, f, func(s string) string {
		s = otherSum(s)
		return setLine(s, "journal-stamp", fmt.Sprint(fi.ModTime().UnixNano()+int64(time.Millisecond)))
	})
	if f.quick(0) {
		t.Fatal("proven by the stat of a journal racy against the time before it")
	}
}
