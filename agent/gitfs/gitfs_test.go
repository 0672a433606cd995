package gitfs_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/internal/treefs"
)

// run runs git in dir with a fixed identity and no user configuration, and
// returns its trimmed output.
func run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always",
		"-c", "advice.addEmbeddedRepo=false", "-c", "gc.auto=0"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// write creates root/rel with content and mode, making its directories.
func write(t testing.TB, root, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, root, rel, target string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// fixture is a superproject with two commits on main (c1 and c2), a
// submodule "webmod" at modules/web pinned to mc1 of the mod repository,
// an embedded repository at vendor/direct pinned to mc2 with no .gitmodules
// entry, and a branch "bad" (one commit past c2) with broken links.
type fixture struct {
	dir, mod    string
	c1, c2, bad string
	mc1, mc2    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return buildFixture(t, t.TempDir())
}

func buildFixture(t testing.TB, root string) *fixture {
	f := &fixture{dir: filepath.Join(root, "super"), mod: filepath.Join(root, "mod")}

	run(t, root, "init", "-q", "mod")
	write(t, f.mod, "mod.cairn", "mod v1\n", 0o644)
	write(t, f.mod, "sub/inner.txt", "inner v1\n", 0o644)
	run(t, f.mod, "add", "-A")
	run(t, f.mod, "commit", "-q", "-m", "mod one")
	f.mc1 = run(t, f.mod, "rev-parse", "HEAD")
	write(t, f.mod, "mod.cairn", "mod v2\n", 0o644)
	run(t, f.mod, "commit", "-q", "-a", "-m", "mod two")
	f.mc2 = run(t, f.mod, "rev-parse", "HEAD")

	run(t, root, "init", "-q", "super")
	d := f.dir
	write(t, d, "site.cairn", "site v1\n", 0o644)
	write(t, d, "lib/a.cairn", "a v1\n", 0o644)
	write(t, d, "lib/old.cairn", "old\n", 0o644)
	write(t, d, "bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	write(t, d, "tool.sh", "#!/bin/sh\n", 0o644)
	write(t, d, "deep/x/y/z.txt", "deep\n", 0o644)
	write(t, d, "order/a/f", "f\n", 0o644)
	write(t, d, "order/a-b", "1\n", 0o644)
	write(t, d, "order/a.b", "2\n", 0o644)
	write(t, d, "order/a0", "3\n", 0o644)
	symlink(t, d, "link", "site.cairn")
	symlink(t, d, "libs", "lib")
	run(t, d, "add", "-A")
	run(t, d, "commit", "-q", "-m", "one")
	f.c1 = run(t, d, "rev-parse", "HEAD")
	run(t, d, "tag", "v1")

	write(t, d, "site.cairn", "site v2\n", 0o644)
	write(t, d, "lib/new.cairn", "new\n", 0o644)
	if err := os.Remove(filepath.Join(d, "lib/old.cairn")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d, "tool.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, d, "lib/up", "../site.cairn")
	symlink(t, d, "modlink", "modules/web/mod.cairn")
	run(t, d, "submodule", "add", "-q", "--name", "webmod", "../mod", "modules/web")
	run(t, filepath.Join(d, "modules/web"), "checkout", "-q", f.mc1)
	run(t, d, "clone", "-q", "../mod", "vendor/direct")
	run(t, d, "add", "-A")
	run(t, d, "commit", "-q", "-m", "two")
	f.c2 = run(t, d, "rev-parse", "HEAD")
	run(t, d, "tag", "-a", "v2", "-m", "release two")

	run(t, d, "switch", "-q", "-c", "bad")
	symlink(t, d, "escape", "../outside")
	symlink(t, d, "abs", "/etc/passwd")
	symlink(t, d, "dangling", "nothing")
	symlink(t, d, "loop1", "loop2")
	symlink(t, d, "loop2", "loop1")
	symlink(t, d, "lib/deep-escape", "../../x")
	run(t, d, "add", "-A")
	run(t, d, "commit", "-q", "-m", "bad links")
	f.bad = run(t, d, "rev-parse", "HEAD")
	run(t, d, "switch", "-q", "main")
	return f
}

func openFS(t *testing.T, dir, rev string) fs.FS {
	t.Helper()
	r, err := gitfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	fsys, _, err := r.FS(rev)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestOpen(t *testing.T) {
	f := newFixture(t)
	bare := filepath.Join(t.TempDir(), "bare.git")
	run(t, f.dir, "clone", "-q", "--bare", f.dir, bare)
	notRepo := t.TempDir()
	missing := filepath.Join(notRepo, "missing")
	tests := []struct {
		name, dir, wantErr string
	}{
		{"work tree", f.dir, ""},
		{"bare", bare, ""},
		{"submodule work tree with .git file", filepath.Join(f.dir, "modules/web"), ""},
		{"not a repository", notRepo, notRepo + ": not a git repository"},
		{"missing", missing, missing + ": "},
		{"a file", filepath.Join(f.dir, "site.cairn"), filepath.Join(f.dir, "site.cairn") + ": not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := gitfs.Open(tt.dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Open(%s) = %v, want error starting %q", tt.dir, err, tt.wantErr)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	f := newFixture(t)
	r, err := gitfs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A branch whose name is also an abbreviated hash: as in git, the
	// reference wins.
	run(t, f.dir, "branch", f.c1[:8], f.c2)
	tests := []struct {
		rev, want string
	}{
		{f.c1[:8], f.c2},
		{"main", f.c2},
		{"HEAD^{/two}", f.c2},
		{"v2^{}", f.c2},
		{"HEAD", f.c2},
		{"refs/heads/main", f.c2},
		{"heads/main", f.c2},
		{"HEAD~1", f.c1},
		{"main^", f.c1},
		{"main~0", f.c2},
		{"v1", f.c1},
		{"v2", f.c2}, // annotated: peeled to the commit
		{"v2~1", f.c1},
		{"bad", f.bad},
		{"bad~1", f.c2},
		{f.c1, f.c1},
		{f.c1[:7], f.c1},
		{f.c2[:12], f.c2},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			h, err := r.Resolve(tt.rev)
			if err != nil {
				t.Fatal(err)
			}
			if h.String() != tt.want {
				t.Errorf("Resolve(%q) = %s, want %s", tt.rev, h, tt.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	f := newFixture(t)
	r, err := gitfs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, rev := range []string{"nope", "", "HEAD~5", "main^^^", "refs/heads/nope", "v3", "0000000",
		"deadbeefdeadbeefdeadbeefdeadbeefdeadbeef", f.c1[:2], "../HEAD", "main..bad", "main:site.cairn", "HEAD@{1}",
		"HEAD^2", "HEAD~1^", "HEAD^{/no such message}"} {
		t.Run(rev, func(t *testing.T) {
			h, err := r.Resolve(rev)
			if err == nil {
				t.Fatalf("Resolve(%q) = %s, want an error", rev, h)
			}
			if !errors.Is(err, gitfs.ErrUnknownRevision) {
				t.Errorf("Resolve(%q): %v does not wrap ErrUnknownRevision", rev, err)
			}
			prefix := fmt.Sprintf("%s: unknown revision %q", f.dir, rev)
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Resolve(%q) error = %q, want it to start %q", rev, err, prefix)
			}
			if _, _, err := r.FS(rev); !errors.Is(err, gitfs.ErrUnknownRevision) {
				t.Errorf("FS(%q) error = %v, want ErrUnknownRevision", rev, err)
			}
		})
	}
}

// absent marks a file that must not exist at a revision.
const absent = "\x00absent"

func TestContentAtRevision(t *testing.T) {
	f := newFixture(t)
	r, err := gitfs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		rev, name, want string
	}{
		{"v1", "site.cairn", "site v1\n"},
		{"HEAD~1", "site.cairn", "site v1\n"},
		{"main", "site.cairn", "site v2\n"},
		{"HEAD~1", "lib/old.cairn", "old\n"},
		{"HEAD", "lib/old.cairn", absent},
		{"HEAD~1", "lib/new.cairn", absent},
		{"main", "lib/new.cairn", "new\n"},
		{"main", "lib/a.cairn", "a v1\n"},
		{"v1", "deep/x/y/z.txt", "deep\n"},
		{"v1", "link", "site v1\n"},
		{"v2", "link", "site v2\n"},
		{"v1", "libs/a.cairn", "a v1\n"},
		{"v1", "libs/old.cairn", "old\n"},
		{"main", "libs/old.cairn", absent},
		{"main", "lib/up", "site v2\n"},
		{"main", "libs/up", "site v2\n"},
		{"main", "modules/web/mod.cairn", "mod v1\n"}, // the pinned commit, not the submodule's newest
		{"main", "modules/web/sub/inner.txt", "inner v1\n"},
		{"main", "modlink", "mod v1\n"},
		{"main", "vendor/direct/mod.cairn", "mod v2\n"},
		{"v1", "modules/web/mod.cairn", absent},
		{"main", ".gitmodules", "[submodule \"webmod\"]\n\tpath = modules/web\n\turl = ../mod\n"},
	}
	for _, tt := range tests {
		t.Run(tt.rev+":"+tt.name, func(t *testing.T) {
			fsys, _, err := r.FS(tt.rev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.ReadFile(fsys, tt.name)
			if tt.want == absent {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("ReadFile(%s) = %q, %v; want fs.ErrNotExist", tt.name, got, err)
				}
				if _, err := fs.Stat(fsys, tt.name); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%s) error = %v, want fs.ErrNotExist", tt.name, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("ReadFile(%s) = %q, want %q", tt.name, got, tt.want)
			}
			file, err := fsys.Open(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			viaOpen, err := io.ReadAll(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(viaOpen) != tt.want {
				t.Errorf("Open+Read(%s) = %q, want %q", tt.name, viaOpen, tt.want)
			}
		})
	}
}

func TestWorkTreeUntouched(t *testing.T) {
	f := newFixture(t)
	dir := f.dir
	write(t, dir, "site.cairn", "uncommitted\n", 0o644)
	write(t, dir, "untracked.cairn", "untracked\n", 0o644)
	write(t, dir, "modules/web/mod.cairn", "dirty submodule\n", 0o644)
	if err := os.Remove(filepath.Join(dir, "lib/a.cairn")); err != nil {
		t.Fatal(err)
	}
	status := run(t, dir, "status", "--porcelain", "--ignore-submodules=none")
	if status == "" {
		t.Fatal("the work tree should be dirty for this test")
	}
	index, err := os.ReadFile(filepath.Join(dir, ".git/index"))
	if err != nil {
		t.Fatal(err)
	}

	fsys := openFS(t, dir, "HEAD")
	want := map[string]string{
		"site.cairn":            "site v2\n",
		"lib/a.cairn":           "a v1\n",
		"modules/web/mod.cairn": "mod v1\n",
		"untracked.cairn":       absent,
	}
	for name, content := range want {
		got, err := fs.ReadFile(fsys, name)
		if content == absent {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %q, %v; want fs.ErrNotExist", name, got, err)
			}
			continue
		}
		if err != nil || string(got) != content {
			t.Errorf("%s: %q, %v; want %q", name, got, err, content)
		}
	}
	if err := fs.WalkDir(fsys, ".", func(string, fs.DirEntry, error) error { return nil }); err != nil {
		t.Fatal(err)
	}

	index2, err := os.ReadFile(filepath.Join(dir, ".git/index"))
	if err != nil {
		t.Fatal(err)
	}
	if string(index) != string(index2) {
		t.Error("the index changed")
	}
	if after := run(t, dir, "status", "--porcelain", "--ignore-submodules=none"); after != status {
		t.Errorf("git status changed:\nbefore:\n%s\nafter:\n%s", status, after)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "site.cairn")); err != nil || string(b) != "uncommitted\n" {
		t.Errorf("work tree site.cairn = %q, %v", b, err)
	}
}

func TestLinkedWorkTree(t *testing.T) {
	f := newFixture(t)
	wt := filepath.Join(t.TempDir(), "wt")
	run(t, f.dir, "worktree", "add", "-q", "-b", "side", wt, "HEAD~1")
	write(t, wt, "site.cairn", "side\n", 0o644)
	run(t, wt, "commit", "-q", "-a", "-m", "side")
	r, err := gitfs.Open(wt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct{ rev, name, want string }{
		{"HEAD", "site.cairn", "side\n"},
		{"HEAD~1", "site.cairn", "site v1\n"},
		{"main", "site.cairn", "site v2\n"},
		// The linked work tree has no submodule checkout of its own; the
		// common git directory's modules/ has the objects.
		{"main", "modules/web/mod.cairn", "mod v1\n"},
	}
	for _, tt := range tests {
		fsys, _, err := r.FS(tt.rev)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := fs.ReadFile(fsys, tt.name); err != nil || string(b) != tt.want {
			t.Errorf("%s:%s = %q, %v; want %q", tt.rev, tt.name, b, err, tt.want)
		}
	}
}

func TestCloseReleasesFiles(t *testing.T) {
	f := newFixture(t)
	run(t, f.dir, "gc", "-q")
	openFDs := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count open files: %v", err)
		}
		return len(es)
	}
	before := openFDs()
	r, err := gitfs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys, _, err := r.FS("main")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"site.cairn", "lib/a.cairn", "modules/web/mod.cairn"} {
		if _, err := fs.ReadFile(fsys, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(); after != before {
		t.Errorf("%d files open after Close, %d before Open", after, before)
	}
}

func TestNestedSubmodule(t *testing.T) {
	root := t.TempDir()
	run(t, root, "init", "-q", "inner")
	write(t, filepath.Join(root, "inner"), "leaf.cairn", "leaf\n", 0o644)
	run(t, filepath.Join(root, "inner"), "add", "-A")
	run(t, filepath.Join(root, "inner"), "commit", "-q", "-m", "inner")
	run(t, root, "init", "-q", "mid")
	mid := filepath.Join(root, "mid")
	write(t, mid, "mid.cairn", "mid\n", 0o644)
	run(t, mid, "submodule", "add", "-q", "../inner", "in")
	run(t, mid, "add", "-A")
	run(t, mid, "commit", "-q", "-m", "mid")
	run(t, root, "init", "-q", "top")
	top := filepath.Join(root, "top")
	run(t, top, "submodule", "add", "-q", "../mid", "m")
	run(t, top, "commit", "-q", "-m", "top")
	// A clone keeps every submodule's git directory under .git/modules.
	clone := filepath.Join(root, "clone")
	run(t, root, "clone", "-q", "--recurse-submodules", top, clone)
	if _, err := os.Stat(filepath.Join(clone, ".git/modules/m/modules/in")); err != nil {
		t.Fatalf("git did not lay out nested modules as expected: %v", err)
	}
	tests := []struct{ dir, name, want string }{
		{clone, "m/mid.cairn", "mid\n"},
		{clone, "m/in/leaf.cairn", "leaf\n"},
		{top, "m/mid.cairn", "mid\n"},
		// submodule add does not check out the submodule's own submodules.
		{top, "m/in/leaf.cairn", ""},
	}
	for _, tt := range tests {
		b, err := fs.ReadFile(openFS(t, tt.dir, "HEAD"), tt.name)
		if tt.want == "" {
			if !errors.Is(err, gitfs.ErrSubmoduleUnavailable) || !strings.Contains(err.Error(), "submodule m/in (commit ") {
				t.Errorf("%s: %s = %q, %v; want ErrSubmoduleUnavailable naming m/in", tt.dir, tt.name, b, err)
			}
			continue
		}
		if err != nil || string(b) != tt.want {
			t.Errorf("%s: %s = %q, %v; want %q", tt.dir, tt.name, b, err, tt.want)
		}
	}
}

func TestReadDirSorted(t *testing.T) {
	f := newFixture(t)
	fsys := openFS(t, f.dir, "main")
	tests := []struct {
		dir  string
		want []string
	}{
		// Git's tree order is a-b, a.b, a (as "a/"), a0.
		{"order", []string{"a", "a-b", "a.b", "a0"}},
		{".", []string{".gitmodules", "bin", "deep", "lib", "libs", "link", "modlink", "modules", "order", "site.cairn", "tool.sh", "vendor"}},
		{"lib", []string{"a.cairn", "new.cairn", "up"}},
		{"libs", []string{"a.cairn", "new.cairn", "up"}},
		{"modules/web", []string{"mod.cairn", "sub"}},
		{"vendor", []string{"direct"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			es, err := fs.ReadDir(fsys, tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ReadDir(%s) = %q, want %q", tt.dir, got, tt.want)
			}

			// The same, two at a time, from an open directory.
			file, err := fsys.Open(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			d, ok := file.(fs.ReadDirFile)
			if !ok {
				t.Fatalf("Open(%s) is a %T, not an fs.ReadDirFile", tt.dir, file)
			}
			var paged []string
			for {
				es, err := d.ReadDir(2)
				for _, e := range es {
					paged = append(paged, e.Name())
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(es) == 0 {
					t.Fatal("ReadDir(2) returned nothing and no io.EOF")
				}
			}
			if !slices.Equal(paged, tt.want) {
				t.Errorf("ReadDir(2)... of %s = %q, want %q", tt.dir, paged, tt.want)
			}
		})
	}
}

func TestStat(t *testing.T) {
	f := newFixture(t)
	r, err := gitfs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		rev, name string
		lstat     bool
		mode      fs.FileMode
		size      int64 // -1: not checked
	}{
		{"main", ".", false, fs.ModeDir | 0o755, 0},
		{"main", "site.cairn", false, 0o644, 8},
		{"main", "bin/run.sh", false, 0o755, int64(len("#!/bin/sh\necho run\n"))},
		{"HEAD~1", "tool.sh", false, 0o644, 10},
		{"HEAD", "tool.sh", false, 0o755, 10},
		{"main", "lib", false, fs.ModeDir | 0o755, 0},
		{"main", "deep/x/y", false, fs.ModeDir | 0o755, 0},
		{"main", "link", true, fs.ModeSymlink | 0o777, int64(len("site.cairn"))},
		{"main", "link", false, 0o644, 8},
		{"main", "libs", true, fs.ModeSymlink | 0o777, 3},
		{"main", "libs", false, fs.ModeDir | 0o755, 0},
		{"main", "libs/up", true, fs.ModeSymlink | 0o777, int64(len("../site.cairn"))},
		{"main", "libs/up", false, 0o644, 8},
		{"main", "modules/web", false, fs.ModeDir | 0o755, 0},
		{"main", "modules/web", true, fs.ModeDir | 0o755, 0},
		{"main", "modules/web/mod.cairn", false, 0o644, 7},
		{"main", "vendor/direct", false, fs.ModeDir | 0o755, 0},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s:%s:lstat=%v", tt.rev, tt.name, tt.lstat)
		t.Run(name, func(t *testing.T) {
			fsys, _, err := r.FS(tt.rev)
			if err != nil {
				t.Fatal(err)
			}
			var fi fs.FileInfo
			if tt.lstat {
				fi, err = fs.Lstat(fsys, tt.name)
			} else {
				fi, err = fs.Stat(fsys, tt.name)
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tt.mode {
				t.Errorf("mode = %v, want %v", fi.Mode(), tt.mode)
			}
			if fi.IsDir() != tt.mode.IsDir() {
				t.Errorf("IsDir = %v, want %v", fi.IsDir(), tt.mode.IsDir())
			}
			if tt.size >= 0 && fi.Size() != tt.size {
				t.Errorf("size = %d, want %d", fi.Size(), tt.size)
			}
			if fi.Name() != path.Base(tt.name) {
				t.Errorf("name = %q, want %q", fi.Name(), path.Base(tt.name))
			}
			if want := "2024-01-02T03:04:05Z"; fi.ModTime().UTC().Format("2006-01-02T15:04:05Z") != want {
				t.Errorf("mod time = %v, want %s", fi.ModTime(), want)
			}
		})
	}
}

func TestSysObject(t *testing.T) {
	f := newFixture(t)
	fsys := openFS(t, f.dir, "HEAD~1")
	tests := []struct{ name, spec string }{
		{"site.cairn", "HEAD~1:site.cairn"},
		{"lib", "HEAD~1:lib"},
		{".", "HEAD~1^{tree}"},
	}
	for _, tt := range tests {
		fi, err := fs.Stat(fsys, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		obj, ok := fi.Sys().(*gitfs.Object)
		if !ok {
			t.Fatalf("Sys() of %s is %T", tt.name, fi.Sys())
		}
		if want := run(t, f.dir, "rev-parse", tt.spec); obj.Hash.String() != want {
			t.Errorf("%s: hash %s, want %s", tt.name, obj.Hash, want)
		}
	}
}

func TestSymlinks(t *testing.T) {
	f := newFixture(t)
	fsys := openFS(t, f.dir, "bad")
	tests := []struct {
		name, target string
		openErr      string // "" when Open succeeds
		notExist     bool
	}{
		{"link", "site.cairn", "", false},
		{"escape", "../outside", "out of the tree", false},
		{"abs", "/etc/passwd", "out of the tree", false},
		{"lib/deep-escape", "../../x", "out of the tree", false},
		{"dangling", "nothing", "file does not exist", true},
		{"loop1", "loop2", "too many levels of symbolic links", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := fs.ReadLink(fsys, tt.name)
			if err != nil || target != tt.target {
				t.Errorf("ReadLink = %q, %v; want %q", target, err, tt.target)
			}
			fi, err := fs.Lstat(fsys, tt.name)
			if err != nil || fi.Mode().Type() != fs.ModeSymlink {
				t.Errorf("Lstat = %v, %v; want a symlink", fi, err)
			}
			for op, do := range map[string]func() error{
				"Open": func() error {
					f, err := fsys.Open(tt.name)
					if err == nil {
						f.Close()
					}
					return err
				},
				"ReadFile": func() error { _, err := fs.ReadFile(fsys, tt.name); return err },
				"Stat":     func() error { _, err := fs.Stat(fsys, tt.name); return err },
			} {
				err := do()
				if tt.openErr == "" {
					if err != nil {
						t.Errorf("%s: %v", op, err)
					}
					continue
				}
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path != tt.name || !strings.Contains(err.Error(), tt.openErr) {
					t.Errorf("%s error = %v, want a PathError for %s containing %q", op, err, tt.name, tt.openErr)
				}
				if errors.Is(err, fs.ErrNotExist) != tt.notExist {
					t.Errorf("%s error = %v, fs.ErrNotExist %v, want %v", op, err, !tt.notExist, tt.notExist)
				}
			}
		})
	}
	if _, err := fs.ReadLink(fsys, "site.cairn"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink of a regular file: %v, want fs.ErrInvalid", err)
	}
	// WalkDir reports links and does not follow them, so loops are harmless.
	var links []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type() == fs.ModeSymlink {
			links = append(links, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"abs", "dangling", "escape", "lib/deep-escape", "lib/up", "libs", "link", "loop1", "loop2", "modlink"}
	if !slices.Equal(links, want) {
		t.Errorf("links = %q, want %q", links, want)
	}
}

// gitFiles lists every file of rev in repo dir the way git sees it,
// descending into gitlinks through the repositories given by path.
func gitFiles(t *testing.T, dir, rev string, subs map[string]string) []string {
	t.Helper()
	var files []string
	for line := range strings.SplitSeq(run(t, dir, "ls-tree", "-r", "--full-tree", rev), "\n") {
		meta, name, _ := strings.Cut(line, "\t")
		fields := strings.Fields(meta)
		if fields[1] == "commit" {
			for _, sub := range gitFiles(t, subs[name], fields[2], nil) {
				files = append(files, name+"/"+sub)
			}
			continue
		}
		files = append(files, name)
	}
	slices.Sort(files)
	return files
}

func TestWalkDir(t *testing.T) {
	f := newFixture(t)
	subs := map[string]string{"modules/web": f.mod, "vendor/direct": f.mod}
	for _, rev := range []string{"HEAD~1", "main", "bad"} {
		t.Run(rev, func(t *testing.T) {
			fsys := openFS(t, f.dir, rev)
			var files, dirs []string
			err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					dirs = append(dirs, p)
					return nil
				}
				files = append(files, p)
				if d.Type().IsRegular() {
					if _, err := fs.ReadFile(fsys, p); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(files)
			if want := gitFiles(t, f.dir, rev, subs); !slices.Equal(files, want) {
				t.Errorf("files:\n got %q\nwant %q", files, want)
			}
			if !slices.Contains(dirs, "deep/x/y") || slices.Contains(dirs, "libs") {
				t.Errorf("dirs = %q, want deep/x/y and not libs", dirs)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	f := newFixture(t)
	fsys := openFS(t, f.dir, "main")
	tests := []struct {
		pattern string
		want    []string
	}{
		{"*.cairn", []string{"site.cairn"}},
		{"lib/*.cairn", []string{"lib/a.cairn", "lib/new.cairn"}},
		{"*/*/mod.cairn", []string{"modules/web/mod.cairn", "vendor/direct/mod.cairn"}},
	}
	for _, tt := range tests {
		got, err := fs.Glob(fsys, tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Glob(%s) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestSubmoduleUnavailable(t *testing.T) {
	f := newFixture(t)
	// A bare clone has the superproject's objects but no submodule repository.
	bare := filepath.Join(t.TempDir(), "bare.git")
	run(t, f.dir, "clone", "-q", "--bare", f.dir, bare)
	fsys := openFS(t, bare, "main")

	if b, err := fs.ReadFile(fsys, "site.cairn"); err != nil || string(b) != "site v2\n" {
		t.Fatalf("site.cairn = %q, %v", b, err)
	}
	fi, err := fs.Stat(fsys, "modules/web")
	if err != nil || !fi.IsDir() {
		t.Fatalf("Stat(modules/web) = %v, %v; want a directory", fi, err)
	}
	es, err := fs.ReadDir(fsys, "modules")
	if err != nil || len(es) != 1 || es[0].Name() != "web" || !es[0].IsDir() {
		t.Fatalf("ReadDir(modules) = %v, %v", es, err)
	}
	tests := []struct {
		name, sub, commit string
	}{
		{"modules/web/mod.cairn", "modules/web", f.mc1},
		{"modules/web", "modules/web", f.mc1},
		{"modules/web/sub/inner.txt", "modules/web", f.mc1},
		{"vendor/direct/mod.cairn", "vendor/direct", f.mc2},
		{"modlink", "modules/web", f.mc1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := map[string]func() error{
				"Open": func() error {
					f, err := fsys.Open(tt.name)
					if err == nil {
						f.Close()
					}
					return err
				},
				"ReadFile": func() error { _, err := fs.ReadFile(fsys, tt.name); return err },
			}
			if tt.name == tt.sub {
				delete(ops, "ReadFile")
				ops["ReadDir"] = func() error { _, err := fs.ReadDir(fsys, tt.name); return err }
			}
			for op, do := range ops {
				err := do()
				if !errors.Is(err, gitfs.ErrSubmoduleUnavailable) {
					t.Fatalf("%s(%s) error = %v, want ErrSubmoduleUnavailable", op, tt.name, err)
				}
				want := fmt.Sprintf("submodule %s (commit %s)", tt.sub, tt.commit)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s(%s) error = %q, want it to contain %q", op, tt.name, err, want)
				}
			}
		})
	}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error { return err })
	if !errors.Is(err, gitfs.ErrSubmoduleUnavailable) {
		t.Errorf("WalkDir error = %v, want ErrSubmoduleUnavailable", err)
	}
}

func TestSubmoduleCommitMissing(t *testing.T) {
	f := newFixture(t)
	// A plain clone, whose modules/webmod is an empty repository: found,
	// but without the pinned commit.
	clone := filepath.Join(t.TempDir(), "clone")
	run(t, f.dir, "clone", "-q", f.dir, clone)
	run(t, clone, "init", "-q", "--bare", ".git/modules/webmod")
	run(t, clone, "--git-dir=.git/modules/webmod", "symbolic-ref", "HEAD", "refs/heads/main")
	fsys := openFS(t, clone, "main")
	_, err := fs.ReadFile(fsys, "modules/web/mod.cairn")
	if !errors.Is(err, gitfs.ErrSubmoduleUnavailable) {
		t.Fatalf("error = %v, want ErrSubmoduleUnavailable", err)
	}
	for _, want := range []string{"submodule modules/web (commit " + f.mc1 + ")", "commit missing from " + filepath.Join(clone, ".git/modules/webmod")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %q", err, want)
		}
	}
}

func TestPathErrors(t *testing.T) {
	f := newFixture(t)
	fsys := openFS(t, f.dir, "main")
	ops := map[string]func(name string) error{
		"Open": func(n string) error {
			f, err := fsys.Open(n)
			if err == nil {
				f.Close()
			}
			return err
		},
		"ReadFile": func(n string) error { _, err := fs.ReadFile(fsys, n); return err },
		"ReadDir":  func(n string) error { _, err := fs.ReadDir(fsys, n); return err },
		"Stat":     func(n string) error { _, err := fs.Stat(fsys, n); return err },
		"Lstat":    func(n string) error { _, err := fs.Lstat(fsys, n); return err },
		"ReadLink": func(n string) error { _, err := fs.ReadLink(fsys, n); return err },
	}
	tests := []struct {
		name string
		want error
	}{
		{"/site.cairn", fs.ErrInvalid},
		{"../site.cairn", fs.ErrInvalid},
		{"lib/../site.cairn", fs.ErrInvalid},
		{"./site.cairn", fs.ErrInvalid},
		{"", fs.ErrInvalid},
		{"lib/", fs.ErrInvalid},
		{"lib//a.cairn", fs.ErrInvalid},
		{"nope", fs.ErrNotExist},
		{"lib/nope", fs.ErrNotExist},
		{"nope/deeper", fs.ErrNotExist},
		{"site.cairn/x", fs.ErrNotExist},
		{"link/x", fs.ErrNotExist},
		{"modules/web/nope", fs.ErrNotExist},
	}
	for _, tt := range tests {
		for op, do := range ops {
			t.Run(op+":"+tt.name, func(t *testing.T) {
				err := do(tt.name)
				var pe *fs.PathError
				if !errors.Is(err, tt.want) || !errors.As(err, &pe) || pe.Path != tt.name {
					t.Errorf("%s(%q) = %v, want a PathError for the name wrapping %v", op, tt.name, err, tt.want)
				}
			})
		}
	}
	if _, err := fs.ReadFile(fsys, "lib"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	if _, err := fs.ReadDir(fsys, "site.cairn"); err == nil {
		t.Error("ReadDir of a file succeeded")
	}
}

func TestFSTest(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		rev   string
		files []string
	}{
		{"HEAD~1", []string{"site.cairn", "lib/a.cairn", "lib/old.cairn", "bin/run.sh", "deep/x/y/z.txt", "order/a/f", "link", "libs"}},
		{"main", []string{"site.cairn", "lib/new.cairn", "modules/web/mod.cairn", "modules/web/sub/inner.txt", "vendor/direct/mod.cairn", "modlink"}},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			if err := fstest.TestFS(openFS(t, f.dir, tt.rev), tt.files...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConcurrentReads(t *testing.T) {
	f := newFixture(t)
	r, err := gitfs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func(fsys fs.FS) (map[string]string, error) {
		got := map[string]string{}
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			got[p] = string(b)
			return err
		})
		return got, err
	}
	fsys, _, err := r.FS("main")
	if err != nil {
		t.Fatal(err)
	}
	want, err := read(fsys)
	if err != nil {
		t.Fatal(err)
	}
	// Fresh file systems, one shared and others per goroutine, over one Repo.
	shared, _, err := r.FS("main")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]map[string]string, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() {
			fsys := shared
			if i%2 == 1 {
				if fsys, _, errs[i] = r.FS("main"); errs[i] != nil {
					return
				}
			}
			results[i], errs[i] = read(fsys)
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if len(results[i]) != len(want) {
			t.Fatalf("goroutine %d read %d files, want %d", i, len(results[i]), len(want))
		}
		for p, c := range want {
			if results[i][p] != c {
				t.Errorf("goroutine %d: %s = %q, want %q", i, p, results[i][p], c)
			}
		}
	}
}

// BenchmarkReadTree reads every file of a commit of 10,000 files in 500
// directories through a fresh file system each time, from loose objects
// (as after local commits) and from a packfile (as after a clone or gc).
func BenchmarkReadTree(b *testing.B) {
	dir := b.TempDir()
	run(b, dir, "init", "-q", ".")
	for d := range 500 {
		for i := range 20 {
			write(b, dir, fmt.Sprintf("d%03d/f%02d.cairn", d, i), fmt.Sprintf("file %d %d\n", d, i), 0o644)
		}
	}
	run(b, dir, "add", "-A")
	run(b, dir, "commit", "-q", "-m", "many")
	b.Run("loose", func(b *testing.B) { benchRead(b, dir) })
	run(b, dir, "gc", "-q", "--prune=now")
	b.Run("packed", func(b *testing.B) { benchRead(b, dir) })
}

func benchRead(b *testing.B, dir string) {
	r, err := gitfs.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		fsys, _, err := r.FS("HEAD")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			n++
			_, err = fs.ReadFile(fsys, p)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != 10000 {
			b.Fatalf("read %d files, want 10000", n)
		}
	}
}

// TestSum256 checks the sums the compiler asks for (compiler.SumFS): equal
// to the sha256 of the content, links followed, anything but a regular file
// refused as opening it would be, and a blob hashed once is not read again,
// even at another commit (its loose object is removed before the second
// commit is asked).
func TestSum256(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, "init", "-q")
	write(t, dir, "files/a.conf", "alpha sum256 test "+t.Name()+"\n", 0o644)
	write(t, dir, "files/run.sh", "#!/bin/sh\n", 0o755)
	symlink(t, dir, "files/link", "a.conf")
	symlink(t, dir, "escape", "../x")
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-q", "-m", "one")
	write(t, dir, "other", "two\n", 0o644)
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-q", "-m", "two")

	var _ compiler.SumFS = openFS(t, dir, "HEAD~1").(compiler.SumFS)
	sumOf := func(fsys fs.FS, name string) ([sha256.Size]byte, error) {
		return fsys.(compiler.SumFS).Sum256(name)
	}
	first := openFS(t, dir, "HEAD~1")
	for _, name := range []string{"files/a.conf", "files/run.sh", "files/link"} {
		data, err := fs.ReadFile(first, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sumOf(first, name)
		if err != nil || got != sha256.Sum256(data) {
			t.Errorf("Sum256(%s) = %x, %v; want %x", name, got, err, sha256.Sum256(data))
		}
	}
	for name, want := range map[string]error{
		"files":   treefs.ErrNotRegular,
		".":       treefs.ErrNotRegular,
		"missing": fs.ErrNotExist,
		"escape":  treefs.ErrLinkEscapes,
		"../x":    fs.ErrInvalid,
	} {
		if _, err := sumOf(first, name); !errors.Is(err, want) {
			t.Errorf("Sum256(%s) = %v; want %v", name, err, want)
		}
	}

	blob := run(t, dir, "rev-parse", "HEAD:files/a.conf")
	if err := os.Remove(filepath.Join(dir, ".git", "objects", blob[:2], blob[2:])); err != nil {
		t.Fatal(err)
	}
	second := openFS(t, dir, "HEAD")
	if _, err := fs.ReadFile(second, "files/a.conf"); err == nil {
		t.Fatal("the blob is still readable: the test proves nothing")
	}
	got, err := sumOf(second, "files/a.conf")
	if want := sha256.Sum256([]byte("alpha sum256 test " + t.Name() + "\n")); err != nil || got != want {
		t.Errorf("Sum256 of a blob summed at the commit before = %x, %v; want %x from the cache", got, err, want)
	}
}
