package compiler_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/compiler"
)

// secretText is what the file outside the configuration holds: no error
// and no journal may show it.
const secretText = "root:$6$SECRET-OUTSIDE:19000:0:99999:7:::"

// gitRevision commits dir to a repository of its own and returns the
// revision's file system.
func gitRevision(t *testing.T, dir string) fs.FS {
	t.Helper()
	commitAll(t, dir)
	r, err := gitfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	fsys, _, err := r.FS("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// commitAll makes dir a repository of its own and commits all it holds.
func commitAll(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "config"}} {
		cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// compileGit compiles a git revision's file system for web-01.
func compileGit(fsys fs.FS, blobDir string) (*compiler.Result, error) {
	return compiler.Compile(context.Background(), fsys, compiler.Options{
		Host:  "web-01",
		Facts: map[string]string{"release": "12", "codename": "bookworm", "arch": "amd64"},
		Blobs: blobsAt(blobDir),
		Env:   []string{"PATH=/usr/bin:/bin"},
	})
}

// TestLinksOutOfTheConfiguration: each way the compiler reads a file (a
// top-level file, include, source, file(), template, module, kube, playbook)
// refuses a link that leads out of the configuration, absolute or
// relative, with the error a git revision of the same tree gives, word for
// word; neither shows a byte of what lies outside. The same entry points
// through links that stay inside compile, to the same journal both ways.
func TestLinksOutOfTheConfiguration(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		links map[string]string // name -> target; OUT is the secret outside, OUTDIR its directory
		want  string            // the error, both ways; "" for a journal
	}{
		{"source absolute", map[string]string{"site.cairn": "file \"/srv/copy\" {\n  source = \"s\"\n}\n"},
			map[string]string{"s": "OUT"}, `site.cairn:2:12: file "/srv/copy": s: symbolic link leads out of the tree`},
		{"source relative", map[string]string{"site.cairn": "file \"/srv/copy\" {\n  source = \"files/s\"\n}\n"},
			map[string]string{"files/s": "../../outside/shadow"}, `site.cairn:2:12: file "/srv/copy": files/s: symbolic link leads out of the tree`},
		{"source through a directory link", map[string]string{"site.cairn": "file \"/srv/copy\" {\n  source = \"d/shadow\"\n}\n"},
			map[string]string{"d": "OUTDIR"}, `site.cairn:2:12: file "/srv/copy": d/shadow: symbolic link leads out of the tree`},
		{"file()", map[string]string{"site.cairn": "file \"/srv/copy\" {\n  content = file(\"s\")\n}\n"},
			map[string]string{"s": "OUT"}, `site.cairn:2:18: file("s"): s: symbolic link leads out of the tree`},
		{"include", map[string]string{"site.cairn": "include \"s\" {}\n"},
			map[string]string{"s": "OUT"}, `site.cairn:1:9: include "s": s: symbolic link leads out of the tree`},
		{"include pattern", map[string]string{"site.cairn": "include \"inc/*.cairn\" {}\n", "inc/a.cairn": "dir \"/a\" {}\n"},
			map[string]string{"inc/b.cairn": "../../outside/shadow"}, `site.cairn:1:9: include "inc/*.cairn": inc/b.cairn: symbolic link leads out of the tree`},
		{"include pattern through a directory link", map[string]string{"site.cairn": "include \"mods/*/*\" {}\n", "mods/ok/a.cairn": "dir \"/a\" {}\n"},
			map[string]string{"mods/evil": "OUTDIR"}, `site.cairn:1:9: include "mods/*/*": mods/evil: symbolic link leads out of the tree`},
		{"top-level file", map[string]string{"site.cairn": "dir \"/a\" {}\n"},
			map[string]string{"evil.cairn": "OUT"}, `evil.cairn:1:1: cannot read: symbolic link leads out of the tree`},
		{"template", map[string]string{"site.cairn": "file \"/srv/copy\" {\n  template = \"t\"\n}\n"},
			map[string]string{"t": "OUT"}, `site.cairn:2:14: file "/srv/copy": t: symbolic link leads out of the tree`},
		{"module", map[string]string{"site.cairn": "module \"m\" {\n  source = \"m\"\n}\n", "../outside/main.cairn": "dir \"/m\" {}\n"},
			map[string]string{"m": "OUTDIR"}, `site.cairn:2:12: module "m": m: symbolic link leads out of the tree`},
		{"kube", map[string]string{"site.cairn": "kube \"k\" {}\n"},
			map[string]string{"k": "OUTDIR"}, `site.cairn:1:6: kube "k": k: symbolic link leads out of the tree`},
		{"playbook", map[string]string{"site.cairn": "playbook \"p.yml\" {}\n"},
			map[string]string{"p.yml": "OUT"}, `site.cairn:1:10: playbook "p.yml": p.yml: symbolic link leads out of the tree`},
		{"link to an absolute path inside", map[string]string{"site.cairn": "file \"/srv/copy\" {\n  source = \"s\"\n}\n", "files/a": "A"},
			map[string]string{"s": "ABS:files/a"}, `site.cairn:2:12: file "/srv/copy": s: symbolic link leads out of the tree`},
		{"links inside", map[string]string{
			"site.cairn": "include \"inc.link\" {}\nfile \"/srv/a\" {\n  source = \"s\"\n}\nfile \"/srv/b\" {\n  content = file(\"files/../s\")\n}\n" +
				"file \"/srv/c\" {\n  template = \"tl\"\n}\nmodule \"m\" {\n  source = \"ml\"\n}\n",
			"real/inc.cairn": "dir \"/inc\" {}\n", "files/a": "A", "real/t.tmpl": "{{.fact.hostname}}\n", "mods/m/main.cairn": "dir \"/m\" {}\n"},
			map[string]string{"inc.link": "real/inc.cairn", "s": "files/a", "tl": "real/t.tmpl", "ml": "mods/m", "files/up": "../s"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "config")
			outside := filepath.Join(top, "outside")
			writeTree(t, outside, map[string]string{"shadow": secretText + "\n"})
			writeTree(t, dir, tc.files)
			for name, target := range tc.links {
				switch {
				case target == "OUT":
					target = filepath.Join(outside, "shadow")
				case target == "OUTDIR":
					target = outside
				case strings.HasPrefix(target, "ABS:"):
					target = filepath.Join(dir, strings.TrimPrefix(target, "ABS:"))
				}
				p := filepath.Join(dir, filepath.FromSlash(name))
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			}
			blobs := filepath.Join(top, "blobs")
			res, err := compileDir(t, dir, blobs)
			gres, gerr := compileGit(gitRevision(t, dir), filepath.Join(top, "gblobs"))
			for how, e := range map[string]error{"directory": err, "git": gerr} {
				if e != nil && strings.Contains(e.Error(), "SECRET") {
					t.Errorf("compiling the %s shows the file outside:\n%v", how, e)
				}
			}
			if tc.want == "" {
				if err != nil || gerr != nil {
					t.Fatalf("want a journal; directory: %v; git: %v", err, gerr)
				}
				if a, b := string(res.Journal()), string(gres.Journal()); a != b {
					t.Errorf("the directory compiles to\n%s\ngit to\n%s", a, b)
				}
				return
			}
			if err == nil || gerr == nil {
				t.Fatalf("want %q both ways; directory: %v; git: %v", tc.want, err, gerr)
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if first != tc.want {
				t.Errorf("directory: %s\nwant       %s", first, tc.want)
			}
			if err.Error() != gerr.Error() {
				t.Errorf("the directory and the git revision refuse differently:\n%v\n--- git:\n%v", err, gerr)
			}
			if entries, _ := os.ReadDir(blobs); len(entries) > 0 {
				for _, e := range entries {
					data, _ := os.ReadFile(filepath.Join(blobs, e.Name()))
					if strings.Contains(string(data), "SECRET") {
						t.Errorf("blob %s holds the file outside", e.Name())
					}
				}
			}
		})
	}
}

// TestNonRegularInputs: a FIFO (or a socket, or a device) as a top-level
// file, an include, a source, a file() argument, a template, a playbook or
// a file of a kube directory is refused at once with an error naming the
// file and the place that names it: the compile never blocks on it.
func TestNonRegularInputs(t *testing.T) {
	cases := []struct {
		name, config, fifo, want string
	}{
		{"top-level file", "dir \"/a\" {}\n", "z.cairn", `z.cairn:1:1: cannot read: not a regular file`},
		{"include", "include \"f.cairn\" {}\n", "f.cairn", `f.cairn:1:1: cannot read: not a regular file`},
		{"include pattern", "include \"inc/*\" {}\n", "inc/f", `inc/f:1:1: cannot read: not a regular file`},
		{"source", "file \"/srv/copy\" {\n  source = \"f\"\n}\n", "f", `site.cairn:2:12: file "/srv/copy": f is not a regular file`},
		{"file()", "file \"/srv/copy\" {\n  content = file(\"f\")\n}\n", "f", `site.cairn:2:18: file("f"): f: not a regular file`},
		{"template", "file \"/srv/copy\" {\n  template = \"f\"\n}\n", "f", `site.cairn:2:14: file "/srv/copy": templates/f is not a regular file`},
		{"playbook", "playbook \"f\" {}\n", "f", `site.cairn:1:10: playbook "f": f is not a regular file`},
		{"through a link", "file \"/srv/copy\" {\n  content = file(\"l\")\n}\n", "f", `site.cairn:2:18: file("l"): l: not a regular file`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"site.cairn": tc.config})
			p := filepath.Join(dir, filepath.FromSlash(tc.fifo))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Symlink(tc.fifo, filepath.Join(dir, "l"))
			_, err := compileWithin(t, 10*time.Second, dir)
			want := strings.Replace(tc.want, "templates/f", "f", 1)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant %s", err, want)
			}
		})
	}
}

// compileWithin compiles dir as compileDir does, failing the test if the
// compile takes longer than d (it is then left running).
func compileWithin(t *testing.T, d time.Duration, dir string) (*compiler.Result, error) {
	t.Helper()
	type result struct {
		res *compiler.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := compiler.Compile(context.Background(), nil, compiler.Options{
			Host:  "web-01",
			Facts: map[string]string{"release": "12", "codename": "bookworm", "arch": "amd64"},
			Dir:   dir,
			Blobs: compiler.BlobDir(filepath.Join(dir, ".cairn", "blobs")),
			Env:   []string{"PATH=/usr/bin:/bin"},
		})
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-time.After(d):
		t.Fatalf("the compile of %s still runs after %v", dir, d)
	}
	return nil, nil
}

// deniedFS is a configuration whose file denied cannot be opened, as a
// file the compiling user may not read.
type deniedFS struct {
	fstest.MapFS
	denied string
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if name == d.denied {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	return d.MapFS.Open(name)
}

// TestUnreadableSourceNamedOnce: a source file that cannot be read is
// reported at the place that names it, with the file's name once and
// the reason (root reads every file on disk, so the test denies it in
// its own file system).
func TestUnreadableSourceNamedOnce(t *testing.T) {
	fsys := deniedFS{MapFS: fstest.MapFS{
		"site.cairn": {Data: []byte("file \"/srv/copy\" {\n  source = \"files/s\"\n}\n")},
		"files/s":    {Data: []byte("secret\n")},
	}, denied: "files/s"}
	_, err := compiler.Compile(context.Background(), fsys, compiler.Options{Host: "web-01"})
	want := `site.cairn:2:12: file "/srv/copy": files/s: permission denied`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	if n := strings.Count(first, "files/s"); n != 1 {
		t.Errorf("the error names files/s %d times, want once: %s", n, first)
	}
}
