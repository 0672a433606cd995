package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/agent"
	"github.com/cairn-cm/cairn/agent/selfexe"
	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// settings are the settings of spec agent.md §1 that the agent and the host
// commands share. Each flag also reads CAIRN_ + its name (a flag given
// wins); the unit file reads /etc/default/cairn as that environment.
type settings struct {
	remoteFlags
	Host          string        `help:"The name the hosts block matches (default: this machine's host name)." env:"CAIRN_HOST" placeholder:"NAME"`
	Group         string        `help:"Put the host in this group, whatever the hosts block says." env:"CAIRN_GROUP" placeholder:"NAME"`
	Branch        string        `help:"The control branch: its hosts block maps the host to a group." default:"main" env:"CAIRN_BRANCH" placeholder:"NAME"`
	Fact          []string      `help:"Set a fact (repeatable; in CAIRN_FACT, separated by commas): --fact release=12. Unset facts come from this machine." env:"CAIRN_FACT" placeholder:"K=V"`
	Root          string        `help:"Resolve object paths beneath DIR as if it were /." default:"/" env:"CAIRN_ROOT" placeholder:"DIR"`
	State         string        `help:"The state directory (default: /var/lib/cairn beneath the root)." env:"CAIRN_STATE" placeholder:"DIR"`
	Trust         string        `help:"The keys allowed to sign applied commits: an SSH allowed-signers file or an armored OpenPGP keyring." env:"CAIRN_TRUST" placeholder:"FILE"`
	AllowUnsigned bool          `help:"Apply commits without checking signatures." name:"allow-unsigned" env:"CAIRN_ALLOW_UNSIGNED"`
	Drift         string        `help:"What a run does with drift on unchanged steps: report or repair." default:"report" enum:"report,repair" env:"CAIRN_DRIFT"`
	MaxRemoval    float64       `help:"Refuse a plan that removes more than PCT percent of the managed objects (and more than 10)." default:"25" name:"max-removal" env:"CAIRN_MAX_REMOVAL" placeholder:"PCT"`
	RehashEvery   int           `help:"Hash every file at every Nth drift check whatever the state's stat cache says; 1 hashes every file at every check." default:"10" name:"rehash-every" env:"CAIRN_REHASH_EVERY" placeholder:"N"`
	Confirm       time.Duration `help:"After a move, the journal's CHECKs must keep holding this long, or the move is undone; 0 turns it off." default:"30s" env:"CAIRN_CONFIRM"`
	Listen        string        `help:"HTTP address of the metrics, status and trigger endpoints; empty turns it off." default:"127.0.0.1:9479" env:"CAIRN_LISTEN" emptyenv:"value" placeholder:"ADDR"`
	LogFormat     string        `help:"Log format: text, json (one object a line) or journal (systemd's journal, a field per attribute); auto is journal when stderr goes to the journal (under systemd), else text." default:"auto" enum:"auto,text,json,journal" name:"log-format" env:"CAIRN_LOG_FORMAT"`

	// ops hears of the ops of a move (the progress of apply and
	// rollback); nil: nobody.
	ops steps.Observer `kong:"-"`
}

// remoteFlags name the configuration repository and how to reach it: the
// agent's and the host commands', and promote's, lock's and unlock's.
type remoteFlags struct {
	Repo       string `help:"The configuration repository: a path, file://, git://, http(s):// or ssh:// URL." env:"CAIRN_REPO" placeholder:"URL"`
	SSHKey     string `help:"Private key for ssh:// repositories (default: ~/.ssh/id_ed25519, id_ecdsa or id_rsa)." name:"ssh-key" env:"CAIRN_SSH_KEY" placeholder:"FILE"`
	KnownHosts string `help:"known_hosts for ssh:// repositories (default: ~/.ssh/known_hosts)." name:"ssh-known-hosts" env:"CAIRN_SSH_KNOWN_HOSTS" placeholder:"FILE"`
}

// hostCommandWait is how long the host commands wait for a running agent
// to finish its run (a run that installs packages may take minutes).
const hostCommandWait = 15 * time.Minute

// pipeline makes the agent's pipeline from the settings. needRepo says
// whether the command reads the repository, needTrust whether it moves the
// host (and so needs --trust or --allow-unsigned); close releases the root.
func (s *settings) pipeline(e *env, needRepo, needTrust bool) (p *agent.Pipeline, log *slog.Logger, close func(), err error) {
	log = s.logger(e)
	if needRepo && s.Repo == "" {
		return nil, nil, nil, &exitError{code: exitBadInput, err: fmt.Errorf("no repository: set --repo or CAIRN_REPO")}
	}
	if needTrust && s.Trust == "" && !s.AllowUnsigned {
		return nil, nil, nil, &exitError{code: exitBadInput, err: fmt.Errorf("no --trust file: cairn applies only commits signed by a trusted key (--allow-unsigned applies any)")}
	}
	if err := checkRehashEvery(s.RehashEvery); err != nil {
		return nil, nil, nil, err
	}
	hf := hostFlags{Host: s.Host, Group: s.Group, Fact: s.Fact}
	opts, err := hf.options()
	if err != nil {
		return nil, nil, nil, err
	}
	// The root and the state are found as for the journal commands.
	root, state, err := (&stateFlags{Root: s.Root, State: s.State}).open()
	if err != nil {
		return nil, nil, nil, err
	}
	repo := s.Repo
	if repo != "" && !strings.Contains(repo, "://") && !strings.Contains(repo, "@") {
		// A local path is taken from where cairn runs.
		if repo, err = filepath.Abs(repo); err != nil {
			root.Close()
			return nil, nil, nil, &exitError{code: exitBadInput, err: err}
		}
	}
	p, err = agent.New(agent.Config{
		Repo: repo, Version: Version(), SSHKey: s.SSHKey, KnownHosts: s.KnownHosts,
		Host: opts.Host, Group: s.Group, Branch: s.Branch, Facts: opts.Facts,
		Root: root, StateDir: state,
		Trust: s.Trust, AllowUnsigned: s.AllowUnsigned,
		Drift: agent.DriftMode(s.Drift), MaxRemoval: s.MaxRemoval, Confirm: s.Confirm, RehashEvery: s.RehashEvery,
		LockWait: hostCommandWait,
		Drivers:  hostDrivers(root), Log: log, Output: s.output(e, log), Ops: s.ops, Kill: e.kill,
	})
	if err != nil {
		root.Close()
		return nil, nil, nil, &exitError{code: exitBadInput, err: err}
	}
	return p, log, func() { root.Close() }, nil
}

// logger is the log of the agent and host commands: text or JSON on
// stderr, or records of systemd's journal, at info level unless
// --log-level says otherwise. A JSON or journal log also takes cairn's own
// notices (a signal, the error the command ends with), so that every line
// on stderr is one JSON object, and every notice a record with its fields.
func (s *settings) logger(e *env) *slog.Logger {
	opts := &slog.HandlerOptions{Level: e.level}
	if !e.levelSet {
		opts.Level = slog.LevelInfo
	}
	var log *slog.Logger
	switch s.logFormat(e) {
	case "json":
		log = slog.New(slog.NewJSONHandler(e.stderr, opts))
	case "journal":
		// A record the journal refuses goes to stderr as text: under
		// systemd, that is the journal's stream too.
		log = slog.New(systemd.NewJournalHandler("cairn", opts, slog.NewTextHandler(e.stderr, opts)))
	default:
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	if e.notes != nil {
		e.notes.log.Store(log)
	}
	return log
}

// logFormat is --log-format, auto resolved: journal when cairn's stderr
// is a stream to systemd's journal (a service's: the journal would keep
// each line as a bare MESSAGE), else text.
func (s *settings) logFormat(e *env) string {
	if s.LogFormat != "auto" {
		return s.LogFormat
	}
	if e.journal {
		return "journal"
	}
	return "text"
}

// output is where what EXEC and CHECK commands print goes: stderr, or, in
// a JSON or journal log, records of the log.
func (s *settings) output(e *env, log *slog.Logger) io.Writer {
	if f := s.logFormat(e); f == "json" || f == "journal" {
		return &logLines{log: log}
	}
	return e.stderr
}

// logLines writes what it is given as records of a log, "output" with the
// line: each line one record (a line split across writes, as a command's
// output may be, comes as pieces).
type logLines struct {
	mu  sync.Mutex
	log *slog.Logger
}

func (w *logLines) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for line := range strings.Lines(string(b)) {
		w.log.Info("output", "line", strings.TrimSuffix(line, "\n"))
	}
	return len(b), nil
}

type agentCmd struct {
	settings
	Interval  time.Duration `help:"Time between runs." default:"1m" env:"CAIRN_INTERVAL"`
	Splay     time.Duration `help:"Each wait is --interval plus a fixed offset in [0, D) from a hash of the host name (default: --interval/2)." env:"CAIRN_SPLAY" placeholder:"D"`
	WebConfig string        `help:"TLS and basic-auth settings of the HTTP endpoints, in the Prometheus exporter-toolkit format." name:"web-config" env:"CAIRN_WEB_CONFIG" placeholder:"FILE"`
	Once      bool          `help:"One run, then exit with its code." env:"CAIRN_ONCE"`
}

// stopDeadline is how long after SIGTERM the agent lets the step that runs
// end by itself before it kills it: well before systemd's stop timeout
// (90 s by default) kills cairn itself in the middle of an undo.
const stopDeadline = 20 * time.Second

// Run runs the agent until SIGTERM or SIGINT (exit 0), or once with --once;
// or, when a move replaced cairn's executable (an upgrade of cairn through
// cairn), until it hands over to the new program in the same process.
func (c *agentCmd) Run(e *env) error {
	h, log, err := c.run(e)
	if h == nil {
		return err
	}
	return c.handOver(e, h, log)
}

// run runs the agent, and returns the Handover that ended it, if one did,
// with everything it opened closed, and the agent's log.
func (c *agentCmd) run(e *env) (*agent.Handover, *slog.Logger, error) {
	// second is the signals' kill, read before e.kill becomes kill below:
	// read in the goroutine, it could be kill itself, which only the
	// goroutine closes, and a second signal would then kill nothing.
	second := e.kill
	kill := make(chan struct{})
	go func() {
		select {
		case <-second:
		case <-e.ctx.Done():
			select {
			case <-second:
			case <-time.After(stopDeadline):
			}
		}
		close(kill)
	}()
	e.kill = kill
	p, log, done, err := c.pipeline(e, true, true)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	splay := c.Splay
	if splay == 0 {
		splay = c.Interval / 2
	}
	var exe *selfexe.Executable
	if !c.Once {
		// Opened before the first run, which may replace the file.
		if exe, err = selfexe.Open(); err != nil {
			log.Warn("the agent cannot tell when its executable is replaced: an upgrade of cairn through cairn takes effect at the next restart", "err", err)
		}
	}
	d, err := agent.NewDaemon(p, agent.DaemonConfig{
		Interval: c.Interval, Splay: splay, Listen: c.Listen, WebConfig: c.WebConfig, Once: c.Once,
		Version: Version(), Revision: revision(),
		Listening:  func(addr net.Addr) { log.Info("listening", "addr", addr.String()) },
		Executable: exe, ProbeArgs: []string{"version"},
	})
	if err != nil {
		return nil, log, &exitError{code: exitBadInput, err: err}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP: a run now")
			d.Trigger()
		}
	}()
	rep, err := d.Run(e.ctx)
	var h *agent.Handover
	if errors.As(err, &h) {
		return h, log, nil
	}
	if err != nil {
		return nil, log, &exitError{code: exitBadInput, err: err}
	}
	if rep == nil {
		return nil, log, nil
	}
	if e.ctx.Err() != nil {
		// SIGTERM during the run: the move was undone, as asked.
		return nil, log, nil
	}
	return nil, log, runError(rep, agent.Follow)
}

// handOver re-executes the agent's replaced executable in this process,
// with the same command line and environment: the same PID, so systemd's
// MainPID, and its watchdog and notify socket, stay the unit's. systemd
// hears RELOADING=1 now and READY=1 from the new program once it serves.
// A stop asked meanwhile (SIGTERM) is a stop. It returns only when the
// exec failed: cairn then exits 1, and the unit's Restart=on-failure
// starts the file now installed.
func (c *agentCmd) handOver(e *env, h *agent.Handover, log *slog.Logger) error {
	if e.ctx.Err() != nil {
		return nil
	}
	if _, err := systemd.Reloading(); err != nil {
		log.Warn("sd_notify", "err", err)
	}
	argv := append([]string{os.Args[0]}, e.args...)
	log.Info("re-executing", "path", h.Exe.Path(), "new", h.Probe, "old", Version(), "commit", h.Commit)
	err := h.Exe.Exec(argv, os.Environ())
	return &exitError{code: steps.ExitFailed, err: fmt.Errorf("handing over to the new executable: %w (exiting: systemd's Restart= starts it)", err)}
}

// runError maps a run's report to the command's error and exit code.
func runError(rep *agent.Report, mode agent.Mode) error {
	code := rep.ExitCode(mode)
	if code == exitOK {
		return nil
	}
	return &exitError{code: code, err: rep.Err}
}

// revision is the VCS revision cairn was built from, or "unknown".
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

type planCmd struct {
	settings
	To string `help:"Plan the move to this revision instead of the target branch's tip." placeholder:"REV"`
}

// Run prints the plan of the move to the target, and the drift.
func (c *planCmd) Run(e *env) error {
	p, _, done, err := c.pipeline(e, true, false)
	if err != nil {
		return err
	}
	defer done()
	rep := p.Run(e.ctx, agent.Request{Mode: agent.Plan, To: c.To}, nil)
	if rep.Plan != nil {
		fmt.Fprintf(e.stdout, "# %s -> %s (group %s, branch %s)\n", orNothing(rep.Run.From), orNothing(rep.Run.Commit), orNothing(rep.Group), rep.Branch)
		writePlan(e.stdout, rep.Plan)
	}
	for _, d := range rep.Drift {
		fmt.Fprintf(e.stdout, "# drift: %s: %s\n", describe(d.Step), d.Diff)
	}
	return runError(rep, agent.Plan)
}

// orNothing shows an empty commit or group as "(none)".
func orNothing(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

type applyCmd struct {
	settings
	To           string `help:"Move to this revision instead of the target branch's tip (still signature-checked)." placeholder:"REV"`
	AllowRemoval bool   `help:"Let this move remove more than --max-removal of the managed objects." name:"allow-removal"`
}

// Run moves the host now, in the foreground.
func (c *applyCmd) Run(e *env) error {
	return c.move(e, agent.Request{Mode: agent.Apply, To: c.To, AllowRemoval: c.AllowRemoval})
}

// move runs a moving request and prints its outcome. On a terminal,
// stderr shows the op that runs; the log, and what commands print, clear
// that line first.
func (s *settings) move(e *env, req agent.Request) error {
	prog := newProgress(e.stderr)
	pe := *e
	pe.stderr = prog
	s.ops = prog
	p, log, done, err := s.pipeline(&pe, true, true)
	if err != nil {
		return err
	}
	defer done()
	prog.log = log
	rep := p.Run(e.ctx, req, nil)
	prog.done()
	fmt.Fprintf(e.stdout, "%s: %s", orNothing(rep.Run.Commit), rep.Run.Result)
	if rep.Run.Reason != "" {
		fmt.Fprintf(e.stdout, " (%s)", rep.Run.Reason)
	}
	fmt.Fprintf(e.stdout, ", %s run\n", plural(rep.Run.Ops, "op"))
	s.nudge()
	return runError(rep, req.Mode)
}

// nudge asks a running agent for a run, so that its status shows what a
// host command did; an agent that does not answer is no error.
func (s *settings) nudge() {
	if s.Listen == "" {
		return
	}
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Post("http://"+s.Listen+"/trigger", "text/plain", nil)
	if err == nil {
		resp.Body.Close()
	}
}

type rollbackCmd struct {
	settings
	To           string `help:"The revision to go back to (default: the commit applied before the current one)." placeholder:"REV"`
	AllowRemoval bool   `help:"Let this move remove more than --max-removal of the managed objects." name:"allow-removal"`
	Reason       string `help:"Why, recorded with the pin." placeholder:"TEXT"`
}

// Run moves back and pins the host there until cairn resume.
func (c *rollbackCmd) Run(e *env) error {
	return c.move(e, agent.Request{Mode: agent.Rollback, To: c.To, AllowRemoval: c.AllowRemoval, Reason: c.Reason})
}

type resumeCmd struct {
	settings
}

// Run lifts the pin of a rollback.
func (c *resumeCmd) Run(e *env) error {
	p, _, done, err := c.pipeline(e, false, false)
	if err != nil {
		return err
	}
	defer done()
	lifted, err := p.Resume(e.ctx)
	if err != nil {
		return err
	}
	if lifted {
		fmt.Fprintln(e.stdout, "resumed: the agent follows its branch again")
		c.nudge()
	} else {
		fmt.Fprintln(e.stdout, "not held: nothing to resume")
	}
	return nil
}

type statusCmd struct {
	settings
	JSON bool `help:"Print the status document as JSON." name:"json"`
}

// Run prints the status: from the running agent if it answers, else from
// the state directory. Exit 0 when converged, 1 when not.
func (c *statusCmd) Run(e *env) error {
	doc, ok := c.fromAgent(e.ctx)
	if !ok {
		// Reading the state verifies no commit: it needs no --trust
		// (agent.New asks for one or --allow-unsigned).
		s := c.settings
		s.AllowUnsigned = s.AllowUnsigned || s.Trust == ""
		p, _, done, err := s.pipeline(e, false, false)
		if err != nil {
			return err
		}
		defer done()
		if doc, err = p.Status(e.ctx); err != nil {
			return err
		}
	}
	if c.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else if err := doc.WriteText(e.stdout); err != nil {
		return err
	}
	if !doc.Converged {
		return exitCode(exitDiffers)
	}
	return nil
}

// fromAgent asks the agent listening on --listen for its status. Any
// answer but 200 with a status document means no: an agent whose
// --web-config asks for TLS (400 to plain HTTP) or basic auth (401), or
// something else on that port; the caller then reads the state directory.
func (c *statusCmd) fromAgent(ctx context.Context) (status.Document, bool) {
	var doc status.Document
	if c.Listen == "" {
		return doc, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Listen+"/status", nil)
	if err != nil {
		return doc, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return doc, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return doc, false
	}
	return doc, true
}
