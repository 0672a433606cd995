package cli_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-cm/cairn/internal/cli"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// openPty opens a pseudo-terminal of cols columns: what the command
// writes to tty, master reads.
func openPty(t *testing.T, cols uint16) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return master, tty
}

// TestApplyProgress: on a terminal, journal apply shows each op on one line
// that it rewrites ("[2/3] MKDIR /srv/a"), cut to the terminal's width,
// and clears it before a command's output and at the end; the result goes
// to stdout as without a terminal.
func TestApplyProgress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: sets owners")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	long := "echo from-the-command; : " + strings.Repeat("x", 100)
	j := filepath.Join(dir, "site.journal")
	if err := os.WriteFile(j, []byte(fmt.Sprintf("MKDIR /srv\nMKDIR /srv/a\nEXEC %q undo=true\n", long)), 0o644); err != nil {
		t.Fatal(err)
	}
	const clear = "\r\x1b[K"
	want := clear + "[1/3] MKDIR /srv" + clear + "[2/3] MKDIR /srv/a" +
		clear + ("[3/3] EXEC " + fmt.Sprintf("%q", long))[:59] +
		clear + "from-the-command\r\n" // the line is cleared, and not drawn again
	applyOnTerminal(t, root, filepath.Join(dir, "state"), j, j+": applied, 3 ops run\n", want)

	// Back to one step: the inverse of the EXEC (its undo), then of
	// MKDIR /srv/a; the line is cleared at the end.
	if err := os.WriteFile(j, []byte("MKDIR /srv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want = clear + ("[1/2] EXEC " + fmt.Sprintf("%q", long))[:59] + clear + "[2/2] MKDIR /srv/a" + clear
	applyOnTerminal(t, root, filepath.Join(dir, "state"), j, j+": applied, 2 ops run\n", want)
}

// applyOnTerminal runs journal apply with stderr on a terminal of 60
// columns, and checks stdout and what the terminal got.
func applyOnTerminal(t *testing.T, root, state, journal, wantStdout, wantTerminal string) {
	t.Helper()
	runOnTerminal(t, []string{"journal", "apply", "--root", root, "--state", state, journal}, wantStdout, wantTerminal)
}

// TestHostApplyProgress: cairn apply and rollback show the ops of their
// move on a terminal as journal apply does, clear the line before what
// commands print and at the end, and print the result on stdout.
func TestHostApplyProgress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: sets owners")
	}
	r := gittest.New(t)
	long := "echo from-the-command; : " + strings.Repeat("x", 100)
	c1 := r.Commit("main", map[string]string{"main.cairn": "dir \"/srv\" {}\n"})
	c2 := r.Commit("main", map[string]string{"main.cairn": fmt.Sprintf("dir \"/srv\" {}\n\ndir \"/srv/a\" {}\n\nexec \"x\" {\n  command = %q\n  undo    = \"true\"\n}\n", long)})
	root, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	args := []string{"--log-level", "warn", "--repo", r.Dir, "--host", "web-1", "--root", root, "--state", state, "--allow-unsigned", "--listen", "", "--confirm", "0"}
	const clear = "\r\x1b[K"
	runOnTerminal(t, append([]string{"apply", "--to", c1}, args...), c1+": applied, 1 op run\n", clear+"[1/1] MKDIR /srv"+clear)
	execLine := fmt.Sprintf("EXEC %q", long)
	runOnTerminal(t, append([]string{"apply"}, args...), c2+": applied, 2 ops run\n",
		clear+"[1/2] MKDIR /srv/a"+clear+("[2/2] " + execLine)[:59]+
			clear+"from-the-command\r\n") // the line is cleared, and not drawn again
	// Back: the inverse of the EXEC (its undo), then of MKDIR /srv/a.
	runOnTerminal(t, append([]string{"rollback"}, args...), c1+": applied, 2 ops run\n",
		clear+("[1/2] " + execLine)[:59]+clear+"[2/2] MKDIR /srv/a"+clear)
}

// runOnTerminal runs cairn with args and stderr on a terminal of 60
// columns, and checks that it exits 0, its stdout and what the terminal
// got.
func runOnTerminal(t *testing.T, args []string, wantStdout, wantTerminal string) {
	t.Helper()
	master, tty := openPty(t, 60)
	read := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(master) // EIO once the terminal is closed
		read <- data
	}()
	var stdout bytes.Buffer
	code := cli.Run(args, &stdout, tty)
	tty.Close()
	got := string(<-read)
	if code != 0 {
		t.Fatalf("%v: exit %d: %q", args, code, got)
	}
	if stdout.String() != wantStdout {
		t.Errorf("%v: stdout %q, want %q", args, stdout.String(), wantStdout)
	}
	if got != wantTerminal {
		t.Errorf("%v: the terminal got\n%q\nwant\n%q", args, got, wantTerminal)
	}
}
