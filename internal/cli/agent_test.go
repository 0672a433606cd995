package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// agentProc is `cairn agent` run as a real process under a scratch root.
type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
	err  error
}

const fleetHosts = `hosts {
  group "canary" {
    match  = ["web-01"]
    branch = "canary"
  }
  group "web" {
    match  = ["web-*"]
  }
}
`

// fleetFiles is a configuration of n files with content, for web hosts.
func fleetFiles(n int, content string, extra string) map[string]string {
	var b strings.Builder
	b.WriteString("dir \"/srv\" {}\n")
	for i := range n {
		fmt.Fprintf(&b, "file \"/srv/f%02d\" {\n  content = %q\n}\n", i, content)
	}
	b.WriteString(extra)
	return map[string]string{"hosts.cairn": fleetHosts, "main.cairn": b.String()}
}

// startAgent runs cairn agent with args besides a listener on a free
// loopback port and JSON logs, and waits until it listens.
func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	bin, err := exec.LookPath("cairn")
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{t: t, done: make(chan struct{})}
	a.cmd = exec.Command(bin, append([]string{"agent", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	a.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.log.WriteString(line + "\n")
			a.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				listening <- rec.Addr
			}
		}
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logText())
		}
	})
	select {
	case a.addr = <-listening:
	case <-a.done:
		// An agent --once may be done as soon as it listened: select
		// picks either of two ready cases.
		select {
		case a.addr = <-listening:
		default:
			t.Fatalf("agent exited before it listened: %v\n%s", a.err, a.logText())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not listen within 30 s\n%s", a.logText())
	}
	return a
}

func (a *agentProc) logText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// get returns the body of GET path.
func (a *agentProc) get(path string) (int, string) {
	a.t.Helper()
	resp, err := http.Get("http://" + a.addr + path)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a *agentProc) status() status.Document {
	a.t.Helper()
	code, body := a.get("/status")
	var doc status.Document
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		a.t.Fatalf("GET /status: %d %s", code, body)
	}
	return doc
}

// waitFor polls the status until cond holds, for at most 60 s.
func (a *agentProc) waitFor(what string, cond func(status.Document) bool) status.Document {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		doc := a.status()
		if cond(doc) {
			return doc
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("waited 60 s for %s; status %+v", what, doc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func appliedIs(commit string) func(status.Document) bool {
	return func(d status.Document) bool {
		return d.Applied != nil && d.Applied.Commit == commit && d.LastRun != nil && d.State == "idle"
	}
}

// wait waits for the agent to exit and returns its exit code.
func (a *agentProc) wait(limit time.Duration) int {
	a.t.Helper()
	select {
	case <-a.done:
	case <-time.After(limit):
		a.t.Fatalf("agent still runs %v after it was asked to stop\n%s", limit, a.logText())
	}
	if ee, ok := a.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if a.err != nil {
		a.t.Fatal(a.err)
	}
	return 0
}

func scratch(t *testing.T) (root, state string) {
	return t.TempDir(), filepath.Join(t.TempDir(), "state")
}

// TestAgentProcess runs the agent as a process: it applies at start,
// follows POST /trigger and SIGHUP, reports drift in /status and /metrics,
// and exits 0 on SIGTERM.
func TestAgentProcess(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(2, "one\n", ""))
	root, state := scratch(t)
	a := startAgent(t, "--repo", "file://"+r.Dir, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0")
	a.waitFor("the first commit", appliedIs(c1))
	if code, body := a.get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	_, metrics := a.get("/metrics")
	for _, want := range []string{
		`cairn_applied_commit_info{branch="main",commit="` + c1 + `",group="web"} 1`,
		`cairn_runs_total{result="applied"} 1`,
		`cairn_state{state="idle"} 1`,
		`cairn_converged 1`,
		`cairn_journal_steps 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	c2 := r.Commit("main", fleetFiles(2, "two\n", ""))
	resp, err := http.Post("http://"+a.addr+"/trigger", "text/plain", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /trigger: %v %v", resp, err)
	}
	resp.Body.Close()
	a.waitFor("the commit after POST /trigger", appliedIs(c2))

	c3 := r.Commit("main", fleetFiles(3, "three\n", ""))
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the commit after SIGHUP", appliedIs(c3))
	if got, _ := os.ReadFile(filepath.Join(root, "srv/f02")); string(got) != "three\n" {
		t.Errorf("srv/f02 = %q", got)
	}

	// Drift: a managed file edited by hand is reported, not repaired.
	os.WriteFile(filepath.Join(root, "srv/f00"), []byte("edited\n"), 0o644)
	a.cmd.Process.Signal(syscall.SIGHUP)
	doc := a.waitFor("the drift", func(d status.Document) bool { return len(d.Drift) == 1 })
	if doc.Converged || !strings.Contains(doc.Drift[0].Step, "/srv/f00") {
		t.Errorf("drift reported as %+v, converged %v", doc.Drift, doc.Converged)
	}
	_, metrics = a.get("/metrics")
	if !strings.Contains(metrics, "cairn_drift_steps 1") || !strings.Contains(metrics, "cairn_converged 0") {
		t.Errorf("/metrics does not show the drift:\n%s", grepLines(metrics, "cairn_drift_steps", "cairn_converged"))
	}
	if got, _ := os.ReadFile(filepath.Join(root, "srv/f00")); string(got) != "edited\n" {
		t.Errorf("--drift report changed the file: %q", got)
	}

	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.wait(10 * time.Second); code != 0 {
		t.Errorf("agent exited %d on SIGTERM", code)
	}
}

func grepLines(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// slowMove is a configuration whose move takes a while: a file, then a
// command that sleeps (with an undo, so that the move can be undone).
func slowMove(marker string) string { return slowMoveFor(marker, 3) }

// slowMoveFor is slowMove with a step that sleeps secs seconds.
func slowMoveFor(marker string, secs int) string {
	return fmt.Sprintf("file \"/srv/new\" {\n  content = \"new\"\n}\nexec \"slow\" {\n  command = \"touch %s; sleep %d\"\n  undo    = \"true\"\n}\n", marker, secs)
}

// waitFile waits until name exists.
func waitFile(t *testing.T, name string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(name); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", name, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inSlowMove starts an agent with args (after applying the first commit of
// r, c1), commits a slow move and triggers it, and returns once the move's
// slow step runs, with the commit it moves to.
func inSlowMove(t *testing.T, r *gittest.Repo, c1 string, args ...string) (*agentProc, string) {
	t.Helper()
	a := startAgent(t, args...)
	a.waitFor("the first commit", appliedIs(c1))
	marker := filepath.Join(t.TempDir(), "started")
	c2 := r.Commit("main", fleetFiles(1, "one\n", slowMove(marker)))
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFile(t, marker, 30*time.Second)
	return a, c2
}

// TestAgentSIGTERMDuringMove: SIGTERM during a move lets the step finish,
// undoes the move and exits 0 within 30 s.
func TestAgentSIGTERMDuringMove(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	root, state := scratch(t)
	a, _ := inSlowMove(t, r, c1, "--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0")
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Errorf("agent exited %d after SIGTERM during a move", code)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("agent exited %v after SIGTERM: the step that ran (sleep 3) was not let finish", took)
	}
	if _, err := os.Stat(filepath.Join(root, "srv/new")); !os.IsNotExist(err) {
		t.Errorf("srv/new after the interrupted move: %v; want it undone", err)
	}
	if !strings.Contains(a.logText(), `"result":"failed"`) {
		t.Errorf("no failed run in the log")
	}
}

// TestAgentSecondSIGTERMKills: a second SIGTERM during a move kills the
// step that runs at once (signals), rather than when the step ends or the
// agent's stop deadline passes, and the move is undone.
func TestAgentSecondSIGTERMKills(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	root, state := scratch(t)
	a := startAgent(t, "--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0")
	a.waitFor("the first commit", appliedIs(c1))
	marker := filepath.Join(t.TempDir(), "started")
	r.Commit("main", fleetFiles(1, "one\n", slowMoveFor(marker, 60)))
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFile(t, marker, 30*time.Second)
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGTERM)
	a.wait(90 * time.Second)
	if took := time.Since(start); took > 10*time.Second { // half the agent's stop deadline
		t.Errorf("agent exited %v after a second SIGTERM: the step that ran (sleep 60) was not killed", took)
	}
	if _, err := os.Stat(filepath.Join(root, "srv/new")); !os.IsNotExist(err) {
		t.Errorf("srv/new after the killed move: %v; want it undone", err)
	}
}

// TestAgentKilledDuringMove: an agent SIGKILLed during a move leaves the
// intent log; the next agent undoes the move before anything else, then
// moves again.
func TestAgentKilledDuringMove(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	root, state := scratch(t)
	args := []string{"--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0"}
	a, c2 := inSlowMove(t, r, c1, args...)
	a.cmd.Process.Kill()
	a.wait(10 * time.Second)
	if _, err := os.Stat(filepath.Join(state, "intent.log")); err != nil {
		t.Fatalf("no intent log after SIGKILL during a move: %v", err)
	}
	b := startAgent(t, append(args, "--once")...)
	if code := b.wait(60 * time.Second); code != 0 {
		t.Fatalf("agent --once after the crash exited %d\n%s", code, b.logText())
	}
	if _, err := os.Stat(filepath.Join(state, "intent.log")); !os.IsNotExist(err) {
		t.Errorf("intent log still there after recovery: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "srv/new")); string(got) != "new" {
		t.Errorf("srv/new = %q after the recovered agent moved again to %s", got, c2)
	}
}

// cairn runs a cairn command (not the agent) and returns its exit code and
// output.
func cairn(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("cairn", args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestRollbackWhileAgentRuns: cairn rollback and cairn resume, run while
// the agent runs, share its state and lock; the agent stays held at the
// commit rolled back to until the resume, then follows its branch again.
func TestRollbackWhileAgentRuns(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	root, state := scratch(t)
	args := []string{"--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state, "--allow-unsigned", "--confirm", "0"}
	a := startAgent(t, append(args, "--interval", "1h")...)
	a.waitFor("the first commit", appliedIs(c1))
	c2 := r.Commit("main", fleetFiles(1, "two\n", ""))
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the second commit", appliedIs(c2))

	code, out := cairn(t, append([]string{"rollback", "--listen", a.addr, "--reason", "bad deploy"}, args...)...)
	if code != 0 {
		t.Fatalf("cairn rollback: exit %d\n%s", code, out)
	}
	doc := a.waitFor("the hold", func(d status.Document) bool { return d.Held != nil && d.State == "held" })
	if doc.Applied.Commit != c1 || doc.Held.Commit != c1 || doc.Held.Reason != "bad deploy" {
		t.Errorf("after rollback: applied %s, held %+v; want %s", doc.Applied.Commit, doc.Held, c1)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "srv/f00")); string(got) != "one\n" {
		t.Errorf("srv/f00 = %q after the rollback", got)
	}
	// The agent's own runs do not move a held host.
	a.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	if doc := a.waitFor("a run while held", func(d status.Document) bool { return d.State == "held" }); doc.Applied.Commit != c1 {
		t.Errorf("held host moved to %s", doc.Applied.Commit)
	}
	code, out = cairn(t, "status", "--listen", a.addr)
	if code != 1 || !strings.Contains(out, "held") {
		t.Errorf("cairn status of a held host: exit %d\n%s", code, out)
	}

	code, out = cairn(t, append([]string{"resume", "--listen", a.addr}, args...)...)
	if code != 0 {
		t.Fatalf("cairn resume: exit %d\n%s", code, out)
	}
	// resume asks the agent for a run: it moves back to its branch's tip.
	doc = a.waitFor("the move after resume", appliedIs(c2))
	if doc.Held != nil {
		t.Errorf("still held after resume: %+v", doc.Held)
	}
}

// TestTriggerQueuesOne: triggers during a run queue one more run, not one
// each, and never two runs at once.
func TestTriggerQueuesOne(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	root, state := scratch(t)
	a, _ := inSlowMove(t, r, c1, "--repo", r.Dir, "--host", "web-02", "--root", root, "--state", state,
		"--allow-unsigned", "--interval", "1h", "--confirm", "0")
	for range 5 {
		resp, err := http.Post("http://"+a.addr+"/trigger", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The slow run, then exactly one queued run.
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(a.logText(), `"msg":"run ended"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the queued run did not come")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := strings.Count(a.logText(), `"msg":"run ended"`); n != 3 {
		t.Errorf("%d runs ended; want 3 (the first, the slow one, one queued by five triggers)", n)
	}
}
