package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIncludeBomb: thirty files, each including the next twice, would be a
// billion files; expansion stops at MaxIncludes with an error at the
// INCLUDE that passed it, fast and small.
func TestIncludeBomb(t *testing.T) {
	dir := t.TempDir()
	for i := range 30 {
		text := fmt.Sprintf("MKDIR /d%d\nINCLUDE %d.journal\nINCLUDE %d.journal\n", i, i+1, i+1)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.journal", i)), []byte(text), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "30.journal"), []byte("RM /x\n"), 0o644)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := LoadFile(filepath.Join(dir, "0.journal"))
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	want := "/29.journal:2:1: INCLUDE 30.journal: more than 10000 INCLUDEs expanded in one journal (does a file include another twice at every level?): expansion stops here"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant ...%s", err, want)
	}
	if n := len(Findings(err)); n != 1 {
		t.Errorf("%d findings, want the one", n)
	}
	if took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
		t.Errorf("allocated %d MiB", alloc>>20)
	}
}

// TestIncludeSize: files that pass MaxLoadSize together stop the
// expansion at the INCLUDE that passed it.
func TestIncludeSize(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("# "+strings.Repeat("x", 1000)+"\n", 100<<10) // 100 MiB of comments
	os.WriteFile(filepath.Join(dir, "big.journal"), []byte(big), 0o644)
	os.WriteFile(filepath.Join(dir, "top.journal"), []byte("INCLUDE big.journal\nINCLUDE big.journal\nINCLUDE big.journal\n"), 0o644)
	_, err := LoadFile(filepath.Join(dir, "top.journal"))
	want := "top.journal:3:1: INCLUDE big.journal: the journal and the files it includes pass the 256 MiB they may hold together: expansion stops here"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant ...%s", err, want)
	}
}

// TestReadFileNotRegular: a FIFO or a directory, as the journal or as an
// INCLUDE, is refused at once and never waited for.
func TestReadFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.journal")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "d.journal"), 0o755)
	os.WriteFile(filepath.Join(dir, "top.journal"), []byte("MKDIR /a\nINCLUDE fifo.journal\nINCLUDE d.journal\n"), 0o644)
	done := make(chan error, 1)
	go func() {
		if _, err := ReadFile(fifo); !errors.Is(err, ErrNotRegular) {
			done <- fmt.Errorf("ReadFile of a FIFO: %v", err)
			return
		}
		_, err := LoadFile(filepath.Join(dir, "top.journal"))
		done <- err
	}()
	select {
	case err := <-done:
		for _, want := range []string{
			"top.journal:2:1: INCLUDE fifo.journal: cannot read " + fifo + ": not a regular file",
			"top.journal:3:1: INCLUDE d.journal: cannot read " + filepath.Join(dir, "d.journal") + ": not a regular file",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant %s", err, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO still blocks after 10s")
	}
}
