package gitfs_test

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairn-cm/cairn/compiler"
)

// TestSum256IsTheContents: the sum Sum256 gives for a file of a sound
// repository is the sha256 of its content, whatever another repository of
// the process held under the same blob id before (here a loose object
// whose content is not the one its id names: damage, or a repository
// someone else controls, such as a submodule's work tree).
func TestSum256IsTheContents(t *testing.T) {
	good := t.TempDir()
	run(t, good, "init", "-q")
	write(t, good, "f.conf", "genuine "+t.Name()+"\n", 0o644)
	run(t, good, "add", "-A")
	run(t, good, "commit", "-q", "-m", "one")
	blob := run(t, good, "rev-parse", "HEAD:f.conf")

	bad := filepath.Join(t.TempDir(), "bad")
	if out, err := exec.Command("cp", "-a", good, bad).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	forged := []byte("forged\n")
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	fmt.Fprintf(w, "blob %d\x00", len(forged))
	w.Write(forged)
	w.Close()
	obj := filepath.Join(bad, ".git", "objects", blob[:2], blob[2:])
	os.Chmod(obj, 0o644)
	if err := os.WriteFile(obj, z.Bytes(), 0o444); err != nil {
		t.Fatal(err)
	}

	sumOf := func(fsys fs.FS) [sha256.Size]byte {
		t.Helper()
		s, err := fsys.(compiler.SumFS).Sum256("f.conf")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	badFS, goodFS := openFS(t, bad, "HEAD"), openFS(t, good, "HEAD")
	sumOf(badFS) // the damaged repository first
	// Then both at once, as the compiler's workers would.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() { defer wg.Done(); sumOf(badFS) }()
		go func() { defer wg.Done(); sumOf(goodFS) }()
	}
	wg.Wait()
	// The damaged repository may be given the sum of the content its id
	// names (the applier then refuses what it reads); the sound one must
	// never be given the damage's.
	data, err := fs.ReadFile(goodFS, "f.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sumOf(goodFS), sha256.Sum256(data); got != want {
		t.Errorf("Sum256 = %x; the content read (%q) hashes to %x: the sum of another repository's damaged object", got[:6], data, want[:6])
	}
}
