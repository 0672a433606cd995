package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// nextOriginalsCase is a move's end: n new files in directories of 20
// (their undo images those of absent objects, one a directory, as
// keepUndo keeps them), a file the applied journal managed already (its
// original image stays), and an op undone (its image is not an original),
// with the original images json.Marshal must write.
func nextOriginalsCase(t testing.TB, n int) (*Applier, []journal.Step, []executed, map[string]Image) {
	sum := strings.Repeat("0", 64)
	var j strings.Builder
	j.WriteString("MKDIR /dst\nCOPY - /dst/kept sha256=" + sum + "\n")
	for i := range n {
		if i%20 == 0 {
			fmt.Fprintf(&j, "MKDIR /dst/d%04d\n", i/20)
		}
		fmt.Fprintf(&j, "COPY - /dst/d%04d/f%05d sha256=%s\n", i/20, i, sum)
	}
	jn, err := journal.Parse("t.journal", []byte(j.String()))
	if err != nil {
		t.Fatal(err)
	}
	steps := jn.Steps
	kept := Image{Type: TypeFile, Mode: 0o600, Blob: "ff", Size: 3}
	old := map[string]Image{"path:/dst/kept": kept, "path:/gone": {Type: TypeDir, Mode: 0o755}}
	a := &Applier{st: &state{applied: &Applied{Version: 1, Originals: old}}}
	want := map[string]Image{"path:/dst/kept": kept}
	var done []executed
	var last *Image
	for i := range steps {
		s := &steps[i]
		if s.Object() == "/dst/kept" {
			done = append(done, executed{step: s, action: journal.Update, undo: &Image{Type: TypeFile, Blob: "ee", Place: &Place{Dir: "/dst"}}})
			continue
		}
		if last == nil || strings.Count(s.Object(), "/") == 2 {
			last = &Image{Absent: true, Place: &Place{Dir: "/dst", Dev: 1, Ino: uint64(i)}}
		}
		done = append(done, executed{step: s, action: journal.Forward, undo: last})
		want[s.Identity()] = Image{Absent: true}
	}
	// An op on a path the journal no longer manages, undone: no original.
	gone, err := journal.Parse("t.journal", []byte("MKDIR /gone\n"))
	if err != nil {
		t.Fatal(err)
	}
	done = append(done, executed{step: &gone.Steps[0], action: journal.Inverse, undo: &Image{Type: TypeDir}})
	return a, steps, done, want
}

// TestNextOriginals checks the original images a move commits against
// json.Marshal of the map of them, and what making them costs: no map of
// copies of the images (with their encoding, 520 bytes a file, and the
// map alone 330 still there at the commit of a cold apply, its peak), only
// an index and their JSON, which alone stays, with no room to spare.
func TestNextOriginals(t *testing.T) {
	const n = 2000
	a, steps, done, want := nextOriginalsCase(t, n)
	got, err := a.nextOriginals(done, steps)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(wantJSON) {
		t.Fatalf("nextOriginals:\n%.300s\nwant json.Marshal of the map:\n%.300s", got, wantJSON)
	}
	if cap(got) > len(got)+len(got)/8 { // the allocator rounds up to pages
		t.Errorf("nextOriginals returns %d bytes in %d", len(got), cap(got))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	a.nextOriginals(done, steps)
	runtime.ReadMemStats(&after)
	perFile := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.0f bytes allocated a file, %d bytes of JSON for %d", perFile, len(got), len(want))
	if perFile > 200 {
		t.Errorf("nextOriginals allocates %.0f bytes a file, want at most 200", perFile)
	}
}

// TestCommittedImages: the journal a move commits keeps its original
// images encoded, as one read from the state directory does; a later move
// of the same Applier (the agent undoes a move whose confirmation failed)
// reads them, and they are those the next open reads from the file.
func TestCommittedImages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state := filepath.Join(t.TempDir(), "state")
	a, err := Open(ctx, Options{Root: root, StateDir: state, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	move := func(allow bool, lines ...string) {
		t.Helper()
		steps, err := journal.ParseSteps("t.journal", lines)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Apply(ctx, Move{Journal: "t.journal", Steps: steps, AllowRemoval: allow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o750); err != nil {
		t.Fatal(err)
	}
	move(false, "MKDIR /srv mode=0755", "MKDIR /srv/www mode=0755")
	committed := a.Applied()
	if committed.Originals != nil || committed.lazy == nil {
		t.Fatalf("the committed journal holds its images decoded: %v", committed.Originals)
	}
	images := committed.Images()
	data, err := os.ReadFile(filepath.Join(state, appliedFile))
	if err != nil {
		t.Fatal(err)
	}
	var disk appliedOnDisk
	var onDisk map[string]Image
	if err := decodeApplied(data, &disk); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(disk.Originals, &onDisk); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(images, onDisk) {
		t.Errorf("the committed images %v, the file's %v", images, onDisk)
	}
	if img := images["path:/srv"]; img.Type != TypeDir || img.Mode != 0o750 {
		t.Errorf("the original image of /srv: %+v, want the directory of mode 0750 there before", img)
	}
	move(true, "MKDIR /srv/other mode=0755")
	if _, err := os.Lstat(filepath.Join(dir, "srv", "www")); !os.IsNotExist(err) {
		t.Errorf("/srv/www after a move that no longer manages it: %v, want it gone", err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "srv")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("/srv after a move that no longer manages it: %v, %v, want its mode 0750 back", fi, err)
	}
}
