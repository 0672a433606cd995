package systemd_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/testhost"
)

// The tests here check cairn's claims about systemd against a real one: a
// Debian 12 host booted with systemd as PID 1 (internal/testhost), cairn
// installed in it as its package lays it out (Host.InstallCairn), the
// agent run by systemd/cairn.service. Run them with
//
//	go test -run TestHost ./systemd/

// repoMount is where a test's repository is seen inside its host.
const repoMount = "/cairn-repo"

// agentHost is a test host with cairn installed and a repository of the
// test's own as its CAIRN_REPO.
type agentHost struct {
	*testhost.Host
	t    *testing.T
	repo *gittest.Repo
	// listen is the agent's CAIRN_LISTEN: a free port of the machine's
	// loopback, which the host shares.
	listen string
}

// helloConfig is a configuration that manages one file.
func helloConfig(content string) map[string]string {
	return map[string]string{"main.cairn": fmt.Sprintf("file \"/srv/hello\" {\n  content = %q\n}\n", content)}
}

// bootAgent boots a host and installs cairn in it, set to follow repo
// (bind-mounted read-only) every 2 seconds, unsigned, without a
// confirmation window; extra settings are added to /etc/default/cairn.
// The agent is not started.
func bootAgent(t *testing.T, repo *gittest.Repo, extra map[string]string) *agentHost {
	t.Helper()
	h := testhost.Boot(t, testhost.Options{Binds: []testhost.Bind{{Source: repo.Dir, Target: repoMount, ReadOnly: true}}})
	a := &agentHost{Host: h, t: t, repo: repo, listen: freeAddr(t)}
	settings := map[string]string{
		"CAIRN_REPO":           "file://" + repoMount,
		"CAIRN_ALLOW_UNSIGNED": "true",
		"CAIRN_INTERVAL":       "2s",
		"CAIRN_SPLAY":          "1ms",
		"CAIRN_CONFIRM":        "0",
		"CAIRN_LISTEN":         a.listen,
	}
	for k, v := range extra {
		settings[k] = v
	}
	h.InstallCairn(settings)
	t.Cleanup(func() {
		if t.Failed() {
			r, err := h.Exec(context.Background(), "journalctl", "-u", "cairn", "--no-pager", "-o", "short-monotonic")
			t.Logf("journalctl -u cairn (%v):\n%s%s", err, r.Stdout, r.Stderr)
		}
	})
	return a
}

// freeAddr returns a loopback address with a port free on the machine.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// show returns a property of a unit inside the host (systemctl show -P).
func show(h *testhost.Host, unit, prop string) string {
	return strings.TrimSpace(h.Run("systemctl", "show", "-P", prop, unit))
}

// showInt returns a numeric property of a unit.
func showInt(t *testing.T, h *testhost.Host, unit, prop string) int64 {
	t.Helper()
	s := show(h, unit, prop)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("systemctl show -P %s %s = %q: %v", prop, unit, s, err)
	}
	return n
}

// waitUntil polls cond every 100 ms until it returns nil, for at most
// limit, and fails the test with cond's last error then.
func waitUntil(t *testing.T, limit time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statusText is what the agent's last STATUS= would be: its state and the
// applied commit, as agent.Daemon sends it.
func statusText(state, commit string) string {
	return "state " + state + ", at " + commit[:12]
}

// waitStatusText waits until systemd shows the agent's status line want.
func (a *agentHost) waitStatusText(want string) {
	a.t.Helper()
	waitUntil(a.t, 60*time.Second, func() error {
		if got := show(a.Host, "cairn", "StatusText"); got != want {
			return fmt.Errorf("systemctl show -P StatusText cairn = %q, want %q", got, want)
		}
		return nil
	})
}

// status returns the agent's status document, from its /status.
func (a *agentHost) status() status.Document {
	a.t.Helper()
	resp, err := http.Get("http://" + a.listen + "/status")
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc status.Document
	if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
		a.t.Fatalf("GET /status: %d %s", resp.StatusCode, body)
	}
	return doc
}

// holdLock holds the lock of the agent's state directory, as another cairn
// (a long cairn apply) would, from a unit of its own, until the returned
// function is called.
func holdLock(t *testing.T, h *testhost.Host) (release func()) {
	t.Helper()
	h.Run("systemd-run", "--unit=cairn-test-lock", "--collect", "flock", "/var/lib/cairn/lock", "sleep", "300")
	waitUntil(t, 30*time.Second, func() error {
		r, err := h.Exec(context.Background(), "flock", "-n", "/var/lib/cairn/lock", "true")
		if err != nil {
			return err
		}
		if r.Code == 0 {
			return errors.New("the lock of /var/lib/cairn is not held yet")
		}
		return nil
	})
	return func() { h.Run("systemctl", "stop", "cairn-test-lock") }
}

// startWaitsForReady starts cairn while another process holds its state's
// lock, and returns why systemd did not wait for the agent's READY=1: the
// agent waits 5 seconds for the lock (agent.startLockWait) and says so in
// its log before it gets ready, so with Type=notify the unit becomes
// active 5 seconds after its main process started, and the warning comes
// before. It leaves the agent running and the lock free.
func startWaitsForReady(t *testing.T, a *agentHost) error {
	t.Helper()
	release := holdLock(t, a.Host)
	began := time.Now()
	a.Run("systemctl", "start", "cairn")
	took := time.Since(began)
	state := show(a.Host, "cairn", "ActiveState")
	pid := show(a.Host, "cairn", "MainPID")
	execStart := showInt(t, a.Host, "cairn", "ExecMainStartTimestampMonotonic")
	active := showInt(t, a.Host, "cairn", "ActiveEnterTimestampMonotonic")
	activeAt := activeEnterTime(t, a.Host, "cairn")
	release()

	var errs []error
	if state != "active" {
		errs = append(errs, fmt.Errorf("cairn is %s when systemctl start returns, want active", state))
	}
	if took < 4500*time.Millisecond {
		errs = append(errs, fmt.Errorf("systemctl start returned after %v, before the agent could be ready (it waits 5 s for the lock)", took))
	}
	if d := time.Duration(active-execStart) * time.Microsecond; d < 4500*time.Millisecond {
		errs = append(errs, fmt.Errorf("cairn was active %v after its main process started, want 5 s (READY=1 after the wait for the lock)", d))
	}
	// The agent's warning, logged before READY=1, comes before the unit
	// was active.
	var warned int64
	for _, e := range journalEntries(t, a.Host, "cairn") {
		if e.str("_PID") == pid && strings.Contains(e.str("MESSAGE"), "the state is locked by another cairn") {
			warned = sentAt(e)
		}
	}
	switch {
	case warned == 0:
		errs = append(errs, errors.New("the agent had not logged that the state is locked when systemctl start returned"))
	case warned > activeAt:
		errs = append(errs, fmt.Errorf("the agent logged that the state is locked %v after the unit was active", time.Duration(warned-activeAt)*time.Microsecond))
	}
	return errors.Join(errs...)
}

// TestHostAgentReady checks that systemctl start cairn returns only once
// the agent has sent READY=1: with its state open and its listener up,
// and, while another process holds its state's lock, not before the agent
// has waited for it. The same check fails for the unit with Type=simple,
// so it is one that can fail.
func TestHostAgentReady(t *testing.T) {
	t.Parallel()
	r := gittest.New(t)
	c1 := r.Commit("main", helloConfig("one\n"))
	a := bootAgent(t, r, nil)

	// At the moment start returns: active, listening, the state opened
	// (which makes its lock file; the test made /var/lib/cairn empty),
	// all in one command so that nothing comes between.
	out := a.Run("sh", "-c", `systemctl start cairn
echo "state=$(systemctl show -P ActiveState cairn)"
echo "healthz=$(curl -s -o /dev/null -w '%{http_code}' http://`+a.listen+`/healthz)"
test -e /var/lib/cairn/lock && echo "lock=yes"`)
	got := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		got[k] = v
	}
	if got["state"] != "active" {
		t.Errorf("cairn is %q when systemctl start returns, want active", got["state"])
	}
	if got["healthz"] != "200" {
		t.Errorf("GET /healthz = %q when systemctl start returns, want 200: the listener is not up before READY=1", got["healthz"])
	}
	if got["lock"] != "yes" {
		t.Errorf("no /var/lib/cairn/lock when systemctl start returns: the state was not opened before READY=1")
	}
	a.waitStatusText(statusText("idle", c1))
	if b := a.ReadFile("/srv/hello"); string(b) != "one\n" {
		t.Errorf("/srv/hello = %q, want the first commit's", b)
	}

	a.Run("systemctl", "stop", "cairn")
	if err := startWaitsForReady(t, a); err != nil {
		t.Errorf("Type=notify: %v", err)
	}
	// Once the lock is free, the first run goes on.
	a.waitStatusText(statusText("idle", c1))

	// The check of a unit that does not wait for READY=1 fails.
	a.Run("systemctl", "stop", "cairn")
	a.WriteFile("/etc/systemd/system/cairn.service.d/simple.conf", []byte("[Service]\nType=simple\n"), 0o644)
	a.Run("systemctl", "daemon-reload")
	if err := startWaitsForReady(t, a); err == nil {
		t.Error("the check passes for cairn.service with Type=simple: it cannot tell whether systemd waits for READY=1")
	} else {
		t.Logf("with Type=simple, as it should, the check fails: %v", err)
	}
}

// TestHostAgentStatusWatchdog checks that systemd shows the agent's STATUS=
// line, and that with a short WatchdogSec= the agent pings in time, and a
// hung agent (SIGSTOP) is killed by the watchdog and restarted, and comes
// back at the commit it had applied.
func TestHostAgentStatusWatchdog(t *testing.T) {
	t.Parallel()
	r := gittest.New(t)
	c1 := r.Commit("main", helloConfig("one\n"))
	a := bootAgent(t, r, nil)
	a.WriteFile("/etc/systemd/system/cairn.service.d/watchdog.conf", []byte("[Service]\nWatchdogSec=4s\nRestartSec=1s\n"), 0o644)
	a.Run("systemctl", "daemon-reload")
	a.Run("systemctl", "start", "cairn")

	a.waitStatusText(statusText("idle", c1))
	if st := a.Run("systemctl", "status", "--no-pager", "cairn"); !strings.Contains(st, `Status: "`+statusText("idle", c1)+`"`) {
		t.Errorf("systemctl status cairn does not show the agent's status line:\n%s", st)
	}
	pid := showInt(t, a.Host, "cairn", "MainPID")
	environ := a.Run("cat", fmt.Sprintf("/proc/%d/environ", pid))
	if !strings.Contains(environ, "\x00WATCHDOG_USEC=4000000\x00") && !strings.HasPrefix(environ, "WATCHDOG_USEC=4000000\x00") {
		t.Errorf("the agent's environment has no WATCHDOG_USEC=4000000: %q", environ)
	}
	// Three watchdog periods: the pings keep it alive.
	time.Sleep(12 * time.Second)
	if got, n := showInt(t, a.Host, "cairn", "MainPID"), showInt(t, a.Host, "cairn", "NRestarts"); got != pid || n != 0 {
		t.Fatalf("an agent that pings its watchdog was restarted: MainPID %d (was %d), NRestarts %d", got, pid, n)
	}

	a.Run("kill", "-STOP", strconv.FormatInt(pid, 10))
	stopped := time.Now()
	var newPID int64
	waitUntil(t, 30*time.Second, func() error {
		newPID = showInt(t, a.Host, "cairn", "MainPID")
		n := showInt(t, a.Host, "cairn", "NRestarts")
		st := show(a.Host, "cairn", "ActiveState")
		if n != 1 || newPID == pid || newPID == 0 || st != "active" {
			return fmt.Errorf("after SIGSTOP of the agent: NRestarts %d, MainPID %d (was %d), %s; want a restart", n, newPID, pid, st)
		}
		return nil
	})
	if d := time.Since(stopped); d < 3*time.Second {
		t.Errorf("restarted %v after SIGSTOP, before the 4 s watchdog timeout", d)
	}
	a.Run("journalctl", "--sync")
	log := a.Run("journalctl", "-u", "cairn", "--no-pager", "-o", "cat")
	for _, want := range []string{
		"cairn.service: Watchdog timeout (limit 4s)!",
		fmt.Sprintf("cairn.service: Killing process %d (cairn) with signal SIGABRT.", pid),
		"cairn.service: Failed with result 'watchdog'.",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the journal of cairn has no %q", want)
		}
	}
	if r, _ := a.Exec(context.Background(), "kill", "-0", strconv.FormatInt(pid, 10)); r.Code == 0 {
		t.Errorf("the hung agent %d still runs", pid)
	}
	// The new agent resumes where the old one was: the same commit,
	// nothing to apply.
	a.waitStatusText(statusText("idle", c1))
	doc := a.status()
	if doc.Applied == nil || doc.Applied.Commit != c1 || doc.LastRun == nil || doc.LastRun.Result != "unchanged" {
		t.Errorf("after the restart: applied %+v, last run %+v; want %s, unchanged", doc.Applied, doc.LastRun, c1)
	}
}

// sentAt returns when a native entry was sent, in microseconds since the
// epoch: the kernel's time of its datagram (_SOURCE_REALTIME_TIMESTAMP),
// not the time journald got round to it (__REALTIME_TIMESTAMP), which
// may come after systemd took a READY=1 sent later; 0 if it has none.
func sentAt(e journalEntry) int64 {
	n, _ := strconv.ParseInt(e.str("_SOURCE_REALTIME_TIMESTAMP"), 10, 64)
	return n
}

// activeEnterTime returns when unit last became active, in microseconds
// since the epoch (its ActiveEnterTimestamp, which systemctl show prints
// only as a date).
func activeEnterTime(t *testing.T, h *testhost.Host, unit string) int64 {
	t.Helper()
	path := strings.TrimSpace(h.Run("busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
		"org.freedesktop.systemd1.Manager", "GetUnit", "s", unit+".service"))
	path = strings.Trim(strings.TrimPrefix(path, "o "), `"`)
	out := strings.TrimSpace(h.Run("busctl", "get-property", "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit", "ActiveEnterTimestamp"))
	n, err := strconv.ParseInt(strings.TrimPrefix(out, "t "), 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("ActiveEnterTimestamp of %s: %q", unit, out)
	}
	return n
}

// journalEntry is an entry of journalctl -o json.
type journalEntry map[string]any

// str returns a field as a string (journalctl gives a field that is no
// valid UTF-8, or holds control characters, as an array of bytes).
func (e journalEntry) str(field string) string {
	switch v := e[field].(type) {
	case string:
		return v
	case []any:
		b := make([]byte, len(v))
		for i, x := range v {
			f, _ := x.(float64)
			b[i] = byte(f)
		}
		return string(b)
	}
	return ""
}

// journalEntries returns the entries of unit in the host's journal, once
// journald has stored every message sent so far (journalctl --sync: a
// process's last datagrams may still be in journald's socket).
func journalEntries(t *testing.T, h *testhost.Host, unit string) []journalEntry {
	t.Helper()
	h.Run("journalctl", "--sync")
	var entries []journalEntry
	for line := range strings.Lines(h.Run("journalctl", "-u", unit, "--no-pager", "-o", "json")) {
		var e journalEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journalctl -o json: %v: %q", err, line)
		}
		entries = append(entries, e)
	}
	return entries
}

// TestHostAgentJournal checks that the agent under systemd logs to the
// journal natively, a field per attribute (CAIRN_STATE, CAIRN_COMMIT,
// ...) and the priority of its level, and that an explicit --log-format
// keeps its meaning there.
func TestHostAgentJournal(t *testing.T) {
	t.Parallel()
	r := gittest.New(t)
	c1 := r.Commit("main", helloConfig("one\n"))
	a := bootAgent(t, r, nil)
	a.Run("systemctl", "start", "cairn")
	a.waitStatusText(statusText("idle", c1))
	// A commit that does not compile is refused: a warning.
	c2 := r.Commit("main", map[string]string{"main.cairn": "file \"/srv/hello\" {\n"})
	waitUntil(t, 60*time.Second, func() error {
		if doc := a.status(); doc.LastRun == nil || doc.LastRun.Result != "refused" {
			return fmt.Errorf("the agent has not refused %s: last run %+v", c2, doc.LastRun)
		}
		return nil
	})

	pid := strconv.FormatInt(showInt(t, a.Host, "cairn", "MainPID"), 10)
	type want struct {
		msg    string
		fields map[string]string
	}
	wants := []want{
		{"agent started", map[string]string{"PRIORITY": "6", "CAIRN_REPO": "file://" + repoMount, "CAIRN_INTERVAL": "2s"}},
		{"agent state", map[string]string{"PRIORITY": "6", "CAIRN_STATE": "applying"}},
		{"run ended", map[string]string{"PRIORITY": "6", "CAIRN_RESULT": "applied", "CAIRN_COMMIT": c1, "CAIRN_OPS": "1"}},
		{"run ended", map[string]string{"PRIORITY": "4", "CAIRN_RESULT": "refused", "CAIRN_COMMIT": c2}},
	}
	found := make([]bool, len(wants))
	entries := journalEntries(t, a.Host, "cairn")
	for _, e := range entries {
		if e.str("_PID") != pid {
			continue // systemd's own
		}
		msg := e.str("MESSAGE")
		if strings.Contains(msg, "level=") || strings.HasPrefix(msg, "{") {
			t.Errorf("a text or JSON line in the journal, not a native entry: %q", msg)
		}
		if e.str("SYSLOG_IDENTIFIER") != "cairn" || e.str("_TRANSPORT") != "journal" || e.str("_SYSTEMD_UNIT") != "cairn.service" {
			t.Errorf("entry %q: SYSLOG_IDENTIFIER %q, _TRANSPORT %q, _SYSTEMD_UNIT %q; want cairn, journal, cairn.service",
				msg, e.str("SYSLOG_IDENTIFIER"), e.str("_TRANSPORT"), e.str("_SYSTEMD_UNIT"))
		}
	next:
		for i, w := range wants {
			if msg != w.msg {
				continue
			}
			for k, v := range w.fields {
				if e.str(k) != v {
					continue next
				}
			}
			found[i] = true
		}
	}
	for i, w := range wants {
		if !found[i] {
			t.Errorf("no journal entry %q with %v", w.msg, w.fields)
		}
	}
	if t.Failed() {
		for _, e := range entries {
			b, _ := json.Marshal(e)
			t.Logf("%s", b)
		}
	}

	// --log-format json, given, is kept under systemd: JSON lines, which
	// the journal keeps as they are.
	a.WriteFile("/etc/systemd/system/cairn.service.d/json.conf", []byte("[Service]\nEnvironment=CAIRN_LOG_FORMAT=json\n"), 0o644)
	a.Run("systemctl", "daemon-reload")
	a.Run("systemctl", "restart", "cairn")
	pid = strconv.FormatInt(showInt(t, a.Host, "cairn", "MainPID"), 10)
	waitUntil(t, 30*time.Second, func() error {
		for _, e := range journalEntries(t, a.Host, "cairn") {
			var rec struct{ Msg, Level string }
			if e.str("_PID") == pid && e.str("_TRANSPORT") == "stdout" && json.Unmarshal([]byte(e.str("MESSAGE")), &rec) == nil && rec.Msg == "agent started" {
				return nil
			}
		}
		return errors.New("no JSON line \"agent started\" from the agent with CAIRN_LOG_FORMAT=json")
	})
}

// busCalls returns, from the output of busctl monitor --json=short, the
// methods called on systemd's manager and their first argument (a unit
// name, or the first of a list of them), as "StartUnit app.service".
func busCalls(t *testing.T, out string) []string {
	t.Helper()
	var calls []string
	for line := range strings.Lines(out) {
		var m struct {
			Type, Interface, Member string
			Payload                 struct{ Data []any }
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("busctl monitor: %v: %q", err, line)
		}
		if m.Type != "method_call" || m.Interface != "org.freedesktop.systemd1.Manager" {
			continue
		}
		call := m.Member
		if len(m.Payload.Data) > 0 {
			arg := m.Payload.Data[0]
			if l, ok := arg.([]any); ok && len(l) > 0 {
				arg = l[0]
			}
			if s, ok := arg.(string); ok {
				call += " " + s
			}
		}
		calls = append(calls, call)
	}
	return calls
}

// appUnit is the unit file of the test's own unit, version v.
func appUnit(v int) string {
	return fmt.Sprintf(`[Unit]
Description=cairn test app, version %d

[Service]
Environment=APP_VERSION=%d
ExecStart=/bin/sleep infinity
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
`, v, v)
}

// TestHostUnitDriver runs the unit driver's D-Bus path (systemd.Manager
// when systemd is PID 1) through cairn journal apply in a real systemd: a
// unit of the test's own written, enabled and started; its file changed,
// systemd reloaded and the unit restarted; stopped; started again; then
// all of it rolled back by a move to the empty journal. systemctl checks
// each step, and busctl monitor that cairn called systemd over D-Bus.
func TestHostUnitDriver(t *testing.T) {
	t.Parallel()
	h := testhost.Boot(t, testhost.Options{PrivateNetwork: true})
	h.InstallCairn(nil)
	const unit = "cairn-test-app.service"
	const unitPath = "/etc/systemd/system/" + unit

	// The journals: each with the unit file at version v, and its state.
	journal := func(name string, v int, start, restart bool) string {
		src := fmt.Sprintf("files/app-v%d.service", v)
		content := appUnit(v)
		h.WriteFile("/root/units/"+src, []byte(content), 0o644)
		sum := sha256.Sum256([]byte(content))
		hash := hex.EncodeToString(sum[:])
		var b strings.Builder
		fmt.Fprintf(&b, "COPY %s %s sha256=%s\n", src, unitPath, hash)
		fmt.Fprintf(&b, "SYSTEMD-RELOAD on=%s\n", hash)
		fmt.Fprintf(&b, "SYSTEMD-ENABLE %s\n", unit)
		if start {
			fmt.Fprintf(&b, "SYSTEMD-START %s\n", unit)
		}
		if restart {
			fmt.Fprintf(&b, "SYSTEMD-RESTART %s on=%s\n", unit, hash)
		}
		h.WriteFile("/root/units/"+name, []byte(b.String()), 0o644)
		return "/root/units/" + name
	}
	started := journal("started.journal", 1, true, false)
	changed := journal("changed.journal", 2, true, true)
	stopped := journal("stopped.journal", 2, false, false)
	h.WriteFile("/root/units/empty.journal", []byte("# nothing\n"), 0o644)

	// busctl monitor, line-buffered, in a unit of its own: stopping it
	// ends it with all it saw in the journal.
	h.Run("systemd-run", "--unit=cairn-test-busmon", "--collect", "stdbuf", "-oL",
		"busctl", "monitor", "--json=short", "--match", "destination=org.freedesktop.systemd1")
	time.Sleep(500 * time.Millisecond)
	// apply moves the host to a journal and returns the calls cairn made
	// on systemd's manager meanwhile.
	seen := 0
	apply := func(file string, args ...string) []string {
		t.Helper()
		h.Run(append([]string{"cairn", "journal", "apply"}, append(args, file)...)...)
		// The monitor's last lines reach the journal a moment later.
		time.Sleep(300 * time.Millisecond)
		h.Run("journalctl", "--sync")
		all := busCalls(t, h.Run("journalctl", "_SYSTEMD_UNIT=cairn-test-busmon.service", "_TRANSPORT=stdout", "--no-pager", "-o", "cat"))
		calls := all[seen:]
		seen = len(all)
		return calls
	}
	mainPID := func() int64 { return showInt(t, h, unit, "MainPID") }
	environ := func(pid int64) string {
		return h.Run("cat", fmt.Sprintf("/proc/%d/environ", pid))
	}
	expect := func(step string, calls []string, wantCalls []string, active, enabled string) {
		t.Helper()
		for _, w := range wantCalls {
			if !strings.Contains(strings.Join(calls, "\n")+"\n", w+"\n") {
				t.Errorf("%s: cairn did not call %s over D-Bus; its calls: %q", step, w, calls)
			}
		}
		if got := show(h, unit, "ActiveState"); got != active {
			t.Errorf("%s: %s is %s, want %s", step, unit, got, active)
		}
		r, err := h.Exec(context.Background(), "systemctl", "is-enabled", unit)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(r.Stdout)
		if got == "" && strings.Contains(r.Stderr, "No such file or directory") {
			got = "not-found"
		}
		if got != enabled {
			t.Errorf("%s: systemctl is-enabled %s = %q (%s), want %s", step, unit, got, strings.TrimSpace(r.Stderr), enabled)
		}
		t.Logf("%s: cairn's calls on systemd's manager over D-Bus: %q", step, calls)
	}

	calls := apply(started)
	expect("start", calls, []string{"Reload", "EnableUnitFiles " + unit, "StartUnit " + unit}, "active", "enabled")
	pid1 := mainPID()
	if env := environ(pid1); !strings.Contains(env, "APP_VERSION=1") {
		t.Errorf("the unit's process has no APP_VERSION=1: %q", env)
	}

	calls = apply(changed)
	expect("change", calls, []string{"Reload", "RestartUnit " + unit}, "active", "enabled")
	pid2 := mainPID()
	if pid2 == pid1 {
		t.Errorf("change: the unit was not restarted (MainPID %d)", pid1)
	}
	if env := environ(pid2); !strings.Contains(env, "APP_VERSION=2") {
		t.Errorf("change: the restarted unit does not run the new file (reloaded before the restart): %q", env)
	}
	if d := show(h, unit, "Description"); d != "cairn test app, version 2" {
		t.Errorf("change: systemd has the description %q: not reloaded", d)
	}
	if n := show(h, unit, "NeedDaemonReload"); n != "no" {
		t.Errorf("change: NeedDaemonReload=%s after the move", n)
	}

	calls = apply(stopped)
	expect("stop", calls, []string{"StopUnit " + unit}, "inactive", "enabled")

	calls = apply(changed)
	expect("start again", calls, []string{"StartUnit " + unit}, "active", "enabled")

	calls = apply("/root/units/empty.journal", "--allow-removal")
	expect("rollback", calls, []string{"StopUnit " + unit, "DisableUnitFiles " + unit, "Reload"}, "inactive", "not-found")
	if r, _ := h.Exec(context.Background(), "test", "-e", unitPath); r.Code == 0 {
		t.Errorf("rollback: %s is still there", unitPath)
	}
	if links := h.Run("find", "/etc/systemd/system", "-name", unit); links != "" {
		t.Errorf("rollback: links to the unit are left: %s", links)
	}
	if n := show(h, unit, "NeedDaemonReload"); n == "yes" {
		t.Errorf("rollback: systemd's view of %s is stale (NeedDaemonReload=yes, LoadState=%s)", unit, show(h, unit, "LoadState"))
	}
}

// hangingMove boots a host whose agent, started with the drop-in dropIn
// (none when empty), is in the middle of a move when it returns: its
// first command made /srv/did (undo undoes it), its second, hang, runs
// sleep 120.
func hangingMove(t *testing.T, undo, hang, dropIn string) *agentHost {
	t.Helper()
	r := gittest.New(t)
	r.Commit("main", map[string]string{"main.cairn": fmt.Sprintf(`exec "first" {
  command = "touch /srv/did"
  undo    = %q
}
exec "hang" {
  command = %q
  undo    = "true"
}
`, undo, hang)})
	a := bootAgent(t, r, nil)
	if dropIn != "" {
		a.WriteFile("/etc/systemd/system/cairn.service.d/test.conf", []byte(dropIn), 0o644)
		a.Run("systemctl", "daemon-reload")
	}
	a.Run("systemctl", "start", "cairn")
	waitUntil(t, 60*time.Second, func() error {
		if r, _ := a.Exec(context.Background(), "pgrep", "-f", "^sleep 120$"); r.Code != 0 {
			return errors.New("the agent is not waiting for its second command yet")
		}
		return nil
	})
	return a
}

// TestHostAgentRecoversBeforeReady checks that an agent killed in the
// middle of a move is restarted by systemd, and undoes the move it left
// half done before it is ready: the undo of a command, which takes 3
// seconds and prints a line, runs, and its line is in the journal, before
// the restarted unit is active. And that KillMode=mixed kills what the
// dead agent left running (the command it waited for).
func TestHostAgentRecoversBeforeReady(t *testing.T) {
	t.Parallel()
	// The second command hangs until /srv/fast exists.
	a := hangingMove(t, "sleep 3; rm -f /srv/did; echo undone-by-recovery", "[ -e /srv/fast ] || sleep 120",
		"[Service]\nRestartSec=1s\n")
	pid := showInt(t, a.Host, "cairn", "MainPID")
	a.WriteFile("/srv/fast", nil, 0o644)
	a.Run("kill", "-KILL", strconv.FormatInt(pid, 10))

	var newPID int64
	waitUntil(t, 60*time.Second, func() error {
		newPID = showInt(t, a.Host, "cairn", "MainPID")
		if n := showInt(t, a.Host, "cairn", "NRestarts"); n != 1 || newPID == pid || show(a.Host, "cairn", "ActiveState") != "active" {
			return fmt.Errorf("the agent killed mid-move: NRestarts %d, MainPID %d (was %d); want a restart", n, newPID, pid)
		}
		return nil
	})
	if r, _ := a.Exec(context.Background(), "pgrep", "-f", "^sleep 120$"); r.Code == 0 {
		t.Errorf("the command the dead agent waited for still runs (KillMode=mixed should have killed it): %s", r.Stdout)
	}
	execStart := showInt(t, a.Host, "cairn", "ExecMainStartTimestampMonotonic")
	active := showInt(t, a.Host, "cairn", "ActiveEnterTimestampMonotonic")
	if d := time.Duration(active-execStart) * time.Microsecond; d < 2500*time.Millisecond {
		t.Errorf("the restarted agent was ready %v after it started, before the 3 s undo of the half done move could run", d)
	}
	activeAt := activeEnterTime(t, a.Host, "cairn")
	var undone int64
	for _, e := range journalEntries(t, a.Host, "cairn") {
		if e.str("_PID") == strconv.FormatInt(newPID, 10) && e.str("CAIRN_LINE") == "undone-by-recovery" {
			undone = sentAt(e)
		}
	}
	switch {
	case undone == 0:
		t.Error("no record of the undo's output (CAIRN_LINE=undone-by-recovery) from the restarted agent")
	case undone > activeAt:
		t.Errorf("the undo of the half done move ended %v after the unit was active", time.Duration(undone-activeAt)*time.Microsecond)
	}
	// Then it applies the commit again, and /srv/fast lets it through.
	waitUntil(t, 60*time.Second, func() error {
		if doc := a.status(); doc.LastRun == nil || doc.LastRun.Result != "applied" {
			return fmt.Errorf("the restarted agent has not applied the commit: last run %+v", doc.LastRun)
		}
		return nil
	})
}

// TestHostAgentStopUndoesMove checks what cairn.service says of a stop
// in the middle of a move: SIGTERM goes to the agent only
// (KillMode=mixed), so the command it runs is not signalled and the agent
// lets it run for its 20 seconds (cli's stopDeadline) before it kills it;
// then it undoes the move and exits 0, well inside TimeoutStopSec.
func TestHostAgentStopUndoesMove(t *testing.T) {
	t.Parallel()
	a := hangingMove(t, "rm -f /srv/did; echo undone-by-stop", "sleep 120", "")
	pid := show(a.Host, "cairn", "MainPID")
	began := time.Now()
	a.Run("systemctl", "stop", "cairn")
	took := time.Since(began)
	if took < 19*time.Second || took > 60*time.Second {
		t.Errorf("systemctl stop took %v, want the agent's 20 s wait for the command it runs, then its undo: was the command signalled too?", took)
	}
	if st, res := show(a.Host, "cairn", "ActiveState"), show(a.Host, "cairn", "Result"); st != "inactive" || res != "success" {
		t.Errorf("after the stop: %s, result %s; want inactive, success (exit 0)", st, res)
	}
	if r, _ := a.Exec(context.Background(), "test", "-e", "/srv/did"); r.Code == 0 {
		t.Error("/srv/did is still there: the move was not undone")
	}
	undone := false
	for _, e := range journalEntries(t, a.Host, "cairn") {
		undone = undone || e.str("_PID") == pid && e.str("CAIRN_LINE") == "undone-by-stop"
	}
	if !undone {
		t.Error("no record of the undo's output (CAIRN_LINE=undone-by-stop) from the agent")
	}
}

// TestHostAgentManagesUnit checks that the agent, sandboxed as
// cairn.service has it (ProtectSystem=strict and the rest), manages a unit
// over D-Bus: a unit block of the configuration is written, enabled and
// started; a commit without it stops, disables and removes it.
func TestHostAgentManagesUnit(t *testing.T) {
	t.Parallel()
	r := gittest.New(t)
	const unit = "cairn-test-app.service"
	c1 := r.Commit("main", map[string]string{"main.cairn": fmt.Sprintf("unit %q {\n  content = %q\n  enabled = true\n  running = true\n}\n", unit, appUnit(1))})
	a := bootAgent(t, r, nil)
	a.Run("systemctl", "start", "cairn")
	a.waitStatusText(statusText("idle", c1))
	if st, en := show(a.Host, unit, "ActiveState"), show(a.Host, unit, "UnitFileState"); st != "active" || en != "enabled" {
		t.Errorf("after %s: %s is %s, %s; want active, enabled", c1, unit, st, en)
	}
	c2 := r.Commit("main", helloConfig("one\n"))
	a.waitStatusText(statusText("idle", c2))
	if st, load := show(a.Host, unit, "ActiveState"), show(a.Host, unit, "LoadState"); st != "inactive" || load != "not-found" {
		t.Errorf("after %s: %s is %s, %s; want inactive, not-found", c2, unit, st, load)
	}
	if r, _ := a.Exec(context.Background(), "test", "-e", "/etc/systemd/system/"+unit); r.Code == 0 {
		t.Errorf("after %s: the unit file is still there", c2)
	}
}

// TestHostAgentWithoutSettings checks what cairn.service says of a host
// without /etc/default/cairn: the agent starts, says which setting is
// missing (an error record in the journal), exits 2, and systemd gives up
// after StartLimitBurst=5 starts instead of looping. Each of the five
// records, sent just before the agent exits, is in journalctl -u cairn.
func TestHostAgentWithoutSettings(t *testing.T) {
	t.Parallel()
	h := testhost.Boot(t, testhost.Options{PrivateNetwork: true})
	h.InstallCairn(nil)
	h.WriteFile("/etc/systemd/system/cairn.service.d/test.conf", []byte("[Service]\nRestartSec=100ms\n"), 0o644)
	h.Run("systemctl", "daemon-reload")
	if r, err := h.Exec(context.Background(), "systemctl", "start", "cairn"); err != nil || r.Code == 0 {
		t.Errorf("systemctl start cairn without settings: exit %d, %v; want a failure", r.Code, err)
	}
	// systemd 252 keeps the result of the last start (exit-code) and says
	// why it gave up in the journal.
	waitUntil(t, 30*time.Second, func() error {
		h.Run("journalctl", "--sync")
		log := h.Run("journalctl", "-u", "cairn", "--no-pager", "-o", "cat")
		if st := show(h, "cairn", "ActiveState"); st != "failed" || !strings.Contains(log, "cairn.service: Start request repeated too quickly.") {
			return fmt.Errorf("cairn is %s, and systemd has not given up restarting it:\n%s", st, log)
		}
		return nil
	})
	starts := 0
	for _, e := range journalEntries(t, h, "cairn") {
		if e.str("MESSAGE") == "cairn exits" {
			starts++
			// journald cannot tell the unit of a process that has
			// exited: the entry names it itself.
			if e.str("OBJECT_SYSTEMD_UNIT") != "cairn.service" {
				t.Errorf("the agent's last words have OBJECT_SYSTEMD_UNIT=%q, want cairn.service", e.str("OBJECT_SYSTEMD_UNIT"))
			}
			if e.str("PRIORITY") != "3" || e.str("CAIRN_CODE") != "2" || !strings.Contains(e.str("CAIRN_ERR"), "CAIRN_REPO") {
				t.Errorf("the agent's last words: PRIORITY %s, CAIRN_CODE %s, CAIRN_ERR %q; want 3, 2, the missing CAIRN_REPO",
					e.str("PRIORITY"), e.str("CAIRN_CODE"), e.str("CAIRN_ERR"))
			}
		}
	}
	if starts != 5 {
		t.Errorf("the agent started %d times, want StartLimitBurst=5", starts)
	}
}
