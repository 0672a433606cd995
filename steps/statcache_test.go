package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// cacheFixture is a root whose /d holds three files applied by COPY and a
// directory /d/sub, and its state directory.
type cacheFixture struct {
	t                 *testing.T
	root              *rootfs.Root
	rootDir, stateDir string
	src               string
	steps             []journal.Step
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	tmp := t.TempDir()
	f := &cacheFixture{t: t, rootDir: filepath.Join(tmp, "root"), stateDir: filepath.Join(tmp, "state"), src: filepath.Join(tmp, "src")}
	for _, d := range []string{f.rootDir, f.src} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var j strings.Builder
	j.WriteString("MKDIR /d\nMKDIR /d/sub mode=0755\n")
	for i := range 3 {
		data := fmt.Appendf(nil, "file %d: some content\n", i)
		name := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(filepath.Join(f.src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&j, "COPY %s /d/%s sha256=%x mode=0644\n", name, name, sha256.Sum256(data))
	}
	jn, err := journal.Parse("test.journal", []byte(j.String()))
	if err != nil {
		t.Fatal(err)
	}
	f.steps = jn.Steps
	if f.root, err = rootfs.Open(f.rootDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.root.Close() })
	a, err := Open(context.Background(), Options{Root: f.root, StateDir: f.stateDir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Apply(context.Background(), Move{Journal: "test.journal", Steps: f.steps, Source: os.DirFS(f.src)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// apply plans the move to the journal (with repair, a drift check through
// the stat cache), without running it, and returns the applier's last
// check and what drifted.
func (f *cacheFixture) apply(every int, repair bool) (*statCache, []Drifted) {
	f.t.Helper()
	ctx := context.Background()
	a, err := Open(ctx, Options{Root: f.root, StateDir: f.stateDir, Create: true, RehashEvery: every})
	if err != nil {
		f.t.Fatal(err)
	}
	defer a.Close()
	p, err := a.Plan(ctx, Move{Journal: "test.journal", Steps: f.steps, Source: os.DirFS(f.src), Repair: repair})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.lastStats, p.Drifted
}

// warm waits out the racy margin and runs two checks: the first hashes
// every file and writes the cache, the second must take all from it.
func (f *cacheFixture) warm() {
	f.t.Helper()
	time.Sleep(2 * statMarginFine)
	f.apply(0, true)
	c, drifted := f.apply(0, true)
	if len(drifted) != 0 || c.hits.Load() != 3 || c.hashed.Load() != 0 {
		f.t.Fatalf("warm cache: %d drifted, %d from the cache, %d hashed; want 0, 3, 0", len(drifted), c.hits.Load(), c.hashed.Load())
	}
}

func (f *cacheFixture) path(name string) string { return filepath.Join(f.rootDir, "d", name) }

// wantDrift checks that a check finds /d/f0 drifted and nothing else.
func (f *cacheFixture) wantDrift(what string) {
	f.t.Helper()
	_, drifted := f.apply(0, true)
	if len(drifted) != 1 || drifted[0].Step.Object() != "/d/f0" {
		f.t.Fatalf("%s: drifted %v, want /d/f0 alone", what, drifted)
	}
	f.t.Logf("%s: %s", what, drifted[0].Diff)
}

// wantDriftOf checks that a check finds exactly the objects drifted.
func (f *cacheFixture) wantDriftOf(what string, objects ...string) {
	f.t.Helper()
	_, drifted := f.apply(0, true)
	var got []string
	for _, d := range drifted {
		got = append(got, d.Step.Object())
	}
	if strings.Join(got, " ") != strings.Join(objects, " ") {
		f.t.Fatalf("%s: drifted %v, want %v", what, got, objects)
	}
}

func TestStatCacheTakesUnchangedFiles(t *testing.T) {
	f := newCacheFixture(t)
	// Just applied: the files are racy (written within the margin of the
	// check's start, as a test is this fast) and are hashed.
	c, _ := f.apply(0, true)
	if c.hits.Load() != 0 || c.hashed.Load() != 3 {
		t.Fatalf("first check: %d from the cache, %d hashed; want 0, 3", c.hits.Load(), c.hashed.Load())
	}
	f.warm()
	if _, err := os.Stat(filepath.Join(f.stateDir, statCacheFile)); err != nil {
		t.Fatal(err)
	}
}

// TestStatCacheFindsDrift: every change of content, mode or owner is found
// with a warm cache, including content written with size and mtime kept.
func TestStatCacheFindsDrift(t *testing.T) {
	sameSizeKeepTimes := func(t *testing.T, p string) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		data[0] ^= 0x20 // same size
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// touch -d: the mtime back as it was (the ctime cannot be)
		if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"content, same size and mtime", sameSizeKeepTimes},
		{"mode", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"owner", func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			if err := os.Chown(p, 1234, 1234); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a file of the same size and mtime", func(t *testing.T, p string) {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(p)
			data[1] ^= 0x20
			tmp := p + ".new"
			if err := os.WriteFile(tmp, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a link", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("f1", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a directory", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"group", func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			if err := os.Chown(p, -1, 1234); err != nil {
				t.Fatal(err)
			}
		}},
		{"swapped with a managed file of the same size, times kept", func(t *testing.T, p string) {
			// f0 and f1 are both in the cache; each now holds the other's
			// content under the other's inode, with its times kept.
			q := filepath.Join(filepath.Dir(p), "f1")
			fi0, _ := os.Lstat(p)
			fi1, _ := os.Lstat(q)
			for _, step := range [][2]string{{p, p + ".tmp"}, {q, p}, {p + ".tmp", q}} {
				if err := os.Rename(step[0], step[1]); err != nil {
					t.Fatal(err)
				}
			}
			os.Chtimes(p, fi0.ModTime(), fi0.ModTime())
			os.Chtimes(q, fi1.ModTime(), fi1.ModTime())
		}},
		{"removed", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCacheFixture(t)
			f.warm()
			tt.change(t, f.path("f0"))
			if strings.HasPrefix(tt.name, "swapped") {
				f.wantDriftOf(tt.name, "/d/f0", "/d/f1")
				f.wantDriftOf(tt.name+", again", "/d/f0", "/d/f1")
				return
			}
			f.wantDrift(tt.name)
			f.wantDrift(tt.name + ", again") // the cache written by the last check must not hide it
		})
	}
}

// TestStatCacheRacy: an entry whose times are not older than the start of
// the check that hashed it, less the margin, is hashed again; content
// changed in that window with size and mtime kept is found.
func TestStatCacheRacy(t *testing.T) {
	f := newCacheFixture(t)
	f.warm()
	p := f.path("f0")
	fi, _ := os.Lstat(p)
	data, _ := os.ReadFile(p)
	data[0] ^= 0x20
	// A write that the check races with: it happens just before the
	// check, which caches it, and again with the same size and mtime.
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, drifted := f.apply(0, true)
	if len(drifted) != 1 || c.hashed.Load() != 1 {
		t.Fatalf("first check: %d drifted, %d hashed; want 1, 1", len(drifted), c.hashed.Load())
	}
	data[0] ^= 0x20 // back to what the journal wants ...
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	c, drifted = f.apply(0, true)
	if len(drifted) != 0 || c.hashed.Load() != 1 {
		t.Fatalf("second check: %v drifted, %d hashed; want none, 1", drifted, c.hashed.Load())
	}

	// An mtime after the start of the check that hashed the file is racy
	// at every check: hashed each time, never taken from the cache.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c, drifted = f.apply(0, true)
		if len(drifted) != 0 || c.hashed.Load() != 1 || c.hits.Load() != 2 {
			t.Fatalf("check %d after an mtime in the future: %v drifted, %d hashed, %d from the cache; want none, 1, 2", i, drifted, c.hashed.Load(), c.hits.Load())
		}
	}

	// Unit rule: the margin before the stamp.
	stamp := time.Now().UnixNano()
	rc := &statCache{stamp: stamp}
	for _, tc := range []struct {
		mtime, ctime int64
		racy         bool
	}{
		{stamp - int64(time.Second), stamp - int64(time.Second) + 1, false},
		{stamp - int64(statMarginFine) + 1, stamp - int64(time.Second) + 1, true},
		{stamp - int64(time.Second) + 1, stamp - int64(statMarginFine) + 1, true},
		{stamp + 1, stamp + 1, true},
		// whole seconds: a coarse file system, the margin is 2 s
		{(stamp/1e9 - 1) * 1e9, (stamp/1e9 - 1) * 1e9, true},
		{(stamp/1e9 - 3) * 1e9, (stamp/1e9 - 3) * 1e9, false},
	} {
		if got := rc.racy(statEntry{mtime: tc.mtime, ctime: tc.ctime}); got != tc.racy {
			t.Errorf("racy(mtime %d, ctime %d) with stamp %d = %v, want %v", tc.mtime-stamp, tc.ctime-stamp, stamp, got, tc.racy)
		}
	}
}

// TestStatCacheBroken: a cache that is corrupt, missing, truncated, from
// another version or the future makes the check hash every file, and
// never hides drift.
func TestStatCacheBroken(t *testing.T) {
	name := func(f *cacheFixture) string { return filepath.Join(f.stateDir, statCacheFile) }
	tests := []struct {
		what  string
		spoil func(t *testing.T, f *cacheFixture)
	}{
		{"missing", func(t *testing.T, f *cacheFixture) { os.Remove(name(f)) }},
		{"empty", func(t *testing.T, f *cacheFixture) { os.WriteFile(name(f), nil, 0o600) }},
		{"truncated", func(t *testing.T, f *cacheFixture) {
			data, _ := os.ReadFile(name(f))
			os.WriteFile(name(f), data[:len(data)/2], 0o600)
		}},
		{"a byte changed", func(t *testing.T, f *cacheFixture) {
			data, _ := os.ReadFile(name(f))
			data[len(statCacheMagic)+3] ^= 1
			os.WriteFile(name(f), data, 0o600)
		}},
		{"a link", func(t *testing.T, f *cacheFixture) {
			os.Rename(name(f), name(f)+".real")
			os.Symlink(name(f)+".real", name(f))
		}},
		{"from the future", func(t *testing.T, f *cacheFixture) {
			c := &statCache{start: time.Now().Add(time.Hour).UnixNano(), fresh: map[string]statEntry{}}
			_, _, old, err := parseStatCache(mustRead(t, name(f)))
			if err != nil {
				t.Fatal(err)
			}
			c.fresh = old
			if err := c.save(f.stateDir); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			f := newCacheFixture(t)
			f.warm()
			tt.spoil(t, f)
			// content changed, size and mtime kept: only a hash finds it
			p := f.path("f0")
			fi, _ := os.Lstat(p)
			data, _ := os.ReadFile(p)
			data[0] ^= 0x20
			os.WriteFile(p, data, 0o644)
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
			c, drifted := f.apply(0, true)
			if c.hits.Load() != 0 || c.hashed.Load() != 3 {
				t.Errorf("%d from the cache, %d hashed; want 0, 3", c.hits.Load(), c.hashed.Load())
			}
			if len(drifted) != 1 {
				t.Errorf("drifted %v, want /d/f0", drifted)
			}
		})
	}
}

// TestStatCacheIsTrusted shows that a valid entry is used as it is: a
// cache that says another hash for an unchanged file makes it drift. (The
// stat must match for that; this is what the other tests rely on.)
func TestStatCacheIsTrusted(t *testing.T) {
	f := newCacheFixture(t)
	f.warm()
	name := filepath.Join(f.stateDir, statCacheFile)
	stamp, runs, m, err := parseStatCache(mustRead(t, name))
	if err != nil {
		t.Fatal(err)
	}
	e := m["/d/f0"]
	e.sum = strings.Repeat("0", 64)
	m["/d/f0"] = e
	c := &statCache{start: stamp, runs: runs, fresh: m}
	if err := c.save(f.stateDir); err != nil {
		t.Fatal(err)
	}
	f.wantDrift("cache lies")
}

// TestStatCacheRehashEvery: every Nth check hashes every file; 1 always.
func TestStatCacheRehashEvery(t *testing.T) {
	f := newCacheFixture(t)
	time.Sleep(2 * statMarginFine)
	var got []int64
	for range 7 {
		c, _ := f.apply(3, true)
		got = append(got, c.hashed.Load())
	}
	// check 1: no cache; 2 and 3 from it; 4 (the third since the full
	// one) full; ...
	want := []int64{3, 0, 3, 0, 0, 3, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hashed per check with RehashEvery 3: %v, want %v", got, want)
	}
	for range 3 {
		c, _ := f.apply(1, true)
		if c.hashed.Load() != 3 || c.hits.Load() != 0 {
			t.Errorf("RehashEvery 1: %d hashed, %d from the cache; want 3, 0", c.hashed.Load(), c.hits.Load())
		}
	}
}

// TestStatCacheDryRunWritesNothing: a dry run reads the cache but leaves
// the state directory as it is.
func TestStatCacheDryRunWritesNothing(t *testing.T) {
	f := newCacheFixture(t)
	f.warm()
	name := filepath.Join(f.stateDir, statCacheFile)
	before := mustRead(t, name)
	a, err := Open(context.Background(), Options{Root: f.root, StateDir: f.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Plan(context.Background(), Move{Steps: f.steps, Source: os.DirFS(f.src), Repair: true, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Drift(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, mustRead(t, name)) {
		t.Error("a dry run or journal drift rewrote the stat cache")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzParseStatCache: the parser never panics, and what save writes
// parses back to the same entries.
func FuzzParseStatCache(f *testing.F) {
	c := &statCache{start: 1796329014779399442, runs: 3, fresh: map[string]statEntry{
		"/etc/motd":   {dev: 65024, ino: 11699715, size: 1024, mtime: 1796328839452117436, ctime: 1796328839452117436, mode: syscall.S_IFREG | 0o644, sum: hex.EncodeToString(make([]byte, 32))},
		"/a b/c d":    {dev: 1, ino: 2, size: 0, mtime: -5, ctime: 7, mode: syscall.S_IFREG | 0o4755, uid: 1000, gid: 1000, sum: strings.Repeat("ab", 32)},
		"/x\nnewline": {sum: strings.Repeat("cd", 32)}, // left out
	}}
	dir := f.TempDir()
	if err := c.save(dir); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, statCacheFile))
	if err != nil {
		f.Fatal(err)
	}
	stamp, runs, m, err := parseStatCache(data)
	if err != nil || stamp != c.start || runs != c.runs || len(m) != 2 || m["/a b/c d"] != c.fresh["/a b/c d"] || m["/etc/motd"] != c.fresh["/etc/motd"] {
		f.Fatalf("round trip: %d %d %v %v", stamp, runs, m, err)
	}
	f.Add(data)
	f.Add([]byte("cairn-statcache 1 5 1\nend 00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		stamp, runs, m, err := parseStatCache(data)
		if err != nil {
			return
		}
		// What parses saves and parses back the same.
		c := &statCache{start: stamp, runs: runs, fresh: m}
		dir := t.TempDir()
		if err := c.save(dir); err != nil {
			t.Fatal(err)
		}
		stamp2, runs2, m2, err := parseStatCache(mustRead(t, filepath.Join(dir, statCacheFile)))
		if err != nil || stamp2 != stamp || runs2 != runs || len(m2) != len(m) {
			t.Fatalf("round trip: %v", err)
		}
		for p, e := range m {
			if m2[p] != e {
				t.Fatalf("round trip of %q: %+v, want %+v", p, m2[p], e)
			}
		}
	})
}

// TestStatCacheDriftSaves: Drift writes the stat cache back only with
// Options.SaveStatCache (the agent's periodic checks); then its next check
// takes the files from it, and still finds drift.
func TestStatCacheDriftSaves(t *testing.T) {
	f := newCacheFixture(t)
	time.Sleep(2 * statMarginFine)
	drift := func(save bool) *statCache {
		t.Helper()
		a, err := Open(context.Background(), Options{Root: f.root, StateDir: f.stateDir, SaveStatCache: save})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := a.Drift(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a.lastStats
	}
	cache := filepath.Join(f.stateDir, statCacheFile)
	os.Remove(cache)
	drift(false)
	if _, err := os.Stat(cache); err == nil {
		t.Fatal("Drift without SaveStatCache wrote the stat cache")
	}
	if c := drift(true); c.hashed.Load() != 3 {
		t.Fatalf("first check: %d hashed; want 3", c.hashed.Load())
	}
	if c := drift(true); c.hits.Load() != 3 || c.hashed.Load() != 0 {
		t.Fatalf("second check: %d from the cache, %d hashed; want 3, 0", c.hits.Load(), c.hashed.Load())
	}
	if err := os.Chmod(f.path("f0"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Open(context.Background(), Options{Root: f.root, StateDir: f.stateDir, SaveStatCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	drifted, err := a.Drift(context.Background())
	if err != nil || len(drifted) != 1 || drifted[0].Step.Object() != "/d/f0" {
		t.Fatalf("drift after a chmod = %v, %v; want /d/f0", drifted, err)
	}
}

// TestStatCacheUnchangedWritesCount: a check that took every file from
// the cache leaves the cache file as it is and writes only its count; the
// full check still comes every Nth time, and a lost count only postpones
// it.
func TestStatCacheUnchangedWritesCount(t *testing.T) {
	f := newCacheFixture(t)
	time.Sleep(2 * statMarginFine)
	cache, runs := filepath.Join(f.stateDir, statCacheFile), filepath.Join(f.stateDir, statRunsFile)
	if c, _ := f.apply(4, true); c.hashed.Load() != 3 {
		t.Fatalf("first check hashed %d; want 3", c.hashed.Load())
	}
	before, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}
	data := mustRead(t, cache)
	for i := range 2 {
		if c, _ := f.apply(4, true); c.hashed.Load() != 0 || c.hits.Load() != 3 {
			t.Fatalf("check %d: %d hashed, %d from the cache; want 0, 3", i+2, c.hashed.Load(), c.hits.Load())
		}
		after, err := os.Stat(cache)
		if err != nil || !os.SameFile(before, after) || !bytes.Equal(mustRead(t, cache), data) {
			t.Fatalf("check %d rewrote the unchanged cache", i+2)
		}
		stamp, _, _, err := parseStatCache(data)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := readStatRuns(f.stateDir, stamp); !ok || got != i+2 {
			t.Fatalf("check %d: count %d, %v; want %d", i+2, got, ok, i+2)
		}
	}
	// The count is lost: the cache's own (1, the first check's) holds, and the full
	// check comes later, but comes.
	if err := os.Remove(runs); err != nil {
		t.Fatal(err)
	}
	var hashed []int64
	for range 4 {
		c, _ := f.apply(4, true)
		hashed = append(hashed, c.hashed.Load())
	}
	if fmt.Sprint(hashed) != "[0 0 3 0]" {
		t.Errorf("hashed per check after the count was lost: %v; want [0 0 3 0]", hashed)
	}
	// Any change of a file rewrites the cache.
	if err := os.WriteFile(f.path("f1"), []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.apply(4, true)
	if bytes.Equal(mustRead(t, cache), data) {
		t.Error("a check that hashed a changed file did not write the cache")
	}
	// ... with the entries it took from the cache: f0 and f2 come from it
	// (f1, written within the racy margin of that check, is hashed).
	if c, _ := f.apply(4, true); c.hits.Load() != 2 || c.hashed.Load() != 1 {
		t.Errorf("after the rewrite: %d from the cache, %d hashed; want 2, 1", c.hits.Load(), c.hashed.Load())
	}
}

// FuzzParseDecimal: parseDecimal reads what strconv.AppendInt writes, and
// anything it reads, strconv.ParseInt reads to the same number.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0", "7", "-7", "007", "+5", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809", "99999999999999999999", "", "-", "1a", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseDecimal(s)
		want, err := strconv.ParseInt(s, 10, 64)
		if ok && (err != nil || got != want) {
			t.Fatalf("parseDecimal(%q) = %d; strconv: %d, %v", s, got, want, err)
		}
		if err == nil && string(strconv.AppendInt(nil, want, 10)) == s && !ok {
			t.Fatalf("parseDecimal(%q) refused what strconv.AppendInt writes", s)
		}
	})
}

// TestDriftOfDirectoriesInCheck: a MKDIR's check, which looks through the
// directories the check holds open, finds a directory changed or replaced.
func TestDriftOfDirectoriesInCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p string) error
	}{
		{"mode", func(p string) error { return os.Chmod(p, 0o700) }},
		{"replaced by a file", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, nil, 0o755)
		}},
		{"removed", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			f.warm()
			if err := tc.change(f.path("sub")); err != nil {
				t.Fatal(err)
			}
			f.wantDriftOf(tc.name, "/d/sub")
		})
	}
}

// TestStatCacheLstatHoldsFewDirs: the check's lstat through the
// directories it holds says what Root.Lstat says, from several goroutines
// at once, and holds checkDirs directories at most, however many it
// looks in.
func TestStatCacheLstatHoldsFewDirs(t *testing.T) {
	tmp, paths := treeOfDirs(t, 3*checkDirs, 4)
	for d := range 3 * checkDirs {
		paths = append(paths, fmt.Sprintf("/d%d", d), fmt.Sprintf("/d%d/missing", d))
	}
	paths = append(paths, "/nowhere/f", "/d1/f1/under-a-file")
	r, err := rootfs.Open(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(ents)
	}
	before := fds()
	c := &statCache{}
	errs := make([]string, len(paths))
	parallel(len(paths), func(i int) {
		got, gerr := c.lstat(r, paths[i])
		want, werr := r.Lstat(paths[i])
		if entryOf(got, "") != entryOf(want, "") || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			errs[i] = fmt.Sprintf("%s: %v, %v; Root.Lstat: %v, %v", paths[i], got, gerr, want, werr)
		}
	})
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	if n := fds(); n > before+checkDirs {
		t.Errorf("%d descriptors open after the lstats, %d before", n, before)
	}
	c.closeDirs()
	if n := fds(); n != before {
		t.Errorf("%d descriptors open after closeDirs, %d before", n, before)
	}
}

// TestStatCacheReadInfoAsRoot: a full check's reads through the
// directories it holds give what Root.ReadInfo gives (the information, the
// content, the error), from several goroutines at once, holding checkDirs
// directories at most; a nil cache reads from the root.
func TestStatCacheReadInfoAsRoot(t *testing.T) {
	tmp, paths := treeOfDirs(t, 2*checkDirs, 3)
	for d := range 2 * checkDirs {
		paths = append(paths, fmt.Sprintf("/d%d/missing", d))
	}
	if err := os.Symlink("f0", filepath.Join(tmp, "d0", "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(tmp, "d1", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "/d0/link", "/d1/fifo", "/d2", "/nowhere/f", "/d1/f1/under-a-file")
	r, err := rootfs.Open(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func(c *statCache, p string) string {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		var info rootfs.Info
		var err error
		if c == nil {
			info, err = r.ReadInfo(p, h, buf)
		} else {
			info, err = c.readInfo(r, p, h, buf)
		}
		return fmt.Sprintf("%v %x %v", entryOf(info, ""), h.Sum(nil), err)
	}
	c := &statCache{full: true}
	errs := make([]string, len(paths))
	parallel(len(paths), func(i int) {
		if got, want := read(c, paths[i]), read(nil, paths[i]); got != want {
			errs[i] = fmt.Sprintf("%s: %s; Root.ReadInfo: %s", paths[i], got, want)
		}
	})
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	held := 0
	for _, dc := range c.dirs {
		for _, d := range dc.dirs {
			if d != nil {
				held++
			}
		}
	}
	if held == 0 || held > checkDirs {
		t.Errorf("%d directories held after the reads, want 1 to %d", held, checkDirs)
	}
	c.closeDirs()
	var none *statCache
	h := sha256.New()
	if info, err := none.readInfo(r, "/d0/f0", h, make([]byte, 4096)); err != nil || info.Size != int64(len("file 0 of 0\n")) ||
		fmt.Sprintf("%x", h.Sum(nil)) != fmt.Sprintf("%x", sha256.Sum256([]byte("file 0 of 0\n"))) {
		t.Errorf("a nil cache: %v, %v, %x", info, err, h.Sum(nil))
	}
}

// treeOfDirs makes dirs directories d0, d1, ... of files files f0, f1, ...
// each, file F of directory D holding "file F of D\n", in a new temporary
// directory, and returns it and the files' object paths.
func treeOfDirs(t *testing.T, dirs, files int) (string, []string) {
	t.Helper()
	tmp := t.TempDir()
	var paths []string
	for d := range dirs {
		dir := filepath.Join(tmp, fmt.Sprintf("d%d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), fmt.Appendf(nil, "file %d of %d\n", f, d), 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, fmt.Sprintf("/d%d/f%d", d, f))
		}
	}
	return tmp, paths
}
