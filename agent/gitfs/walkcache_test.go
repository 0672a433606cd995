package gitfs_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"testing"
)

// TestWalkCached checks that a name looked up in a directory cached
// already (walkCached) answers as a walk from the top does: every name of
// the fixture, and names through links, escapes, loops and submodules, on a
// file system that has read every directory and on a new one per name.
func TestWalkCached(t *testing.T) {
	f := newFixture(t)
	names := []string{
		"site.cairn", "link", "libs", "libs/a.cairn", "libs/up", "libs/new.cairn", "lib/up", "lib/a.cairn",
		"lib/deep-escape", "deep/x/y/z.txt", "deep/x/y", "deep/x/nothing", "site.cairn/x", "nothing/x",
		"order/a/f", "order/a-b", "modlink", "modules/web/mod.cairn", "modules/web/sub/inner.txt",
		"vendor/direct/mod.cairn", "escape", "abs", "dangling", "loop1", "libs/deep-escape", "bin/run.sh", "tool.sh",
	}
	type sumFS interface {
		Sum256(string) ([sha256.Size]byte, error)
	}
	// answers describes what each way of reading name gives.
	answers := func(fsys fs.FS, name string) string {
		var out string
		if fi, err := fs.Stat(fsys, name); err != nil {
			out += fmt.Sprintf("stat: %v\n", err)
		} else {
			out += fmt.Sprintf("stat: %s %v %d %v\n", fi.Name(), fi.Mode(), fi.Size(), fi.Sys())
		}
		if fi, err := fs.Lstat(fsys, name); err != nil {
			out += fmt.Sprintf("lstat: %v\n", err)
		} else {
			out += fmt.Sprintf("lstat: %s %v %d %v\n", fi.Name(), fi.Mode(), fi.Size(), fi.Sys())
		}
		b, err := fs.ReadFile(fsys, name)
		out += fmt.Sprintf("read: %q %v\n", b, err)
		l, err := fs.ReadLink(fsys, name)
		out += fmt.Sprintf("readlink: %q %v\n", l, err)
		sum, err := fsys.(sumFS).Sum256(name)
		out += fmt.Sprintf("sum: %x %v\n", sum, err)
		return out
	}
	for _, rev := range []string{f.c1, f.c2, f.bad} {
		warm := openFS(t, f.dir, rev)
		fs.WalkDir(warm, ".", func(string, fs.DirEntry, error) error { return nil }) //nolint:errcheck // only to fill the cache
		for _, d := range []string{"libs", "lib", "modules/web", "modules/web/sub", "deep/x/y", "site.cairn", "nothing"} {
			fs.ReadDir(warm, d) //nolint:errcheck // errors are cached too
		}
		for _, name := range names {
			want := answers(openFS(t, f.dir, rev), name)
			if got := answers(warm, name); got != want {
				t.Errorf("%s at %.8s: with the directories cached\n%s\nfrom the top\n%s", name, rev, got, want)
			}
		}
	}
}
