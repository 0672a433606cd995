package steps

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// cmdEnv is an Env on a temporary root whose commands' output goes to a
// buffer (so that the command's output is a pipe that cairn copies, the
// harder case for waiting).
func cmdEnv(t *testing.T) (*Env, *syncBuffer) {
	t.Helper()
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	out := &syncBuffer{}
	return &Env{Root: root, Output: out}, out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustStep(t *testing.T, line string) *journal.Step {
	t.Helper()
	s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, line)
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

// grandchild is a shell command that starts `sleep 30` in the background,
// writes its pid to a file, and waits for it: a command whose child holds
// its output and outlives a kill of the shell alone.
func grandchild(pidFile string) string {
	return "sleep 30 & echo $! > " + pidFile + "; wait"
}

// readPid reads the pid that grandchild wrote.
func readPid(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the command did not start its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid runs (a zombie, killed and not yet reaped by
// whoever inherited it, does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitGone waits a few seconds for pid to die, and fails if it does not.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs: its process group was not killed", pid)
		}
	}
}

// TestCommandTimeouts runs EXEC and CHECK command steps whose command
// outlives its timeout, with a child that holds its output: the step fails
// when the timeout is up (not when the command would have ended), and the
// whole process group is gone.
func TestCommandTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		line  string // %s is the command
		undo  bool   // run the inverse (the undo command)
		limit time.Duration
		want  string
	}{
		{"exec", `EXEC %q timeout=1s`, false, time.Second, `timed out after 1s: its process group was killed`},
		{"exec undo", `EXEC true undo=%q timeout=1s`, true, time.Second, `timed out after 1s: its process group was killed`},
		{"check command", `CHECK command %q timeout=1s`, false, time.Second, `did not hold within 1s: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := cmdEnv(t)
			pidFile := filepath.Join(t.TempDir(), "pid")
			s := mustStep(t, strings.Replace(tc.line, "%q", strconv.Quote(grandchild(pidFile)), 1))
			k := LookupKind(s.Op)
			start := time.Now()
			var err error
			if tc.undo {
				err = k.(Inverter).Inverse(context.Background(), env, s)
			} else {
				err = k.Forward(context.Background(), env, s)
			}
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that says %q", err, tc.want)
			}
			// The timeout, and at most the time it takes to stop
			// waiting for the output (outputGrace) and a margin: far
			// from the child's 30 s.
			if took < tc.limit || took > tc.limit+outputGrace+5*time.Second {
				t.Errorf("took %s, want about %s", took, tc.limit)
			}
			waitGone(t, readPid(t, pidFile))
		})
	}
}

// TestCheckProbeBudget checks that a CHECK's timeout is the whole wait,
// probes included: a command probe started near the end gets only what is
// left. The first probe fails at once; the second, after the 3 s interval,
// hangs, and must be killed when the 4 s timeout is up, not 4 s later.
func TestCheckProbeBudget(t *testing.T) {
	env, _ := cmdEnv(t)
	dir := t.TempDir()
	probe := "if [ -e " + dir + "/tried ]; then " + grandchild(dir+"/pid") + "; else touch " + dir + "/tried; exit 1; fi"
	s := mustStep(t, "CHECK command "+strconv.Quote(probe)+" timeout=4s interval=3s")
	start := time.Now()
	err := LookupKind(s.Op).Forward(context.Background(), env, s)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not hold within 4s") || !strings.Contains(err.Error(), "timed out after") {
		t.Errorf("error %v, want the CHECK timed out in a probe that timed out", err)
	}
	if took < 4*time.Second || took > 4*time.Second+outputGrace+10*time.Second {
		t.Errorf("took %s: the last probe did not get just the 1 s left", took)
	}
	waitGone(t, readPid(t, dir+"/pid"))
}

// TestExecKilled kills an EXEC through its context (the applier's op
// context, done when the move is killed): at once, child and all.
func TestExecKilled(t *testing.T) {
	env, _ := cmdEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	s := mustStep(t, "EXEC "+strconv.Quote(grandchild(pidFile)))
	kill := make(chan struct{})
	c := newCancellation(context.Background(), kill)
	defer c.release()
	done := make(chan error, 1)
	go func() { done <- LookupKind(s.Op).Forward(c.opContext(s, doRun), env, s) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
	}
	pid := readPid(t, pidFile)
	close(kill)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "its process group was killed: the move was killed") {
			t.Errorf("error %v", err)
		}
	case <-time.After(outputGrace + 5*time.Second):
		t.Fatal("the command still runs after the kill")
	}
	waitGone(t, pid)
}

// TestExecLeavesADaemon runs an EXEC that starts a process in the
// background and exits 0: the step succeeds without waiting for that
// process, which holds the output pipe, beyond outputGrace; the process is
// left alone (a daemon is what such a command wants).
func TestExecLeavesADaemon(t *testing.T) {
	env, out := cmdEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	s := mustStep(t, "EXEC "+strconv.Quote("echo started; sleep 30 & echo $! > "+pidFile))
	start := time.Now()
	if err := LookupKind(s.Op).Forward(context.Background(), env, s); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > outputGrace+5*time.Second {
		t.Errorf("took %s: cairn waited for the background process", took)
	}
	pid := readPid(t, pidFile)
	if !alive(pid) {
		t.Error("the background process was killed")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if !strings.Contains(out.String(), "started") {
		t.Errorf("output %q", out.String())
	}
}

// TestCheckWaitsTheWholeTimeout checks that a CHECK polls until its timeout
// is up, not until the next probe would start after it: with an interval
// longer than the timeout, the CHECK gave up after its first probe, in a
// few milliseconds, saying that it "did not hold within 2s". The last probe
// starts when the timeout is up (with minProbe to run).
func TestCheckWaitsTheWholeTimeout(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, probe string
		holds       bool
	}{
		{"never holds", "false", false},
		{"holds the second time", "[ -e " + dir + "/tried ] || { touch " + dir + "/tried; exit 1; }", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := cmdEnv(t)
			s := mustStep(t, "CHECK command "+strconv.Quote(tc.probe)+" timeout=2s interval=1h")
			start := time.Now()
			err := LookupKind(s.Op).Forward(context.Background(), env, s)
			took := time.Since(start)
			if tc.holds && err != nil {
				t.Errorf("the CHECK failed, but its probe holds the second time, within its timeout: %v", err)
			}
			if !tc.holds && (err == nil || !strings.Contains(err.Error(), "did not hold within 2s")) {
				t.Errorf("error %v, want it did not hold within 2s", err)
			}
			if took < 2*time.Second || took > 2*time.Second+minProbe+5*time.Second {
				t.Errorf("took %s, want the 2 s timeout and one last probe", took)
			}
		})
	}
}
