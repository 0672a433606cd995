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
						_, err = a.Apply(context.Background(), Move{Journal: "t.journal", Steps: steps, Source: src})
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

// TestHistoryKeepsTheNewest: the history grows by appending, and once it
// holds twice historyKeep runs it is cut to the newest historyKeep.
func TestHistoryKeepsTheNewest(t *testing.T) {
	st := &state{dir: t.TempDir()}
	for gen := range int64(2*historyKeep + 1) {
		st.record(HistoryEntry{Generation: gen + 1, Result: "applied"})
		h, err := History(st.dir)
		must(t, err)
		want := int(gen + 1)
		if want > 2*historyKeep {
			want = historyKeep
		}
		if len(h) != want || h[len(h)-1].Generation != gen+1 {
			t.Fatalf("after run %d the history holds %d runs, the last %+v; want %d, the last run %d", gen+1, len(h), h[len(h)-1], want, gen+1)
		}
	}
}
