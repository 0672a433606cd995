package agent

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// cancelAt cancels a run's context when it enters a state.
type cancelAt struct {
	at     State
	cancel context.CancelFunc
	states []State
}

func (o *cancelAt) Enter(s State, _ time.Time) {
	o.states = append(o.states, s)
	if s == o.at {
		o.cancel()
	}
}
func (o *cancelAt) Fetched(bool, time.Time) {}

// TestReviewSIGTERMDuringConfirmKeepsMove: a SIGTERM during the confirm
// window ends it early and keeps the move (§3): the run applied, exit 0,
// not a failure with exit 2 ("nothing changed") while the host moved.
func TestReviewSIGTERMDuringConfirmKeepsMove(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Confirm = 10 * time.Second })
	runOnce(t, p, Request{})
	next := files(1, "two\n")
	next["main.cairn"] += "check \"alive\" {\n  file     = \"/srv/f00\"\n  timeout  = \"300ms\"\n  interval = \"200ms\"\n}\n"
	c2 := r.Commit("main", next)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := &cancelAt{at: Confirming, cancel: cancel}
	rep := p.Run(ctx, Request{Mode: Apply}, obs)
	if !slices.Contains(rep.Run.States, Confirming) {
		t.Fatalf("never confirmed: %v, %v", rep.Run.States, rep.Err)
	}
	if got := h.read(t, "srv/f00"); got != "two\n" {
		t.Fatalf("srv/f00 = %q: the move was not kept", got)
	}
	if rep.Run.Result != ResultApplied || rep.ExitCode(Apply) != 0 || rep.Run.Commit != c2 {
		t.Errorf("SIGTERM during confirming: %s (exit %d), %v; want applied, exit 0: the move is kept", rep.Run.Result, rep.ExitCode(Apply), rep.Err)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Applied == nil || doc.Applied.Commit != c2 || doc.Applied.Time.IsZero() {
		t.Errorf("status after the kept move: applied %+v", doc.Applied)
	}
}

// TestReviewFetchFailureExit: a fetch that fails (the server is gone)
// changes nothing and is not bad input: exit 1, as Report.ExitCode says.
func TestReviewFetchFailureExit(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	if err := os.RemoveAll(r.Dir); err != nil {
		t.Fatal(err)
	}
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultFailed || rep.Err == nil {
		t.Fatalf("fetch from a removed repository: %s, %v", rep.Run.Result, rep.Err)
	}
	if got := rep.ExitCode(Follow); got != 1 {
		t.Errorf("a failed fetch exits %d, want 1 (2 is bad input): %v", got, rep.Err)
	}
}

// TestReviewCorruptRecords: a record of the agent that cannot be read (a
// disk error, a hand edit) must not stop the agent from starting or
// following its branch: the status, runs, target and bad moves are the
// agent's own bookkeeping, rewritten by the next run.
func TestReviewCorruptRecords(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	for _, name := range []string{recordRuns, recordTarget, recordBad, recordDrift, recordLifecycle} {
		if err := os.WriteFile(filepath.Join(h.state, "agent", name+".json"), []byte("{\x00garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Status(context.Background()); err != nil {
		t.Errorf("status with corrupt records: %v (the agent would not start)", err)
	}
	c2 := r.Commit("main", files(1, "two\n"))
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 {
		t.Errorf("run with corrupt records: %s to %s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
	}
	if _, err := p.Status(context.Background()); err != nil {
		t.Errorf("status after the run: %v", err)
	}
}

// TestReviewBrokenCounted: a state that cannot be put back (a corrupt
// intent log: exit 3) is counted as a broken run and shown as broken by
// the metrics, every run.
func TestReviewBrokenCounted(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	if err := os.WriteFile(filepath.Join(h.state, "intent.log"), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := NewDaemon(p, DaemonConfig{Interval: time.Hour, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.Result != ResultBroken || rep.ExitCode(Follow) != 3 {
		t.Fatalf("run on a broken state: %s (exit %d), %v", rep.Run.Result, rep.ExitCode(Follow), rep.Err)
	}
	if got := gauge(t, d, "cairn_runs_total", "result", "broken"); got != 1 {
		t.Errorf("cairn_runs_total{result=broken} = %v, want 1", got)
	}
	if doc := d.Status(); doc.State != string(Broken) || doc.Converged {
		t.Errorf("status of a broken host: state %s, converged %v", doc.State, doc.Converged)
	}
}

// signer is an SSH key that signs commits, and the trust file naming it.
type signer struct {
	key, trust string
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	dir := t.TempDir()
	s := &signer{key: filepath.Join(dir, "key"), trust: filepath.Join(dir, "allowed")}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", s.key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(s.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.trust, []byte("test@example.org namespaces=\"git\" "+strings.TrimSpace(string(pub))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReviewUnsignedHostsBlock: the hosts block decides which branch (and
// which group's configuration) the host gets: read from an unsigned tip of
// the control branch, it lets whoever can push (or controls the server)
// move a host onto another group's signed branch.
func TestReviewUnsignedHostsBlock(t *testing.T) {
	sg := newSigner(t)
	r := gittest.New(t)
	r.Git("config", "gpg.format", "ssh")
	r.Git("config", "user.signingkey", sg.key)
	c1 := r.Commit("main", files(1, "web\n"), "-S")
	r.Commit("canary", files(1, "canary\n"), "-S")
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.AllowUnsigned, c.Trust = false, sg.trust })
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultApplied || rep.Run.Commit != c1 {
		t.Fatalf("first run: %s to %s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
	}
	// An unsigned commit on main puts every web host on the canary branch.
	evil := files(1, "web\n")
	evil["hosts.cairn"] = strings.Replace(hostsBlock, "match  = [\"web-*\"]", "match  = [\"web-*\"]\n    branch = \"canary\"", 1)
	r.Commit("main", evil)
	rep := runOnce(t, p, Request{})
	if got := h.read(t, "srv/f00"); got != "web\n" {
		t.Errorf("an unsigned hosts block moved the host to another branch: srv/f00 = %q (%s to %s)", got, rep.Run.Result, rep.Run.Commit)
	}
	if rep.Run.Result != ResultRefused || rep.Run.Reason != Unsigned {
		t.Errorf("unsigned control tip: %s (%s), %v; want refused (unsigned)", rep.Run.Result, rep.Run.Reason, rep.Err)
	}
}

// gauge returns the value of the series of metric name whose label is
// value (-1 when there is none).
func gauge(t *testing.T, d *Daemon, name, label, value string) float64 {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.Counter != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestReviewStatusWithoutTrust: only the commands that move the host need
// --trust or --allow-unsigned (§1); cairn status and cairn resume, run by
// hand without the unit's environment, must work without them.
func TestReviewStatusWithoutTrust(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	runOnce(t, h.pipeline(t, r, "web-02", nil), Request{})
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Repo, c.AllowUnsigned = "", false })
	doc, err := p.Status(context.Background())
	if err != nil || doc.Applied == nil {
		t.Errorf("status without a trust file: %+v, %v", doc.Applied, err)
	}
	if _, err := p.Resume(context.Background()); err != nil {
		t.Errorf("resume without a trust file: %v", err)
	}
	// A move still refuses an unsigned commit.
	c2 := r.Commit("main", files(1, "two\n"))
	rep := runOnce(t, h.pipeline(t, r, "web-02", func(c *Config) { c.AllowUnsigned = false }), Request{Mode: Apply, To: c2})
	if rep.Run.Result != ResultRefused || rep.Run.Reason != Unsigned {
		t.Errorf("apply without a trust file: %s (%s), %v", rep.Run.Result, rep.Run.Reason, rep.Err)
	}
}

// aliveConfig is a configuration whose CHECK holds while /srv/alive
// exists.
func aliveConfig(content string) map[string]string {
	c := files(1, content)
	c["main.cairn"] += "file \"/srv/alive\" {\n  content = \"yes\"\n}\ncheck \"alive\" {\n  file     = \"/srv/alive\"\n  timeout  = \"300ms\"\n  interval = \"200ms\"\n}\n"
	return c
}

// killAlive removes /srv/alive a second after the next move makes it, as
// a service that dies after its first check would.
func killAlive(t *testing.T, h *host) {
	t.Helper()
	alive := filepath.Join(h.root, "srv/alive")
	os.Remove(alive)
	go func() {
		for range 200 {
			if _, err := os.Stat(alive); err == nil {
				time.Sleep(time.Second)
				os.Remove(alive)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
}

// TestReviewRollbackSkipsUnconfirmed: the move back after a failed
// confirmation is an applied move in the history; the default rollback
// must not take the commit that failed as "the one applied before".
func TestReviewRollbackSkipsUnconfirmed(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Confirm = 3 * time.Second })
	runOnce(t, p, Request{})
	c2 := r.Commit("main", files(1, "two\n"))
	runOnce(t, p, Request{})
	bad := r.Commit("main", aliveConfig("three\n"))
	killAlive(t, h)
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultFailed || h.read(t, "srv/f00") != "two\n" {
		t.Fatalf("the move to %s: %s, %v; srv/f00 %q", short(bad), rep.Run.Result, rep.Err, h.read(t, "srv/f00"))
	}
	rep := runOnce(t, p, Request{Mode: Rollback})
	if rep.Run.Commit != c1 || h.read(t, "srv/f00") != "one\n" {
		t.Errorf("rollback from %s went to %s (%s), want %s, the commit applied before; %s is the one that failed its confirmation",
			short(c2), short(rep.Run.Commit), rep.Run.Result, short(c1), short(bad))
	}
}

// TestReviewRollbackUnconfirmedNotPinned: a rollback whose confirmation
// fails is undone; the host is back where it was, and must not be held
// at the commit it failed to reach.
func TestReviewRollbackUnconfirmedNotPinned(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", aliveConfig("one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Confirm = 3 * time.Second })
	runOnce(t, p, Request{})
	c2 := r.Commit("main", files(1, "two\n"))
	runOnce(t, p, Request{})
	killAlive(t, h)
	rep := runOnce(t, p, Request{Mode: Rollback, To: c1})
	if rep.Run.Result != ResultFailed || h.read(t, "srv/f00") != "two\n" {
		t.Fatalf("rollback to %s: %s, %v; srv/f00 %q", short(c1), rep.Run.Result, rep.Err, h.read(t, "srv/f00"))
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Held != nil {
		t.Errorf("the failed rollback left a pin at %s while the host is at %s (state %s)", short(doc.Held.Commit), short(c2), doc.State)
	}
	if last := rep.Run.States[len(rep.Run.States)-1]; last != Idle {
		t.Errorf("the failed rollback ended %s, want idle", last)
	}
}

// TestReviewPlanLeavesNoRun: cairn plan changes nothing; its run must not
// become the last run that status shows, hiding the agent's failure.
func TestReviewPlanLeavesNoRun(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	bad := files(1, "bad\n")
	bad["main.cairn"] += "check \"never\" {\n  file    = \"/srv/missing\"\n  timeout = \"200ms\"\n}\n"
	r.Commit("main", bad)
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultFailed {
		t.Fatalf("the failing commit: %s, %v", rep.Run.Result, rep.Err)
	}
	if rep := runOnce(t, p, Request{Mode: Plan, To: "main~1"}); rep.Run.Result != ResultUnchanged || rep.Err != nil {
		t.Fatalf("plan: %s, %v", rep.Run.Result, rep.Err)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.LastRun == nil || doc.LastRun.Result != string(ResultFailed) || len(doc.RecentRuns) != 2 {
		t.Errorf("after cairn plan, status shows the last run %+v (%d runs); want the failed run of the agent", doc.LastRun, len(doc.RecentRuns))
	}
}

// TestReviewExplicitMoveDespiteBadControlTip: when the control branch's
// tip is refused (it does not compile, or is unsigned), cairn rollback and
// cairn apply --to are the way out: they must not be refused for it.
func TestReviewExplicitMoveDespiteBadControlTip(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	c2 := r.Commit("main", files(1, "two\n"))
	runOnce(t, p, Request{})
	r.Commit("main", map[string]string{"main.cairn": "file \"/srv/f00\" {\n  content = \n}\n"})
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultRefused {
		t.Fatalf("the broken tip: %s, %v", rep.Run.Result, rep.Err)
	}
	rep := runOnce(t, p, Request{Mode: Rollback})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != c1 || h.read(t, "srv/f00") != "one\n" {
		t.Errorf("rollback under a broken control tip: %s to %s, %v", rep.Run.Result, short(rep.Run.Commit), rep.Err)
	}
	rep = runOnce(t, p, Request{Mode: Apply, To: c2})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 || h.read(t, "srv/f00") != "two\n" || rep.Group != "web" {
		t.Errorf("apply --to under a broken control tip: %s to %s (group %q), %v", rep.Run.Result, short(rep.Run.Commit), rep.Group, rep.Err)
	}
}

// TestReviewUnconfirmedWayBackFails: a move fails its confirmation and the
// way back fails too (a CHECK of the old journal no longer holds): the
// host is broken (exit 3) at a commit that failed; it must not be shown
// converged, the move is bad, and the next runs retry the way back.
func TestReviewUnconfirmedWayBackFails(t *testing.T) {
	r := gittest.New(t)
	gated := files(1, "one\n")
	gated["main.cairn"] += "check \"gate\" {\n  file    = \"/srv/gate\"\n  timeout = \"200ms\"\n}\n"
	c1 := r.Commit("main", gated)
	h := newHost(t)
	gate := filepath.Join(h.root, "srv/gate")
	if err := os.MkdirAll(filepath.Dir(gate), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Confirm = 3 * time.Second })
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultApplied {
		t.Fatalf("first run: %s, %v", rep.Run.Result, rep.Err)
	}
	bad := r.Commit("main", aliveConfig("two\n"))
	// The service dies, and takes the gate with it.
	alive := filepath.Join(h.root, "srv/alive")
	go func() {
		for range 200 {
			if _, err := os.Stat(alive); err == nil {
				time.Sleep(time.Second)
				os.Remove(gate)
				os.Remove(alive)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultBroken || rep.ExitCode(Follow) != 3 {
		t.Fatalf("the move to %s: %s (exit %d), %v", short(bad), rep.Run.Result, rep.ExitCode(Follow), rep.Err)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Converged || len(doc.BadCommits) != 1 {
		t.Errorf("after a way back that failed: converged %v, bad commits %+v", doc.Converged, doc.BadCommits)
	}
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultBroken {
		t.Errorf("the next run: %s %v, %v; want the way back retried, broken again", rep.Run.Result, rep.Run.States, rep.Err)
	}
	// Once the gate is back, the next run puts the host back at c1.
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rep = runOnce(t, p, Request{})
	if h.read(t, "srv/f00") != "one\n" || rep.Run.Result != ResultFailed {
		t.Errorf("the way back, retried: %s, %v; srv/f00 %q", rep.Run.Result, rep.Err, h.read(t, "srv/f00"))
	}
	if doc, _ := p.Status(context.Background()); doc.Applied == nil || doc.Applied.Commit != c1 {
		t.Errorf("after the way back the host is at %+v, want %s", doc.Applied, short(c1))
	}
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultUnchanged || h.read(t, "srv/f00") != "one\n" {
		t.Errorf("the bad move was tried again: %s, %v", rep.Run.Result, rep.Err)
	}
}

// lockState holds the state lock of h, as cairn apply by hand does, until
// the test ends or release is called.
func lockState(t *testing.T, h *host) (release func()) {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: h.state, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { a.Close(); root.Close() }) }
	t.Cleanup(release)
	return release
}

// TestReviewSIGTERMWhileWaitingForTheLock: a run that waits for the lock
// of a host command (a long cairn apply) ends when it is stopped, instead
// of keeping systemd waiting for the lock's 15 minutes.
func TestReviewSIGTERMWhileWaitingForTheLock(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil) // LockWait: a minute
	lockState(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep := p.Run(ctx, Request{}, nil)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a stopped run waited %v for the lock", took.Round(time.Second))
	}
	if rep.Run.Result != ResultFailed || h.read(t, "srv/f00") != "<no such file or directory>" {
		t.Errorf("stopped while waiting for the lock: %s, %v", rep.Run.Result, rep.Err)
	}
}

// TestReviewStartWhileLocked: an agent that starts while a host command
// holds the lock still gets ready and serves (systemd's start timeout is
// 90 s); its first run waits for the lock.
func TestReviewStartWhileLocked(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	c1 := r.Commit("main", files(1, "two\n"))
	release := lockState(t, h)
	listening := make(chan struct{})
	d, err := NewDaemon(p, DaemonConfig{Interval: time.Hour, Once: true, Listen: "127.0.0.1:0",
		Listening: func(net.Addr) { close(listening) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Report, 1)
	go func() {
		rep, err := d.Run(context.Background())
		if err != nil {
			t.Errorf("the agent: %v", err)
		}
		done <- rep
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Errorf("the agent did not listen within 10 s while the state was locked")
	}
	release()
	select {
	case rep := <-done:
		if rep == nil || rep.Run.Result != ResultApplied || rep.Run.Commit != c1 {
			t.Errorf("the first run after the lock: %+v", rep)
		}
	case <-time.After(70 * time.Second):
		t.Fatal("the agent's run did not end")
	}
}

// TestReviewPlanShowsDrift: cairn plan prints the plan and the drift (§7),
// with --drift report (the default) too, and exits 1 when there is drift.
func TestReviewPlanShowsDrift(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(2, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	if err := os.WriteFile(filepath.Join(h.root, "srv/f00"), []byte("by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := runOnce(t, p, Request{Mode: Plan})
	if len(rep.Drift) != 1 || rep.ExitCode(Plan) != 1 {
		t.Errorf("plan of a drifted host: drift %d, exit %d, %v; want 1 drifted step, exit 1", len(rep.Drift), rep.ExitCode(Plan), rep.Err)
	}
	if rep.Plan != nil && rep.Plan.Acts() {
		t.Errorf("with --drift report the plan runs nothing again, yet it acts: %+v", rep.Plan.Ops)
	}
	r.Commit("main", files(3, "one\n"))
	rep = runOnce(t, p, Request{Mode: Plan})
	if len(rep.Drift) != 1 || rep.Plan == nil || rep.Plan.Acting() != 1 {
		t.Errorf("plan of a move on a drifted host: drift %d, plan %+v, %v", len(rep.Drift), rep.Plan, rep.Err)
	}
	if h.read(t, "srv/f00") != "by hand\n" {
		t.Errorf("the plan changed the host")
	}
}

// TestReviewSIGTERMWhilePlanningNotBad: a run stopped while it plans (the
// drift check of --drift repair) has not found the commit bad: the next
// run applies it.
func TestReviewSIGTERMWhilePlanningNotBad(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", func(c *Config) { c.Drift = DriftRepair })
	runOnce(t, p, Request{})
	c2 := r.Commit("main", files(2, "two\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := p.Run(ctx, Request{}, &cancelAt{at: Planning, cancel: cancel})
	if rep.Run.Result == ResultRefused {
		t.Errorf("stopped while planning: refused (%s), %v; nothing was wrong with the commit", rep.Run.Reason, rep.Err)
	}
	rep = runOnce(t, p, Request{})
	if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 {
		t.Errorf("the run after: %s to %s, %v; want %s applied", rep.Run.Result, short(rep.Run.Commit), rep.Err, short(c2))
	}
}

// TestReviewApplyToHeldHostMovesPin: cairn apply --to on a held host moves
// it and keeps it held (Request.Mode Apply): held where it now is, not at
// the commit it left.
func TestReviewApplyToHeldHostMovesPin(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	r.Commit("main", files(1, "two\n"))
	runOnce(t, p, Request{})
	if rep := runOnce(t, p, Request{Mode: Rollback, Reason: "incident"}); rep.Run.Result != ResultApplied {
		t.Fatalf("rollback: %s, %v", rep.Run.Result, rep.Err)
	}
	c3 := r.Commit("main", files(1, "three\n"))
	if rep := runOnce(t, p, Request{Mode: Apply, To: c3}); rep.Run.Result != ResultApplied {
		t.Fatalf("apply --to: %s, %v", rep.Run.Result, rep.Err)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Held == nil || doc.Held.Commit != c3 || doc.Applied.Commit != c3 || doc.Held.Reason != "incident" {
		t.Errorf("after apply --to %s on a held host: held %+v, applied %s", short(c3), doc.Held, short(doc.Applied.Commit))
	}
}

// TestReviewCorruptPin: a pin that cannot be read holds the host (a
// rollback's pin must not be lost to a disk error), is shown, and cairn
// resume lifts it.
func TestReviewCorruptPin(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	if err := os.WriteFile(filepath.Join(h.state, "agent", recordPin+".json"), []byte("{\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := r.Commit("main", files(1, "two\n"))
	rep := runOnce(t, p, Request{})
	if rep.Run.Result != ResultUnchanged || h.read(t, "srv/f00") != "one\n" || rep.Run.States[len(rep.Run.States)-1] != Held {
		t.Errorf("run with a corrupt pin: %s %v, %v; want held at %s", rep.Run.Result, rep.Run.States, rep.Err, short(c1))
	}
	doc, err := p.Status(context.Background())
	if err != nil || doc.Held == nil {
		t.Errorf("status with a corrupt pin: held %+v, %v", doc.Held, err)
	}
	if ok, err := p.Resume(context.Background()); !ok || err != nil {
		t.Errorf("resume of a corrupt pin: %v, %v", ok, err)
	}
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultApplied || rep.Run.Commit != c2 {
		t.Errorf("after resume: %s to %s, %v", rep.Run.Result, short(rep.Run.Commit), rep.Err)
	}
}

// TestReviewFinishedWhileLocked: when a host command takes the lock as
// a run ends, the agent's status read-back must not keep a SIGTERM
// waiting for that command's whole move.
func TestReviewFinishedWhileLocked(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	d, err := NewDaemon(p, DaemonConfig{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rep := p.Run(context.Background(), Request{}, d)
	lockState(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	d.finished(ctx, rep)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the status read-back waited %v for the lock after the stop", took.Round(time.Second))
	}
	if got := gauge(t, d, "cairn_runs_total", "result", "applied"); got != 1 {
		t.Errorf("cairn_runs_total{result=applied} = %v, want 1", got)
	}
}

// TestReviewRefusedControlTipNotConverged: a control-branch tip whose
// hosts block is refused is still the tip last fetched: the host, left
// where it was, is not shown converged with it.
func TestReviewRefusedControlTipNotConverged(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(1, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	runOnce(t, p, Request{})
	broken := r.Commit("main", map[string]string{"main.cairn": "file \"/srv/f00\" {\n  content = \n}\n"})
	if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultRefused {
		t.Fatalf("the broken tip: %s, %v", rep.Run.Result, rep.Err)
	}
	doc, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Converged || doc.Target == nil || doc.Target.Commit != broken {
		t.Errorf("after the refused tip %s: converged %v, target %+v", short(broken), doc.Converged, doc.Target)
	}
}
