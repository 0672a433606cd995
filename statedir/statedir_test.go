package statedir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/rootfs"
)

// TestHistoryKeepsTheNewest: the history grows by appending, and once it
// holds twice historyKeep runs it is cut to the newest historyKeep.
func TestHistoryKeepsTheNewest(t *testing.T) {
	d := &Dir{path: t.TempDir()}
	for gen := range int64(2*historyKeep + 1) {
		d.Record(HistoryEntry{Generation: gen + 1, Result: HistoryApplied})
		h, err := History(d.path)
		if err != nil {
			t.Fatal(err)
		}
		want := int(gen + 1)
		if want > 2*historyKeep {
			want = historyKeep
		}
		if len(h) != want || h[len(h)-1].Generation != gen+1 {
			t.Fatalf("after run %d the history holds %d runs, the last %+v; want %d, the last run %d", gen+1, len(h), h[len(h)-1], want, gen+1)
		}
	}
}

// TestOpen: a state directory that is not there, or holds nothing, is
// nil to a reader and left as it is; one made holds its root and its lock,
// which a second Open cannot take; records alone make a state; a state
// made and left empty is removed with the parents made for it.
func TestOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the way to the state must be root's")
	}
	base := t.TempDir()
	root, err := rootfs.Open(filepath.Join(base))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state := filepath.Join(base, "var/state")
	if d, err := Open(root, state, false, 0); d != nil || err != nil {
		t.Fatalf("Open of a missing state to read: %v, %v; want nil, nil", d, err)
	}
	d, err := Open(root, state, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(state, RootFile)); err != nil || string(data) != base+"\n" {
		t.Errorf("root file: %q, %v", data, err)
	}
	if _, err := Open(root, state, true, 0); !errors.Is(err, ErrLocked) {
		t.Errorf("a second Open: %v, want ErrLocked", err)
	}
	if !d.Discardable() {
		t.Errorf("a state just made is not discardable")
	}
	if err := d.WriteRecord("last-target", map[string]string{"commit": "abc"}); err != nil {
		t.Fatal(err)
	}
	if d.Discardable() {
		t.Errorf("a state with records is discardable")
	}
	d.Close()
	r, err := Open(root, state, false, 0)
	if err != nil || r == nil {
		t.Fatalf("Open of a state with records to read: %v, %v", r, err)
	}
	var got map[string]string
	if ok, err := r.ReadRecord("last-target", &got); !ok || err != nil || got["commit"] != "abc" {
		t.Errorf("ReadRecord: %v, %v, %v", ok, err, got)
	}
	if err := r.WriteRecord("../x", 1); err == nil {
		t.Errorf("WriteRecord(../x) succeeded")
	}
	r.Close()

	// Made and left empty: removed, with the parent made for it.
	other := filepath.Join(base, "new/state")
	d, err = Open(root, other, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.RemoveMade()
	if _, err := os.Lstat(filepath.Join(base, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the parent made for the state stays: %v", err)
	}
}

// TestLock holds Lock to lockDir's rules for a lock file of its own: the
// second taker waits, then fails with ErrLocked naming the holder's pid,
// or stops at once when its context ends; a link is refused.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "lock")
	f, err := Lock(context.Background(), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(context.Background(), name, 100*time.Millisecond); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("a second Lock: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, name, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a Lock whose context ended: %v, want context.Canceled", err)
	}
	f.Close()
	g, err := Lock(context.Background(), name, 0)
	if err != nil {
		t.Fatalf("Lock once the holder let go: %v", err)
	}
	g.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(name, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(context.Background(), link, 0); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Lock of a link: %v, want it refused", err)
	}
}
