package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// TestStateFilesAsCairnMakesThem: the default state directory lies beneath
// the root, so what is in it is the root's content, which an image may
// bring: a link there to a host file, a FIFO, a device, a hard link. cairn
// runs as root and works in the state with host paths, so each would lead
// it out of the root: it would append its history to a host file, truncate
// and overwrite a host file as a pack, read its applied journal from one,
// or block on a FIFO for ever. Each is refused (or, for the history, which
// is cairn's to rewrite, replaced), no host file changes, nothing blocks.
func TestStateFilesAsCairnMakesThem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a root's state is root's")
	}
	big := strings.Repeat("large blob\n", 10<<10) // a file of its own in the store
	bigSum, _ := HashReader(strings.NewReader(big))
	plant := func(what string) func(t *testing.T, state, outside string) {
		return func(t *testing.T, state, outside string) {
			kind, name, _ := strings.Cut(what, " ")
			p := filepath.Join(state, name)
			if kind != "hardlink" {
				os.RemoveAll(p)
			}
			switch kind {
			case "symlink":
				must(t, os.Symlink(filepath.Join(outside, "precious"), p))
			case "dirlink":
				must(t, os.Symlink(outside, p))
			case "hardlink":
				// The file cairn made, with a second link outside.
				must(t, os.Link(p, filepath.Join(outside, "second-link")))
			case "fifo":
				must(t, syscall.Mkfifo(p, 0o600))
			case "device": // /dev/null's
				must(t, syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|3))
			}
		}
	}
	for _, tc := range []struct {
		plant string
		exit  int // of the second apply; ExitOK: the file is replaced
	}{
		{"symlink history.jsonl", ExitOK},
		{"hardlink history.jsonl", ExitOK},
		{"fifo history.jsonl", ExitOK},
		{"symlink applied.json", ExitBadInput},
		{"fifo applied.json", ExitBadInput},
		{"device applied.json", ExitBadInput},
		{"symlink root", ExitBadInput},
		{"fifo root", ExitBadInput},
		{"symlink intent.log", ExitUndoFailed},
		{"fifo intent.log", ExitUndoFailed},
		{"symlink blobs/index", ExitBadInput},
		{"fifo blobs/index", ExitBadInput},
		{"hardlink blobs/index", ExitBadInput},
		{"symlink blobs/pack-000001.pack", ExitBadInput},
		{"hardlink blobs/pack-000001.pack", ExitBadInput},
		{"fifo blobs/pack-000001.pack", ExitBadInput},
		{"dirlink blobs", ExitBadInput},
		{"dirlink blobs/" + bigSum[:2], ExitBadInput},
	} {
		t.Run(tc.plant, func(t *testing.T) {
			base := t.TempDir()
			rootDir, src, outside := filepath.Join(base, "root"), filepath.Join(base, "src"), filepath.Join(base, "outside")
			state := filepath.Join(rootDir, "var/lib/cairn")
			for _, d := range []string{rootDir, src, outside} {
				must(t, os.Mkdir(d, 0o755))
			}
			must(t, os.WriteFile(filepath.Join(outside, "precious"), []byte("precious\n"), 0o600))
			files := map[string]string{"a": "a\n", "b": "b\n", "big": big}
			sums := map[string]string{}
			for name, content := range files {
				must(t, os.WriteFile(filepath.Join(src, name), []byte(content), 0o644))
				sums[name], _ = HashReader(strings.NewReader(content))
			}
			apply := func(lines ...string) error {
				root, err := rootfs.Open(rootDir)
				must(t, err)
				defer root.Close()
				steps, err := journal.ParseSteps("t.journal", lines)
				must(t, err)
				done := make(chan error, 1)
				go func() {
					a, err := Open(context.Background(), Options{Root: root, Create: true})
					if err == nil {
						_, err = a.Apply(context.Background(), Move{Journal: "t.journal", Steps: steps, Source: os.DirFS(src), SourceName: src})
						a.Close()
					}
					done <- err
				}()
				select {
				case err := <-done:
					return err
				case <-time.After(10 * time.Second):
					t.Fatal("the move blocks")
				}
				return nil
			}
			must(t, apply("MKDIR /srv", "COPY a /srv/a sha256="+sums["a"]))
			plant(tc.plant)(t, state, outside)
			before := snapOf(t, outside)
			err := apply("MKDIR /srv", "COPY a /srv/a sha256="+sums["a"], "COPY b /srv/b sha256="+sums["b"], "COPY big /srv/big sha256="+sums["big"])
			if got := ExitCode(err); got != tc.exit {
				t.Errorf("exit %d (%v), want %d", got, err, tc.exit)
			} else if _, name, _ := strings.Cut(tc.plant, " "); err != nil && (!strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), filepath.Join(state, name))) {
				t.Errorf("the error does not say that %s is refused:\n%v", name, err)
			}
			if d := DiffTrees(before, snapOf(t, outside), 10); len(d) > 0 {
				t.Errorf("a file outside the root changed:\n%s", strings.Join(d, "\n"))
			}
			if tc.exit == ExitOK {
				fi, err := os.Lstat(filepath.Join(state, historyFile))
				if err != nil || !fi.Mode().IsRegular() || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
					t.Errorf("the history is not a file of its own: %v, %v", fi, err)
				}
				if h, err := History(state); err != nil || len(h) == 0 || h[len(h)-1].Generation != 2 {
					t.Errorf("the run is not in the history: %+v, %v", h, err)
				}
			}
			var ce *IntentCorruptError
			if tc.exit == ExitUndoFailed && !errors.As(err, &ce) {
				t.Errorf("want an *IntentCorruptError, got %T", err)
			}
		})
	}
}

// TestStateAncestors: whoever may write a directory on the way to the state
// directory may swap the state for one of theirs between cairn's checks
// and its use (a rename, then a link), so a state directory is cairn's only
// if every directory that leads to it is root's or the user's and writable
// by no one else (a sticky one, such as /tmp, protects what others own).
// Refused: exit 2, nothing made.
func TestStateAncestors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	for _, tc := range []struct {
		name    string
		state   string                          // beneath base; "" for the default
		prepare func(t *testing.T, base string) // base/root is the root
		want    string
	}{
		{"the default state's parent writable by others", "", func(t *testing.T, base string) {
			must(t, os.MkdirAll(filepath.Join(base, "root/var/lib"), 0o755))
			must(t, os.Chmod(filepath.Join(base, "root/var/lib"), 0o777))
		}, "root/var/lib on the way to it is writable by its group or others (mode 0777)"},
		{"the root another user's", "", func(t *testing.T, base string) {
			must(t, os.Chown(filepath.Join(base, "root"), 1000, 1000))
		}, "root on the way to it is owned by uid 1000"},
		{"an explicit state in another user's directory", "a/state", func(t *testing.T, base string) {
			must(t, os.Mkdir(filepath.Join(base, "a"), 0o755))
			must(t, os.Chown(filepath.Join(base, "a"), 1000, 1000))
		}, "/a on the way to it is owned by uid 1000"},
		{"an explicit state through a link in a directory writable by others", "open/a/state", func(t *testing.T, base string) {
			must(t, os.Mkdir(filepath.Join(base, "open"), 0o777))
			must(t, os.Chmod(filepath.Join(base, "open"), 0o777))
			must(t, os.Mkdir(filepath.Join(base, "real"), 0o755))
			must(t, os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "open/a")))
		}, "/open on the way to it is writable by its group or others"},
		{"an explicit state behind a link into a directory writable by others", "a/state", func(t *testing.T, base string) {
			must(t, os.Mkdir(filepath.Join(base, "open"), 0o777))
			must(t, os.Chmod(filepath.Join(base, "open"), 0o777))
			must(t, os.Mkdir(filepath.Join(base, "open/real"), 0o755))
			must(t, os.Symlink(filepath.Join(base, "open/real"), filepath.Join(base, "a")))
		}, "/open on the way to it is writable by its group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			must(t, os.Mkdir(filepath.Join(base, "root"), 0o755))
			tc.prepare(t, base)
			state := ""
			if tc.state != "" {
				state = filepath.Join(base, tc.state)
			}
			before := snapOf(t, base)
			wantRefused(t, stateApply(t, filepath.Join(base, "root"), state, "MKDIR /srv"), tc.want)
			if d := DiffTrees(before, snapOf(t, base), 10); len(d) > 0 {
				t.Errorf("the refusal changed something:\n%s", strings.Join(d, "\n"))
			}
		})
	}
	t.Run("a sticky directory on the way", func(t *testing.T) {
		base := t.TempDir()
		must(t, os.Mkdir(filepath.Join(base, "root"), 0o755))
		must(t, os.Mkdir(filepath.Join(base, "tmp"), 0o755))
		must(t, os.Chmod(filepath.Join(base, "tmp"), 0o777|os.ModeSticky))
		if err := stateApply(t, filepath.Join(base, "root"), filepath.Join(base, "tmp/state"), "MKDIR /srv"); err != nil {
			t.Fatal(err)
		}
	})
}
