package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrite checks that Write puts what its function writes in place, with
// the mode asked for, and that a function that fails leaves the old file
// as it was and no temporary file behind.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	big := strings.Repeat("0123456789abcdef", 10_000) // past the write buffer
	// 0640, not CreateTemp's 0600: the test fails unless Write sets it.
	if err := Write(name, 0o640, func(w io.Writer) error {
		for _, s := range []string{"head ", big, " tail"} {
			if _, err := io.WriteString(w, s); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	if err != nil || string(got) != "head "+big+" tail" {
		t.Fatalf("after Write: %d bytes, %v; want %d", len(got), err, len(big)+10)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode after Write: %v; want 0640", fi.Mode())
	}
	boom := errors.New("boom")
	err = Write(name, 0o644, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write with a failing function: %v, want %v", err, boom)
	}
	if got, _ := os.ReadFile(name); string(got) != "head "+big+" tail" {
		t.Fatalf("a failed Write changed the file: %.40q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("files left in the directory: %v", ents)
	}
	if err := WriteFile(name, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); string(got) != "x" {
		t.Fatalf("after WriteFile: %q", got)
	}
}

// TestReplace checks that Replace puts the new content in place with its
// permission bits and leaves no temporary file behind.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "cache")
	for _, data := range []string{"one\n", "two, longer\n"} {
		if err := Replace(name, []byte(data), 0o640); err != nil { // not CreateTemp's 0600
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != data {
			t.Fatalf("after Replace(%q): %q, %v", data, got, err)
		}
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode of the replaced file: %v, want 0640", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries in the directory, want the file alone", len(entries))
	}
}
