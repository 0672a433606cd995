package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/rootfs"
)

// hostsBlock puts web-01 in the canary group (branch canary) and every
// other web-* host in web (branch main).
const hostsBlock = `hosts {
  group "canary" {
    match  = ["web-01"]
    branch = "canary"
  }
  group "web" {
    match  = ["web-*"]
  }
}
`

// host is a scratch host: a root and a state directory.
type host struct {
	root, state string
}

func newHost(t *testing.T) *host {
	t.Helper()
	h := &host{root: t.TempDir()}
	h.state = filepath.Join(t.TempDir(), "state")
	return h
}

func (h *host) pipeline(t *testing.T, r *gittest.Repo, name string, edit func(*Config)) *Pipeline {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	cfg := Config{
		Repo: r.Dir, Host: name, Branch: "main", Root: root, StateDir: h.state,
		AllowUnsigned: true, Drift: DriftReport, MaxRemoval: 25, LockWait: time.Minute,
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (h *host) read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.root, rel))
	if err != nil {
		return "<" + errors.Unwrap(err).Error() + ">"
	}
	return string(b)
}

// transitions records the states a run went through, and checks each step
// against the lifecycle table.
type transitions struct {
	t      *testing.T
	states []State
}

func (o *transitions) Enter(s State, _ time.Time) { o.states = append(o.states, s) }
func (o *transitions) Fetched(bool, time.Time)    {}

func runOnce(t *testing.T, p *Pipeline, req Request) *Report {
	t.Helper()
	obs := &transitions{t: t}
	rep := p.Run(context.Background(), req, obs)
	if !slices.Equal(obs.states, rep.Run.States) {
		t.Errorf("observer saw %v, report says %v", obs.states, rep.Run.States)
	}
	prev := Idle
	for _, s := range rep.Run.States {
		if !prev.CanGo(s) && !(prev == Idle && s == Fetching) && !(prev == Held && s == Fetching) {
			t.Errorf("run went %s → %s, which the lifecycle table does not allow", prev, s)
		}
		prev = s
	}
	return rep
}

func files(n int, content string) map[string]string {
	var b strings.Builder
	b.WriteString("dir \"/srv\" {}\n")
	for i := range n {
		fmt.Fprintf(&b, "file \"/srv/f%02d\" {\n  content = %q\n}\n", i, content)
	}
	return map[string]string{"hosts.cairn": hostsBlock, "main.cairn": b.String()}
}

// TestFollow moves a host along its branch: the first commit, nothing to do,
// the next commit; the group's branch decides what web-01 follows.
func TestFollow(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(2, "one\n"))
	canary := r.Commit("canary", files(2, "canary\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Version = "1.2.3" })

	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultApplied || rep.Err != nil {
		t.Fatalf("first run: %s, %v", rep.Run.Result, rep.Err)
	}
	if rep.Run.Commit != c1 || rep.Group != "web" || rep.Branch != "main" {
		t.Errorf("first run went to %s (group %s, branch %s), want %s of web/main", rep.Run.Commit, rep.Group, rep.Branch, c1)
	}
	want := []State{Fetching, Verifying, Compiling, Planning, Applying, CheckingDrift, Idle}
	if !slices.Equal(rep.Run.States, want) {
		t.Errorf("states %v, want %v", rep.Run.States, want)
	}
	if got := h.read(t, "srv/f01"); got != "one\n" {
		t.Errorf("srv/f01 = %q", got)
	}

	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultUnchanged || rep.Err != nil {
		t.Fatalf("second run: %s, %v", rep.Run.Result, rep.Err)
	}
	if want := []State{Fetching, CheckingDrift, Idle}; !slices.Equal(rep.Run.States, want) {
		t.Errorf("unchanged run went %v, want %v (no compile)", rep.Run.States, want)
	}

	r.Commit("main", files(3, "two\n"))
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultApplied || rep.Run.From != c1 {
		t.Fatalf("third run: %s from %s, %v", rep.Run.Result, rep.Run.From, rep.Err)
	}
	if got := h.read(t, "srv/f02"); got != "two\n" {
		t.Errorf("srv/f02 = %q", got)
	}

	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Converged || doc.Applied == nil || doc.Applied.Commit != rep.Run.Commit || doc.Applied.Steps != 4 || doc.State != string(Idle) || doc.Version != "1.2.3" {
		t.Errorf("status after the move: %+v", doc)
	}

	// The canary follows its own branch.
	hc := newHost(t)
	rep = runOnce(t, hc.pipeline(t, r, "web-01", nil), Request{})
	if rep.Run.Commit != canary || rep.Group != "canary" || rep.Branch != "canary" {
		t.Errorf("canary went to %s (group %s, branch %s), want %s", rep.Run.Commit, rep.Group, rep.Branch, canary)
	}
	if got := hc.read(t, "srv/f00"); got != "canary\n" {
		t.Errorf("canary's srv/f00 = %q (%s, %v)", got, rep.Run.Result, rep.Err)
	}
}

// TestFailingCheckUndoneNotRetried: a commit whose CHECK fails is undone,
// costs one attempt, and the next commit is tried as usual.
func TestFailingCheckUndoneNotRetried(t *testing.T) {
	r := gittest.New(t)
	good := r.Commit("main", files(1, "good\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultApplied {
		t.Fatalf("first run: %s, %v", rep.Run.Result, rep.Err)
	}
	bad := files(1, "bad\n")
	bad["main.cairn"] += "check \"never\" {\n  file    = \"/srv/missing\"\n  timeout = \"200ms\"\n}\n"
	badCommit := r.Commit("main", bad)
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultFailed || rep.ExitCode(Follow) != 1 {
		t.Fatalf("bad commit: %s (exit %d), %v", rep.Run.Result, rep.ExitCode(Follow), rep.Err)
	}
	if got := h.read(t, "srv/f00"); got != "good\n" {
		t.Errorf("after the failed move srv/f00 = %q, want it undone", got)
	}
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultUnchanged || slices.Contains(rep.Run.States, Applying) {
		t.Errorf("the bad move was tried again: %s %v", rep.Run.Result, rep.Run.States)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.BadCommits) != 1 || doc.BadCommits[0].Commit != badCommit || doc.Converged || doc.Applied.Commit != good {
		t.Errorf("status: bad %+v, converged %v, applied %+v", doc.BadCommits, doc.Converged, doc.Applied)
	}
	fixed := r.Commit("main", files(1, "fixed\n"))
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != fixed {
		t.Errorf("the fix: %s to %s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
	}
}

// TestRefusals: each refusal changes nothing and is reported with its
// reason and exit code 2.
func TestRefusals(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(30, "v1\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultApplied {
		t.Fatalf("first run: %s, %v", rep.Run.Result, rep.Err)
	}
	applied := r.Git("rev-parse", "main")

	refused := func(name string, reason Reason) {
		t.Helper()
		rep := runOnce(t, p, Request{})
		if rep.Run.Result != ResultRefused || rep.Run.Reason != reason || rep.ExitCode(Follow) != 2 {
			t.Errorf("%s: %s (%s), exit %d, %v; want refused (%s)", name, rep.Run.Result, rep.Run.Reason, rep.ExitCode(Follow), rep.Err, reason)
		}
		if got := h.read(t, "srv/f00"); got != "v1\n" {
			t.Errorf("%s: srv/f00 = %q: a refusal changed the host", name, got)
		}
	}

	r.Commit("main", map[string]string{"main.cairn": "file \"/srv/f00\" {\n  content = \n}\n"})
	refused("syntax error", CompileError)

	r.Commit("main", files(5, "v2\n"))
	refused("25 of 30 removed", BlastRadius)
	rep := runOnce(t, p, Request{Mode: Apply, AllowRemoval: true})
	if rep.Run.Result != ResultApplied {
		t.Errorf("apply --allow-removal: %s, %v", rep.Run.Result, rep.Err)
	}
	if got := h.read(t, "srv/f29"); !strings.HasPrefix(got, "<") {
		t.Errorf("srv/f29 = %q after the removal", got)
	}

	// A force-push to a commit that does not descend from the applied one.
	r.Git("checkout", "-q", "--orphan", "other")
	r.Commit("other", files(5, "forced\n"))
	r.Git("branch", "-f", "main", "other")
	refused2 := runOnce(t, p, Request{})
	if refused2.Run.Result != ResultRefused || refused2.Run.Reason != NotDescendant {
		t.Errorf("force-push: %s (%s), %v", refused2.Run.Result, refused2.Run.Reason, refused2.Err)
	}
	if got := r.Git("rev-parse", "HEAD"); got == applied {
		t.Fatal("the force-push did not change main")
	}
}

// TestRollbackHoldsUntilResume: a rollback moves back and pins the host;
// the agent's runs do not move it; resume lets it follow again.
func TestRollbackHoldsUntilResume(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(2, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	c2 := r.Commit("main", files(2, "two\n"))
	if rep := runOnce(t, p, Request{}); rep.Run.Commit != c2 {
		t.Fatalf("second run went to %s, want %s: %v", rep.Run.Commit, c2, rep.Err)
	}
	rep := runOnce(t, p, Request{Mode: Rollback, Reason: "test"})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != c1 || h.read(t, "srv/f00") != "one\n" {
		t.Fatalf("rollback: %s to %s, %v; srv/f00 %q", rep.Run.Result, rep.Run.Commit, rep.Err, h.read(t, "srv/f00"))
	}
	if last := rep.Run.States[len(rep.Run.States)-1]; last != Held {
		t.Errorf("rollback ended in %s, want held", last)
	}
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultUnchanged || h.read(t, "srv/f00") != "one\n" {
		t.Errorf("held host moved: %s to %s", rep.Run.Result, rep.Run.Commit)
	}
	doc, _ := p.Status(context.Background())
	if doc.Held == nil || doc.Held.Commit != c1 || doc.Held.Reason != "test" || doc.State != string(Held) {
		t.Errorf("status of a held host: held %+v, state %s", doc.Held, doc.State)
	}
	if rep := runOnce(t, p, Request{Mode: Apply}); rep.ExitCode(Apply) != 2 || h.read(t, "srv/f00") != "one\n" {
		t.Errorf("apply on a held host: exit %d, %v; want exit 2 and nothing moved", rep.ExitCode(Apply), rep.Err)
	}
	if ok, err := p.Resume(context.Background()); !ok || err != nil {
		t.Fatalf("resume: %v, %v", ok, err)
	}
	// The move back to c2 descends from c1 as the history says.
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 || h.read(t, "srv/f00") != "two\n" {
		t.Errorf("after resume: %s to %s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
	}
}

// TestConfirmWindow: a CHECK that holds when the move ends but stops
// holding during the confirm window undoes the move.
func TestConfirmWindow(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Confirm = 3 * time.Second })
	runOnce(t, p, Request{})
	next := files(1, "two\n")
	next["main.cairn"] += "file \"/srv/alive\" {\n  content = \"yes\"\n}\ncheck \"alive\" {\n  file     = \"/srv/alive\"\n  timeout  = \"300ms\"\n  interval = \"200ms\"\n}\n"
	r.Commit("main", next)
	// Something on the host removes the file a second into the window.
	go func() {
		for range 100 {
			if _, err := os.Stat(filepath.Join(h.root, "srv/alive")); err == nil {
				time.Sleep(time.Second)
				os.Remove(filepath.Join(h.root, "srv/alive"))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultFailed || !slices.Contains(rep.Run.States, Confirming) {
		t.Fatalf("confirm: %s %v, %v", rep.Run.Result, rep.Run.States, rep.Err)
	}
	if got := h.read(t, "srv/f00"); got != "one\n" {
		t.Errorf("srv/f00 = %q: the move was not undone", got)
	}
}

// TestMissingGroupBranch: a hosts block that sends the host to a branch the
// server lacks fails each run (exit 1), changes nothing, and the host does
// not look converged.
func TestMissingGroupBranch(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	if rep := runOnce(t, p, Request{}); rep.Run.Commit != c1 || rep.Run.Result != ResultApplied {
		t.Fatalf("first run: %s to %s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
	}
	moved := files(1, "one\n")
	moved["hosts.cairn"] = strings.Replace(hostsBlock, "match  = [\"web-*\"]", "match  = [\"web-*\"]\n    branch = \"nosuch\"", 1)
	r.Commit("main", moved)
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultFailed || rep.ExitCode(Follow) != 1 || !strings.Contains(fmt.Sprint(rep.Err), "nosuch") {
		t.Fatalf("run to a missing branch: %s, exit %d, %v", rep.Run.Result, rep.ExitCode(Follow), rep.Err)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Converged || doc.Target == nil || doc.Target.Branch != "nosuch" || doc.Applied.Commit != c1 {
		t.Errorf("status with the group's branch missing: converged %v, target %+v, applied %+v", doc.Converged, doc.Target, doc.Applied)
	}
	if got := h.read(t, "srv/f00"); got != "one\n" {
		t.Errorf("srv/f00 = %q", got)
	}
}
