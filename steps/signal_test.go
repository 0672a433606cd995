package steps_test

// Stopping a move with signals, on the real cairn binary (crashCairn): the
// first SIGTERM lets the step that runs end by itself, then undoes the
// move; a second kills the step's whole process group at once, then undoes
// the move (steps.Applier.Apply, internal/cli's signals).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer that a process's output may fill while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// signalMove is a journal apply of the real binary that a test signals.
type signalMove struct {
	t           *testing.T
	dir         string // host files the journal's commands write
	root, state string
	before      crashTree
	cmd         *exec.Cmd
	out         lockedBuffer
	done        chan struct{}
}

// startMove writes the journal (%s in it is the test's directory) and
// starts cairn journal apply on an empty root.
func startMove(t *testing.T, journalText string) *signalMove {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the journal sets owners")
	}
	m := &signalMove{t: t, dir: t.TempDir(), done: make(chan struct{})}
	m.root, m.state = filepath.Join(m.dir, "root"), filepath.Join(m.dir, "state")
	if err := os.Mkdir(m.root, 0o755); err != nil {
		t.Fatal(err)
	}
	m.before = crashSnapshot(t, m.root)
	file := filepath.Join(m.dir, "move.journal")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(journalText, "%s", m.dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(crashCairn(t), "journal", "apply", "--root", m.root, "--state", m.state, file)
	m.cmd.Stdout, m.cmd.Stderr = &m.out, &m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			m.cmd.Process.Kill()
			<-m.done
		}
	})
	return m
}

// waitFile waits for a file that the journal's command writes.
func (m *signalMove) waitFile(name string) {
	m.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(m.dir, name)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s did not appear; cairn said:\n%s", name, m.out.String())
		}
	}
}

func (m *signalMove) exists(name string) bool {
	_, err := os.Stat(filepath.Join(m.dir, name))
	return err == nil
}

func (m *signalMove) signal() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		m.t.Fatal(err)
	}
}

// running fails the test if cairn ends within d.
func (m *signalMove) running(d time.Duration) {
	m.t.Helper()
	select {
	case <-m.done:
		m.t.Fatalf("cairn ended; it should still run:\n%s", m.out.String())
	case <-time.After(d):
	}
}

// exit waits up to d for cairn to end and returns its exit code.
func (m *signalMove) exit(d time.Duration) int {
	m.t.Helper()
	select {
	case <-m.done:
		return m.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		m.t.Fatalf("cairn still runs %s later:\n%s", d, m.out.String())
	}
	return -1
}

// undone checks that the move was undone: the root as before, no intent
// log, nothing applied, and the history says the move failed.
func (m *signalMove) undone() {
	m.t.Helper()
	if d := crashDiff(m.before, crashSnapshot(m.t, m.root), 10); len(d) > 0 {
		m.t.Errorf("the root differs from before the move:\n  %s", strings.Join(d, "\n  "))
	}
	if _, err := os.Stat(filepath.Join(m.state, "intent.log")); err == nil {
		m.t.Error("the intent log is left")
	}
	if show := crashMust(m.t, 0, "journal", "show", "--root", m.root, "--state", m.state); show.stdout != "" {
		m.t.Errorf("journal show after the undone move:\n%s", show.stdout)
	}
}

// TestSignalTwiceKillsTheStep sends SIGTERM to cairn while an EXEC runs
// whose shell waits on a child: cairn and the command go on; a second
// SIGTERM kills the command's process group (the child too) at once, the
// move is undone (the EXEC's undo runs) and cairn exits 1.
func TestSignalTwiceKillsTheStep(t *testing.T) {
	m := startMove(t, `MKDIR /a
EXEC "sleep 30 & echo $! > %s/pid.tmp; mv %s/pid.tmp %s/pid; wait" undo="touch %s/undone"
MKDIR /b
`)
	m.waitFile("pid")
	b, _ := os.ReadFile(filepath.Join(m.dir, "pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}

	m.signal()
	m.running(time.Second)
	if !alive(pid) {
		t.Fatal("the first signal killed the command's child")
	}

	start := time.Now()
	m.signal()
	if code := m.exit(10 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, m.out.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cairn took %s to end after the second signal", took)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %d outlived the second signal", pid)
		}
	}
	out := m.out.String()
	for _, want := range []string{
		"cairn: terminated: stopping after the step that runs (a second signal kills it)",
		"cairn: terminated again: killing the step that runs",
		"move.journal:2:1: EXEC", "its process group was killed: the move was killed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("cairn's output does not say %q:\n%s", want, out)
		}
	}
	if !m.exists("undone") {
		t.Error("the EXEC's undo did not run")
	}
	m.undone()
}

// TestSignalOnceLetsTheStepEnd sends one SIGTERM while an EXEC runs that
// ends by itself: the EXEC runs to its end, no later step starts, and the
// move is undone (exit 1).
func TestSignalOnceLetsTheStepEnd(t *testing.T) {
	m := startMove(t, `MKDIR /a
EXEC "touch %s/started; sleep 2; touch %s/finished" undo="touch %s/undone"
MKDIR /b
`)
	m.waitFile("started")
	m.signal()
	if code := m.exit(20 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, m.out.String())
	}
	if !m.exists("finished") {
		t.Error("the EXEC did not run to its end")
	}
	if !m.exists("undone") {
		t.Error("the EXEC's undo did not run")
	}
	if out := m.out.String(); !strings.Contains(out, "move.journal:3:1: MKDIR /b") || !strings.Contains(out, "interrupted before this step") {
		t.Errorf("cairn's output does not name the step it stopped before:\n%s", out)
	}
	m.undone()
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
