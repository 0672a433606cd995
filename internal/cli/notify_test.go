package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
)

// notification is one sd_notify datagram the agent sent, with when it
// came and whether the intent log existed then.
type notification struct {
	text   string
	at     time.Time
	intent bool
}

// notifySocket listens on a unixgram socket as systemd does for a service
// with NOTIFY_SOCKET, and returns its path and the datagrams it gets. At
// each datagram it checks whether intentLog exists, so that a test can
// tell what the agent had done when it sent it.
func notifySocket(t *testing.T, intentLog string) (string, <-chan notification) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan notification, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return // closed by the cleanup
			}
			_, statErr := os.Stat(intentLog)
			select {
			case out <- notification{text: string(buf[:n]), at: time.Now(), intent: statErr == nil}:
			default:
				t.Errorf("more than %d notifications", cap(out))
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return name, out
}

// jsonLines parses every line of a log as one JSON object; a line that is
// not one fails the test.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a line of the JSON log is not one JSON object: %q (%v)", line, err)
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

// cairnBin is the cairn command (the test binary, put on PATH by TestMain).
func cairnBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("cairn")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// environ is this process's environment without the variables of systemd
// and cairn, plus more.
func environ(more ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "WATCHDOG_") && !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	return append(env, more...)
}

// TestAgentNotify runs the agent as systemd would with Type=notify and
// WatchdogSec=: READY=1 only once its state is open and the move a crash
// left half done is undone; STATUS= with the state and the applied commit
// at every transition; WATCHDOG=1 at half of WATCHDOG_USEC; STOPPING=1 on
// SIGTERM, then exit 0. Its JSON log is one object a line, the signal's
// notice included, and every transition is a record with the state.
func TestAgentNotify(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	root, state := scratch(t)
	args := []string{"--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0"}

	// A move killed half way: its first command ran (its undo takes a
	// second), the second runs when the agent is killed.
	a := startAgent(t, args...)
	a.waitFor("the first commit", appliedIs(c1))
	dir := t.TempDir()
	marker, again := filepath.Join(dir, "started"), filepath.Join(dir, "again")
	c2 := r.Commit("main", fleetFiles(1, "one\n", fmt.Sprintf(
		"exec \"first\" {\n  command = \"true\"\n  undo    = \"sleep 1\"\n}\n"+
			"exec \"second\" {\n  command = \"[ -e %s ] || { touch %s; sleep 30; }\"\n  undo    = \"true\"\n}\n", again, marker)))
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFile(t, marker, 30*time.Second)
	a.cmd.Process.Kill()
	a.wait(10 * time.Second)
	intentLog := filepath.Join(state, "intent.log")
	if _, err := os.Stat(intentLog); err != nil {
		t.Fatalf("no intent log after SIGKILL during a move: %v", err)
	}
	if err := os.WriteFile(again, nil, 0o644); err != nil { // the next move runs at once
		t.Fatal(err)
	}

	// The agent under "systemd": a watchdog of 200 ms, and no
	// WATCHDOG_PID, which go-systemd then takes to mean this process
	// (its pid is not known before it starts).
	sock, notes := notifySocket(t, intentLog)
	var stderr gittest.Buffer
	cmd := exec.Command(cairnBin(t), append([]string{"agent", "--listen", "", "--log-format", "json"}, args...)...)
	cmd.Env = environ("NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("agent log:\n%s", stderr.String())
		}
	})

	// Until the move to c2 ends.
	var got []notification
	idle := "STATUS=state idle, at " + c2[:12]
	deadline := time.After(60 * time.Second)
	for len(got) == 0 || got[len(got)-1].text != idle {
		select {
		case n := <-notes:
			got = append(got, n)
		case err := <-exited:
			t.Fatalf("agent exited before it moved to %s: %v", c2, err)
		case <-deadline:
			t.Fatalf("no %q within 60 s; got %q", idle, texts(got))
		}
	}
	ready := -1
	var statuses []string
	for i, n := range got {
		switch {
		case n.text == "READY=1":
			if ready >= 0 {
				t.Errorf("READY=1 sent twice")
			}
			ready = i
			if n.intent {
				t.Errorf("READY=1 sent while the intent log of the interrupted move was still there")
			}
		case strings.HasPrefix(n.text, "STATUS="):
			if ready < 0 {
				t.Errorf("%q before READY=1", n.text)
			}
			statuses = append(statuses, n.text)
		case n.text == "WATCHDOG=1":
		default:
			t.Errorf("unexpected notification %q", n.text)
		}
	}
	if ready < 0 {
		t.Fatalf("no READY=1: %q", texts(got))
	}
	// At start the host is at c1 (the interrupted move undone); the run
	// goes through the states, each sent; then it is at c2.
	want := []string{
		"STATUS=state idle, at " + c1[:12],
		"STATUS=state fetching, at " + c1[:12],
		"STATUS=state verifying, at " + c1[:12],
		"STATUS=state compiling, at " + c1[:12],
		"STATUS=state planning, at " + c1[:12],
		"STATUS=state applying, at " + c1[:12],
		"STATUS=state checking-drift, at " + c1[:12],
		"STATUS=state idle, at " + c1[:12],
		idle,
	}
	if strings.Join(statuses, "\n") != strings.Join(want, "\n") {
		t.Errorf("STATUS= notifications:\n%s\nwant\n%s", strings.Join(statuses, "\n"), strings.Join(want, "\n"))
	}

	// The watchdog: a ping every 100 ms, half of WATCHDOG_USEC, between
	// runs too.
	start := time.Now()
	pings := 0
	for window := time.After(time.Second); ; {
		select {
		case n := <-notes:
			if n.text == "WATCHDOG=1" {
				pings++
			}
			continue
		case <-window:
		}
		break
	}
	if pings < 5 || pings > 15 {
		t.Errorf("%d WATCHDOG=1 in %v; want about 10 (one every 100 ms)", pings, time.Since(start).Round(time.Millisecond))
	}

	// SIGTERM between runs: STOPPING=1, exit 0 at once.
	cmd.Process.Signal(syscall.SIGTERM)
	stopping := false
	for !stopping {
		select {
		case n := <-notes:
			stopping = n.text == "STOPPING=1"
		case <-time.After(10 * time.Second):
			t.Fatal("no STOPPING=1 within 10 s of SIGTERM")
		}
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("agent exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent still runs 10 s after SIGTERM")
	}

	// The log: JSON, one object a line, the notice of SIGTERM too.
	var states []string
	var recovered, noticed bool
	for _, rec := range jsonLines(t, stderr.String()) {
		switch rec["msg"] {
		case "agent state":
			s, _ := rec["state"].(string)
			states = append(states, s)
		case "stopping after the step that runs (a second signal kills it)":
			noticed = rec["signal"] == "terminated"
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "recovered an interrupted move") {
			recovered = true
		}
	}
	if want := "fetching verifying compiling planning applying checking-drift idle"; strings.Join(states, " ") != want {
		t.Errorf("logged states %q, want %q", states, want)
	}
	if !recovered {
		t.Errorf("the log does not tell of the recovery of the interrupted move")
	}
	if !noticed {
		t.Errorf("the log has no record of SIGTERM with signal=terminated")
	}
}

func texts(ns []notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.text
	}
	return out
}

// TestAgentJSONLog: with --log-format json, everything the agent writes to
// stderr is a record of its log: the states, what commands print, and the
// error it exits with.
func TestAgentJSONLog(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", fleetFiles(1, "one\n", "exec \"hello\" {\n  command = \"echo hello from exec; echo second line >&2\"\n  undo    = \"true\"\n}\n"))
	root, state := scratch(t)
	once := func(wantCode int) []map[string]any {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.Command(cairnBin(t), "agent", "--once", "--listen", "", "--log-format", "json",
			"--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state, "--allow-unsigned", "--confirm", "0")
		cmd.Env = environ()
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("agent --once exited %d, want %d\n%s", code, wantCode, stderr.String())
		}
		return jsonLines(t, stderr.String())
	}

	recs := once(0)
	var lines []string
	for _, rec := range recs {
		if rec["msg"] == "output" {
			line, _ := rec["line"].(string)
			lines = append(lines, line)
		}
		if rec["msg"] == "agent state" && rec["state"] == nil {
			t.Errorf("a transition without its state: %v", rec)
		}
	}
	if strings.Join(lines, "\n") != "hello from exec\nsecond line" {
		t.Errorf("the command's output as records: %q", lines)
	}

	r.Commit("main", map[string]string{"main.cairn": "fiel \"/srv/x\" {}\n"})
	recs = once(2)
	last := recs[len(recs)-1]
	if last["msg"] != "cairn exits" || last["level"] != "ERROR" || last["code"] != 2.0 ||
		!strings.Contains(fmt.Sprint(last["err"]), `refused (compile-error): main.cairn:1:1: unknown block type "fiel"`) {
		t.Errorf("the last record is %v; want the error the agent exits with", last)
	}
}
