package cli_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/cli"
)

// TestApplyRepairProvenNoop: journal apply --repair after a no-op takes
// the no-op's proof (no journal is parsed), says what the full check says,
// and a file changed with its size and mtime kept is repaired all the
// same; a journal that does not parse is said before a root that cannot
// be opened, as when it was parsed first.
func TestApplyRepairProvenNoop(t *testing.T) {
	dir := t.TempDir()
	root, src, state, j := proofTree(t, dir)
	apply := func(want string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"--log-level", "debug", "journal", "apply", "--root", root, "--state", state, "--source", src}, append(args, j)...)
		if code := cli.Run(args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), want) {
			t.Fatalf("%v: exit %d, stdout %q, want it to hold %q; stderr:\n%s", args, code, stdout.String(), want, stderr.String())
		}
		return stderr.String()
	}
	const proven = "every path as the last no-op saw it"
	apply(j + ": applied, 2 ops run\n")
	time.Sleep(150 * time.Millisecond) // the racy margin
	if log := apply(j+": nothing to do\n", "--repair"); strings.Contains(log, proven) {
		t.Fatal("proven with no proof yet")
	}
	if log := apply(j+": nothing to do\n", "--repair"); !strings.Contains(log, proven) {
		t.Fatalf("not proven after a no-op:\n%s", log)
	}
	f := filepath.Join(root, "srv", "f")
	fi, err := os.Lstat(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, bytes.ToUpper(proofContent), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	apply(j+": applied, 1 op run\n", "--repair") // and a "repair:" line
	if got, _ := os.ReadFile(f); !bytes.Equal(got, proofContent) {
		t.Fatalf("after the repair: %q", got)
	}

	if err := os.WriteFile(j, []byte("MKDIR srv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := cli.Run([]string{"journal", "apply", "--repair", "--root", filepath.Join(dir, "none"), j}, &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.HasPrefix(stderr.String(), j+":1:") {
		t.Errorf("a bad journal and a missing root: exit %d, %q; want 2 and the journal's error", code, stderr.String())
	}
}

// TestApplyRepairProofOfAnotherBinary: a proof written by one cairn binary
// is not taken by the binary installed in its place (a copy of the same
// bytes, a new file: what a package upgrade or a `go build -o` makes),
// which checks in full, and takes its own proof at the next run.
func TestApplyRepairProofOfAnotherBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the test binary")
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "cairn") // the name testscript.Main runs as the command
	install := func() {
		t.Helper()
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin+".new", data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
	}
	root, src, state, j := proofTree(t, dir)
	const proven = "every path as the last no-op saw it"
	apply := func(args ...string) string {
		t.Helper()
		args = append([]string{"--log-level", "debug", "journal", "apply", "--root", root, "--state", state, "--source", src}, append(args, j)...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	install()
	apply()
	time.Sleep(150 * time.Millisecond) // the racy margin
	apply("--repair")
	if out := apply("--repair"); !strings.Contains(out, proven) {
		t.Fatalf("not proven after a no-op by the same binary:\n%s", out)
	}
	install()
	if out := apply("--repair"); strings.Contains(out, proven) {
		t.Fatalf("proven by the proof of the binary replaced:\n%s", out)
	}
	if out := apply("--repair"); !strings.Contains(out, proven) {
		t.Fatalf("not proven by its own proof:\n%s", out)
	}
}

// proofContent is what proofTree's source file f holds.
var proofContent = []byte("some content\n")

// proofTree makes in dir an empty root, a source holding the file f, and
// the journal site.journal that copies f to /srv/f; it returns the root,
// the source, the state directory to be and the journal.
func proofTree(t *testing.T, dir string) (root, src, state, j string) {
	t.Helper()
	root, src, state = filepath.Join(dir, "root"), filepath.Join(dir, "src"), filepath.Join(dir, "state")
	for _, d := range []string{root, src} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f"), proofContent, 0o644); err != nil {
		t.Fatal(err)
	}
	j = filepath.Join(dir, "site.journal")
	if err := os.WriteFile(j, fmt.Appendf(nil, "MKDIR /srv\nCOPY f /srv/f sha256=%x mode=0644\n", sha256.Sum256(proofContent)), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, src, state, j
}
