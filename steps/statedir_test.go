package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// stateApply opens the state (stateDir "" is the default beneath the root)
// and applies the lines to root.
func stateApply(t *testing.T, rootDir, stateDir string, lines ...string) error {
	t.Helper()
	root, err := rootfs.Open(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	steps, err := journal.ParseSteps("t.journal", lines)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(context.Background(), Options{Root: root, StateDir: stateDir, Create: true})
	if err != nil {
		return err
	}
	defer a.Close()
	_, err = a.Apply(context.Background(), Move{Journal: "t.journal", Steps: steps})
	return err
}

// wantRefused checks that err is exit 2 and says each of want.
func wantRefused(t *testing.T, err error, want ...string) {
	t.Helper()
	if ExitCode(err) != ExitBadInput {
		t.Fatalf("got %v (exit %d), want a refusal (exit 2)", err, ExitCode(err))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal does not say %q:\n%v", w, err)
		}
	}
}

// snapOf snapshots a tree, failing the test on error.
func snapOf(t *testing.T, dir string) TreeSnap {
	t.Helper()
	snap, err := SnapTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestDefaultStateBeneathRoot: the default state directory resolves beneath
// the root like every object path: a link out of the root is followed
// beneath it (and refused where nothing is there), never out; a link that
// stays inside works; a file in the way is refused. A refusal touches
// nothing, in or out of the root.
func TestDefaultStateBeneathRoot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links map[string]string // beneath the root; "$OUT" is the outside directory
		dirs  []string          // beneath the root
		files []string          // beneath the root
		state string            // where the state lands beneath the root; "" refused
		want  []string          // what the refusal says
	}{
		{name: "no var", state: "/var/lib/cairn"},
		{name: "var a link out of the root", links: map[string]string{"var": "$OUT"},
			want: []string{"/var (a link to $OUT)", "does not resolve to a directory beneath the root"}},
		{name: "var a relative link out of the root", links: map[string]string{"var": "../../../../../../out"},
			want: []string{"/var (a link to ../../../../../../out)", "does not resolve"}},
		{name: "the state a link to a directory outside", dirs: []string{"var/lib"}, links: map[string]string{"var/lib/cairn": "$OUT"},
			want: []string{"/var/lib/cairn (a link to $OUT)"}},
		{name: "var a link inside the root", dirs: []string{"data/var"}, links: map[string]string{"var": "/data/var"}, state: "/data/var/lib/cairn"},
		{name: "the state a relative link inside the root", dirs: []string{"var/lib", "srv/state"}, links: map[string]string{"var/lib/cairn": "../../srv/state"}, state: "/srv/state"},
		{name: "var a file", files: []string{"var"}, want: []string{"/var is not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			rootDir, out := filepath.Join(base, "root"), filepath.Join(base, "out")
			for _, d := range append([]string{"."}, tc.dirs...) {
				if err := os.MkdirAll(filepath.Join(rootDir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(filepath.Join(out, "lib", "cairn"), 0o700); err != nil {
				t.Fatal(err)
			}
			// What an earlier cairn (or anyone) left outside must stay.
			for _, f := range []string{"lock", "lib/cairn/lock"} {
				if err := os.WriteFile(filepath.Join(out, f), []byte("precious\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(rootDir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for p, target := range tc.links {
				if err := os.Symlink(strings.ReplaceAll(target, "$OUT", out), filepath.Join(rootDir, p)); err != nil {
					t.Fatal(err)
				}
			}
			outBefore, rootBefore := snapOf(t, out), snapOf(t, rootDir)
			err := stateApply(t, rootDir, "", "MKDIR /srv")
			if d := DiffTrees(outBefore, snapOf(t, out), 10); len(d) > 0 {
				t.Errorf("the directory outside the root changed:\n%s", strings.Join(d, "\n"))
			}
			if tc.state == "" {
				var want []string
				for _, w := range tc.want {
					want = append(want, strings.ReplaceAll(w, "$OUT", out))
				}
				wantRefused(t, err, want...)
				if d := DiffTrees(rootBefore, snapOf(t, rootDir), 10); len(d) > 0 {
					t.Errorf("a refusal changed the root:\n%s", strings.Join(d, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if _, err := os.Stat(filepath.Join(rootDir, tc.state, "applied.json")); err != nil {
				t.Errorf("the state is not at %s beneath the root: %v", tc.state, err)
			}
		})
	}
}

// TestStateOwnership: a state directory that is a link, that another user
// owns, or that others may write is refused before any file in it is
// opened; so is a lock file that is not cairn's.
func TestStateOwnership(t *testing.T) {
	for _, tc := range []struct {
		name    string
		root    bool // needs root
		prepare func(t *testing.T, state, elsewhere string)
		want    string
	}{
		{"a link", false, func(t *testing.T, state, elsewhere string) {
			must(t, os.Symlink(elsewhere, state))
		}, "is a symbolic link"},
		{"writable by others", false, func(t *testing.T, state, _ string) {
			must(t, os.Mkdir(state, 0o700))
			must(t, os.Chmod(state, 0o777))
		}, "writable by its group or others (mode 0777)"},
		{"writable by its group", false, func(t *testing.T, state, _ string) {
			must(t, os.Mkdir(state, 0o700))
			must(t, os.Chmod(state, 0o770))
		}, "mode 0770"},
		{"another user's", true, func(t *testing.T, state, _ string) {
			must(t, os.Mkdir(state, 0o700))
			must(t, os.Chown(state, 1000, 1000))
		}, "owned by uid 1000"},
		{"a lock that is a link", false, func(t *testing.T, state, elsewhere string) {
			must(t, os.Mkdir(state, 0o700))
			must(t, os.Symlink(filepath.Join(elsewhere, "precious"), filepath.Join(state, "lock")))
		}, "is a symbolic link"},
		{"a lock with another link", false, func(t *testing.T, state, elsewhere string) {
			must(t, os.Mkdir(state, 0o700))
			must(t, os.Link(filepath.Join(elsewhere, "precious"), filepath.Join(state, "lock")))
		}, "is not cairn's"},
		{"a lock of another user", true, func(t *testing.T, state, _ string) {
			must(t, os.Mkdir(state, 0o700))
			must(t, os.WriteFile(filepath.Join(state, "lock"), []byte("1\n"), 0o600))
			must(t, os.Chown(filepath.Join(state, "lock"), 1000, 1000))
		}, "is not cairn's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a file to another user")
			}
			base := t.TempDir()
			rootDir, state, elsewhere := filepath.Join(base, "root"), filepath.Join(base, "state"), filepath.Join(base, "elsewhere")
			must(t, os.Mkdir(rootDir, 0o755))
			must(t, os.Mkdir(elsewhere, 0o700))
			must(t, os.WriteFile(filepath.Join(elsewhere, "precious"), []byte("precious\n"), 0o600))
			tc.prepare(t, state, elsewhere)
			before := snapOf(t, base)
			wantRefused(t, stateApply(t, rootDir, state, "MKDIR /srv"), state, tc.want)
			if d := DiffTrees(before, snapOf(t, base), 10); len(d) > 0 {
				t.Errorf("the refusal changed something:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStateModesUnderUmask: the directories cairn makes for its state get
// their documented modes (0755 for parents, 0700 for the state and its
// blob store), whatever the umask.
func TestStateModesUnderUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	base := t.TempDir()
	rootDir := filepath.Join(base, "root")
	must(t, os.Mkdir(rootDir, 0o755))
	explicit := filepath.Join(base, "a", "b", "state")
	big := strings.Repeat("x", 100<<10) // a large blob: a fan-out directory of its own
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "big"), []byte(big), 0o644))
	sum, _ := HashReader(strings.NewReader(big))
	for _, stateDir := range []string{"", explicit} {
		root, err := rootfs.Open(rootDir)
		must(t, err)
		steps, err := journal.ParseSteps("t.journal", []string{"MKDIR /srv", "COPY big /srv/big sha256=" + sum})
		must(t, err)
		a, err := Open(context.Background(), Options{Root: root, StateDir: stateDir, Create: true})
		must(t, err)
		_, err = a.Apply(context.Background(), Move{Journal: "t.journal", Steps: steps, Source: os.DirFS(src), SourceName: src})
		a.Close()
		root.Close()
		must(t, err)
	}
	for dir, want := range map[string]os.FileMode{
		"root/var":                            0o755,
		"root/var/lib":                        0o755,
		"root/var/lib/cairn":                  0o700,
		"root/var/lib/cairn/blobs":            0o700,
		"root/var/lib/cairn/blobs/" + sum[:2]: 0o700,
		"a":                                   0o755,
		"a/b":                                 0o755,
		"a/b/state":                           0o700,
		"a/b/state/blobs":                     0o700,
	} {
		fi, err := os.Stat(filepath.Join(base, dir))
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o under umask 077, want %04o", dir, got, want)
		}
	}
}
