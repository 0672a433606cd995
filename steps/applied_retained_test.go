package steps

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cairn-cm/cairn/rootfs"
)

// TestAppliedRetained: the applied journal a process keeps between runs
// (lastApplied: the agent keeps it at rest) costs the heap what its steps
// hold, their strings' contents (a position that ends its source kept
// once) and their headers, and its images encoded; not the file's bytes,
// its JSON syntax and escapes, nor a string per field. The journal is of the benchmark's shape: 10,000 steps, most from
// a module (a source position "SITE > MODULE"), as cairn writes it.
func TestAppliedRetained(t *testing.T) {
	const n = 10000
	a := &Applied{Version: 1, Generation: 3, Journal: "git:0123", Commit: "0123", Branch: "main", Group: "web"}
	images := map[string]Image{}
	var content int // the bytes of the steps' distinct strings
	for i := range n {
		s := AppliedStep{
			Step: fmt.Sprintf("COPY modules/m%02d/files/d%03d/f%05d.conf /srv/m%02d/d%03d/f%05d.conf mode=0644 sha256=%064x", i%20, i%500, i, i%20, i%500, i, i),
			At:   fmt.Sprintf("modules/m%02d/main.cairn:%d:1", i%20, i+1),
		}
		s.Source = "site.cairn:40:1 > " + s.At
		if i%10 == 0 {
			s.Source = s.At
		}
		content += len(s.Step) + len(s.Source) // the position is the source's tail
		a.Steps = append(a.Steps, s)
		if i%5 == 0 {
			images[fmt.Sprintf("path:/srv/m%02d/d%03d/f%05d.conf", i%20, i%500, i)] = Image{Absent: true}
		}
	}
	a.Originals = images
	var file bytes.Buffer
	if err := encodeApplied(&file, a); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, appliedFile), file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	size := file.Len()
	var raw appliedOnDisk
	if err := decodeApplied(file.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	originals := len(raw.Originals)
	a, raw, file = nil, appliedOnDisk{}, bytes.Buffer{}

	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	lastApplied.forget()
	defer lastApplied.forget()
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	ap, err := Open(context.Background(), Options{Root: root, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	kept := ap.Applied()
	ap.Close()
	retained := heap() - before
	if len(kept.Steps) != n || kept.Steps[1].Source != "site.cairn:40:1 > "+kept.Steps[1].At {
		t.Fatalf("the journal read back is not the one written: %d steps, %+v", len(kept.Steps), kept.Steps[1])
	}
	// What the steps and images hold, and a little for the rest (the
	// state's other records, the heap's rounding).
	want := int64(content + n*int(unsafe.Sizeof(AppliedStep{})) + originals)
	t.Logf("applied.json %d bytes; retained %d bytes after the open, for %d of contents, headers and images", size, retained, want)
	if retained > want+want/20+64<<10 {
		t.Errorf("an open keeps %d bytes of the heap for a journal whose steps and images hold %d (the file: %d)", retained, want, size)
	}
	runtime.KeepAlive(kept)
}
