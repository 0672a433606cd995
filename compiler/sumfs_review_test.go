package compiler_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plainFS hides Sum256 (compiler.SumFS) of a git revision and keeps the
// rest, so the compiler hashes sources the way it did before SumFS.
type plainFS struct{ fsys fs.FS }

func (p plainFS) Open(name string) (fs.File, error)          { return p.fsys.Open(name) }
func (p plainFS) ReadFile(name string) ([]byte, error)       { return fs.ReadFile(p.fsys, name) }
func (p plainFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(p.fsys, name) }
func (p plainFS) Stat(name string) (fs.FileInfo, error)      { return fs.Stat(p.fsys, name) }
func (p plainFS) ReadLink(name string) (string, error)       { return fs.ReadLink(p.fsys, name) }
func (p plainFS) Lstat(name string) (fs.FileInfo, error)     { return fs.Lstat(p.fsys, name) }

// TestBrokenSourcesSameEverywhere: a source or playbook that is missing, a
// directory, a link loop, a dangling link, a path through a file, or a link
// to a directory is refused with the same error whether the configuration
// is a directory on disk, a git revision (Sum256), or a git revision read
// without Sum256.
func TestBrokenSourcesSameEverywhere(t *testing.T) {
	cases := []brokenCase{
		{"missing", "file \"/srv/c\" {\n  source = \"nope\"\n}\n", nil},
		{"directory", "file \"/srv/c\" {\n  source = \"files\"\n}\n", nil},
		{"loop", "file \"/srv/c\" {\n  source = \"la\"\n}\n", map[string]string{"la": "lb", "lb": "la"}},
		{"dangling link", "file \"/srv/c\" {\n  source = \"dl\"\n}\n", map[string]string{"dl": "nope"}},
		{"link to a directory", "file \"/srv/c\" {\n  source = \"ld\"\n}\n", map[string]string{"ld": "files"}},
		{"unit source directory", "unit \"x.service\" {\n  source = \"files\"\n}\n", nil},
		{"playbook missing", "playbook \"p.yml\" {}\n", nil},
		{"playbook directory", "playbook \"files\" {}\n", nil},
		{"kube missing file inside is fine, dir missing", "kube \"nok\" {}\n", nil},
		{"kube loop", "kube \"la\" {}\n", map[string]string{"la": "lb", "lb": "la"}},
	}
	sameEverywhere(t, cases)
}

// TestPathThroughAFileSameEverywhere: a source, file(), template, include,
// playbook or kube path that goes through a regular file (files/a/x) is
// refused alike from a directory and from a git revision. It is not, from
// before SumFS: a directory said "not a directory" (ENOTDIR), git
// "missing"; both say missing now (compiler's missing).
func TestPathThroughAFileSameEverywhere(t *testing.T) {
	cases := []brokenCase{
		{"through a file", "file \"/srv/c\" {\n  source = \"files/a/x\"\n}\n", nil},
		{"file() through a file", "file \"/srv/c\" {\n  content = file(\"files/a/x\")\n}\n", nil},
		{"template through a file", "file \"/srv/c\" {\n  template = \"files/a/x\"\n}\n", nil},
		{"include through a file", "include \"files/a/x\" {}\n", nil},
		{"playbook through a file", "playbook \"files/a/x\" {}\n", nil},
		{"kube through a file", "kube \"files/a/x\" {}\n", nil},
	}
	sameEverywhere(t, cases)
}

type brokenCase struct {
	name, config string
	links        map[string]string
}

func sameEverywhere(t *testing.T, cases []brokenCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "config")
			writeTree(t, dir, map[string]string{"site.cairn": tc.config, "files/a": "A\n"})
			for name, target := range tc.links {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			_, derr := compileDir(t, dir, filepath.Join(top, "b1"))
			g := gitRevision(t, dir)
			_, gerr := compileGit(g, filepath.Join(top, "b2"))
			_, perr := compileGit(plainFS{g}, filepath.Join(top, "b3"))
			if derr == nil || gerr == nil || perr == nil {
				t.Fatalf("want an error three ways; directory: %v; git: %v; git without Sum256: %v", derr, gerr, perr)
			}
			if derr.Error() != gerr.Error() || gerr.Error() != perr.Error() {
				t.Errorf("the three refuse differently:\ndirectory: %v\ngit:       %v\nno Sum256: %v", derr, gerr, perr)
			}
		})
	}
}

// TestSubmoduleSourceSameWithSum256: a COPY source that is a submodule whose
// objects are not there is refused with the error the compiler gave before
// Sum256 (by opening it).
func TestSubmoduleSourceSameWithSum256(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "config")
	writeTree(t, dir, map[string]string{"site.cairn": "file \"/srv/c\" {\n  source = \"sub\"\n}\n"})
	sub := filepath.Join(dir, "sub")
	writeTree(t, sub, map[string]string{"f": "F\n"})
	commitAll(t, sub)
	g := gitRevision(t, dir) // records sub as a gitlink
	// Its objects are nowhere now.
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	_, gerr := compileGit(g, filepath.Join(top, "b2"))
	_, perr := compileGit(plainFS{g}, filepath.Join(top, "b3"))
	if gerr == nil || perr == nil {
		t.Fatalf("want errors; git: %v; without Sum256: %v", gerr, perr)
	}
	t.Logf("with: %v\nwithout: %v", gerr, perr)
	if gerr.Error() != perr.Error() {
		t.Errorf("Sum256 changes the error:\nwith:    %v\nwithout: %v", gerr, perr)
	}
	if !strings.Contains(gerr.Error(), "sub") {
		t.Errorf("error does not name the source: %v", gerr)
	}
}
