package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairn-cm/cairn/agent/metrics"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/agent/selfexe"
	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/agent/web"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// DaemonConfig are the settings of the agent as a service.
type DaemonConfig struct {
	// Interval is the time between runs; Splay spreads a fleet's runs
	// (each wait is Interval plus the host's Offset in [0, Splay)).
	Interval, Splay time.Duration
	// Listen is the HTTP address ("" = none); WebConfig the exporter-toolkit
	// web configuration file ("" = plain HTTP, no auth).
	Listen, WebConfig string
	// Once runs once and returns that run's report.
	Once bool
	// Version and Revision are cairn's, for cairn_build_info.
	Version, Revision string
	// Listening, when set, is called with the HTTP address once it
	// listens.
	Listening func(net.Addr)
	// Executable, when set, is the agent's own executable (selfexe.Open at
	// start). After a run that leaves the host at its target (applied or
	// unchanged, never failed or rolled back), a file replaced by another
	// program (a move that upgraded cairn) ends Run with a *Handover,
	// once the new file has run with ProbeArgs and exited 0. Once turns
	// it off.
	Executable *selfexe.Executable
	// ProbeArgs are the arguments with which a replaced executable must
	// run and exit 0 before the agent hands over to it (cairn's
	// "version"); what it prints is logged and kept in the Handover.
	ProbeArgs []string
}

// probeTimeout bounds the run of a replaced executable with ProbeArgs.
const probeTimeout = 30 * time.Second

// Handover is how Run ends when the agent's executable was replaced by
// another program and a run left the host at its target: the caller is to
// execute the new file in this process (Exe.Exec) now that Run has closed
// everything it opened (the HTTP listener, the watchdog's pings; the
// state's lock is held only during runs). Nothing is half done: the move
// that replaced the file has committed.
type Handover struct {
	// Exe is the executable, now holding the new program.
	Exe *selfexe.Executable
	// Commit is the commit the host is at.
	Commit string
	// Probe is what the new executable printed when run with ProbeArgs
	// (its version).
	Probe string
}

func (h *Handover) Error() string {
	return fmt.Sprintf("the executable %s was replaced (%s) at commit %s: handing over to it", h.Exe.Path(), h.Probe, short(h.Commit))
}

// startLockWait is how long the agent waits at start for a lock that a
// host command holds before it serves without its status.
const startLockWait = 5 * time.Second

// memoryLimit is the Go runtime's soft memory limit in the agent, unless
// GOMEMLIMIT sets one: near it the GC runs more often, which keeps a
// 10,000-resource run under 100 MiB (bench/agent.sh) at some CPU.
const memoryLimit = 64 << 20

// Daemon is the agent: one reconcile loop owned by a context, triggered by
// the interval with splay, Trigger (SIGHUP, POST /trigger) and its start;
// it serves metrics and status and talks to systemd.
type Daemon struct {
	p       *Pipeline
	cfg     DaemonConfig
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	trigger chan struct{}
	alive   atomic.Bool

	mu  sync.Mutex
	doc status.Document
}

// NewDaemon makes the agent around a pipeline.
func NewDaemon(p *Pipeline, cfg DaemonConfig) (*Daemon, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("--interval %v: want a positive duration", cfg.Interval)
	}
	if cfg.Splay < 0 {
		return nil, fmt.Errorf("--splay %v: want a duration of 0 or more", cfg.Splay)
	}
	reg := prometheus.NewRegistry()
	// process_*: the agent's CPU, memory and open files, and its start
	// time, by which the promotion gate sees an agent that restarted
	// within the soak window (agent/fleet).
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: register the process collector: %w", err)
	}
	// The first state is the one at start.
	states := []string{string(Idle)}
	for _, s := range States() {
		if s != Idle {
			states = append(states, string(s))
		}
	}
	var kinds []string
	for _, k := range steps.Kinds() {
		kinds = append(kinds, k.Op())
	}
	m, err := metrics.New(reg, metrics.Options{Version: cfg.Version, Revision: cfg.Revision, Host: p.cfg.Host, States: states, Kinds: kinds})
	if err != nil {
		return nil, err
	}
	d := &Daemon{p: p, cfg: cfg, log: p.log(), reg: reg, metrics: m, trigger: make(chan struct{}, 1)}
	p.cfg.Ops = opCounter{m}
	return d, nil
}

// opCounter counts the ops of moves in cairn_ops_total.
type opCounter struct{ m *metrics.Metrics }

func (o opCounter) OpStarted(steps.OpEvent) {}
func (o opCounter) OpDone(e steps.OpEvent)  { o.m.OpDone(e.Kind, e.Direction.String()) }

// Trigger asks for a run now; during a run it queues one more, and never
// more than one.
func (d *Daemon) Trigger() {
	select {
	case d.trigger <- struct{}{}:
	default:
	}
}

// Status returns the status document.
func (d *Daemon) Status() status.Document {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.doc
}

// Registry is where the agent's metrics are.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Run runs the agent until ctx is done (it then returns nil), or, with
// Once, for one run, whose report it returns. A move that ctx interrupts
// is undone (the step running ends first). With Executable set, a run that
// leaves the host at its target with the executable replaced ends Run with
// a *Handover error, everything Run opened closed.
func (d *Daemon) Run(ctx context.Context) (*Report, error) {
	// A host command may hold the lock (a long cairn apply): the agent
	// gets ready and serves meanwhile, within systemd's start timeout,
	// and its first run waits for the lock.
	startCtx, cancel := context.WithTimeout(ctx, startLockWait)
	doc, err := d.p.Status(startCtx)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, steps.ErrLocked):
		d.log.Warn("the state is locked by another cairn; the first run waits for it", "err", err)
	case steps.ExitCode(err) == steps.ExitUndoFailed:
		// A state that cannot be put back (exit 3) is reported, and every
		// run retries its recovery first; the agent keeps serving.
		d.log.Error("cannot open the state", "err", err)
		doc.State = string(Broken)
	default:
		d.log.Error("cannot open the state", "err", err)
		return nil, err
	}
	d.setDoc(doc)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	d.alive.Store(true)
	defer d.alive.Store(false)

	var wg sync.WaitGroup
	defer wg.Wait()
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	if d.cfg.Listen != "" {
		h := web.Handler(web.Options{Gatherer: d.reg, Status: d.Status, Trigger: d.Trigger, Alive: d.alive.Load, Log: d.log})
		listening := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := web.Serve(serveCtx, d.cfg.Listen, d.cfg.WebConfig, h, d.log, func(addr net.Addr) {
				if d.cfg.Listening != nil {
					d.cfg.Listening(addr)
				}
				listening <- nil
			})
			if err != nil {
				listening <- err
			}
		}()
		// A listener that cannot start (a port in use, a bad web
		// configuration) is a setting to fix, before READY.
		if err := <-listening; err != nil {
			return nil, fmt.Errorf("--listen %s: %w", d.cfg.Listen, err)
		}
	}
	if _, err := systemd.Ready(); err != nil {
		d.log.Warn("sd_notify", "err", err)
	}
	d.notifyStatus()
	if every, _ := systemd.WatchdogInterval(); every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.watchdog(serveCtx, every)
		}()
	}

	wait := d.cfg.Interval + Offset(d.p.cfg.Host, d.cfg.Splay)
	d.log.Info("agent started", "host", d.p.cfg.Host, "repo", mirror.Redact(d.p.cfg.Repo), "interval", d.cfg.Interval, "wait", wait)
	timer := time.NewTimer(0) // a run at start
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			systemd.Stopping()
			return nil, nil
		case <-timer.C:
		case <-d.trigger:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		rep := d.p.Run(ctx, Request{Mode: Follow}, d)
		d.finished(ctx, rep)
		if d.cfg.Once {
			return rep, nil
		}
		if h := d.handover(ctx, rep); h != nil {
			return nil, h
		}
		// The run's garbage (its report, whose plan holds both journals;
		// the compiler's trees) would hold the process's memory until the
		// next GC, which at rest comes only every two minutes: collect it
		// and give it back now (rep is dead here), at the cost of two GCs
		// of the small heap that lives on. The first also moves the
		// buffers in sync.Pools (encoding/json keeps the one that wrote
		// applied.json, megabytes large) to their victim caches, which
		// only the second empties.
		moved := rep.Run.Result == ResultApplied
		runtime.GC()
		if moved {
			d.warm(ctx) //nolint:errcheck // logged; the next run reads the journal itself
		}
		debug.FreeOSMemory()
		timer.Reset(wait)
	}
}

// handover returns the Handover that ends Run after rep, or nil: when the
// executable was replaced by another program, the run left the host at its
// target, and the new file runs with ProbeArgs. A new file that does not
// run is logged, and the agent keeps running the old program; the next
// run asks again.
func (d *Daemon) handover(ctx context.Context, rep *Report) *Handover {
	exe := d.cfg.Executable
	if exe == nil || ctx.Err() != nil {
		return nil
	}
	switch rep.Run.Result {
	case ResultApplied, ResultUnchanged:
	default:
		// A failed move was undone, the former version installed again
		// (the same program: not a replacement); a broken one is left
		// as it is for a person to see, with the program that knows it.
		return nil
	}
	replaced, err := exe.Replaced()
	if err != nil {
		d.log.Warn("cannot tell whether the executable was replaced", "err", err)
		return nil
	}
	if !replaced {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	probe, err := exe.Run(pctx, d.cfg.ProbeArgs...)
	cancel()
	if err != nil {
		d.log.Error("the executable was replaced by one that does not run: the agent keeps running the old program", "path", exe.Path(), "err", err)
		return nil
	}
	h := &Handover{Exe: exe, Probe: probe}
	doc := d.Status()
	if doc.Applied != nil {
		h.Commit = doc.Applied.Commit
	}
	d.log.Info("the executable was replaced: handing over to it", "path", exe.Path(), "new", probe, "old", d.cfg.Version, "commit", h.Commit)
	systemd.Status("state " + doc.State + ", handing over to " + probe)
	return h
}

// warm opens the state once after a move, while the agent is idle, so that
// the applied journal the move wrote is decoded now (steps keeps the last
// one it read, while the file is unchanged) rather than at the start of the
// next run, where a push waits for it: about 70 ms of CPU for 10,000 steps
// (bench/agent.sh). It is the decode an unchanged run would do anyway, done
// earlier; the journal it keeps is the one every unchanged run keeps at
// rest. A state another cairn has locked is left as it is.
func (d *Daemon) warm(ctx context.Context) error {
	cfg := &d.p.cfg
	a, err := steps.Open(ctx, steps.Options{Root: cfg.Root, StateDir: cfg.StateDir, Log: cfg.Log, Output: cfg.Output, Host: cfg.Drivers})
	if err != nil {
		d.log.Debug("cannot read the applied journal ahead of the next run", "err", err)
		return err
	}
	return a.Close()
}

// watchdog pings systemd's watchdog while the agent lives.
func (d *Daemon) watchdog(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d.alive.Load() {
				systemd.Watchdog()
			}
		}
	}
}

// Enter is the pipeline's observer: a transition of the lifecycle.
func (d *Daemon) Enter(s State, at time.Time) {
	d.metrics.SetState(string(s))
	d.mu.Lock()
	d.doc.State, d.doc.StateSince = string(s), at
	d.mu.Unlock()
	d.notifyStatus()
}

var _ MoveObserver = (*Daemon)(nil)

// Moved is the pipeline's observer: a move holds; cairn_applied_commit_info
// shows it before the run's drift check ends (the status document follows
// at the run's end).
func (d *Daemon) Moved(commit, branch, group string, committed time.Time, steps int) {
	d.metrics.SetApplied(commit, branch, group, committed)
	d.metrics.SetJournalSteps(steps)
}

// Fetched is the pipeline's observer: a fetch ended.
func (d *Daemon) Fetched(ok bool, at time.Time) { d.metrics.FetchDone(ok, at) }

// finished updates status and metrics from a run's report.
func (d *Daemon) finished(ctx context.Context, rep *Report) {
	if rep.Err != nil {
		d.log.Warn("run ended", "result", string(rep.Run.Result), "commit", rep.Run.Commit, "err", rep.Err)
	} else {
		d.log.Info("run ended", "result", string(rep.Run.Result), "commit", rep.Run.Commit, "ops", rep.Run.Ops)
	}
	if rep.Run.Result == ResultRefused {
		d.metrics.Refused(string(rep.Run.Reason))
	}
	took := rep.Run.Finished.Sub(rep.Run.Started)
	// A stop ends the wait for a host command's lock: the last document
	// is served meanwhile.
	var doc status.Document
	var err error
	if rep.Status != nil {
		doc = *rep.Status
	} else {
		doc, err = d.p.Status(ctx)
	}
	if err != nil {
		// The run is counted all the same (without a status it did not
		// leave the host known to be at its target); a state that cannot
		// be put back is shown broken, never as the converged host it was.
		d.log.Warn("cannot read the status back", "err", err)
		doc = d.Status()
		if steps.ExitCode(err) == steps.ExitUndoFailed {
			doc.State, doc.StateSince, doc.Converged = string(Broken), rep.Run.Finished, false
		}
	}
	d.setDoc(doc)
	success := err == nil && (rep.Run.Result == ResultApplied || rep.Run.Result == ResultUnchanged)
	d.metrics.RunDone(string(rep.Run.Result), took, rep.Run.Finished, success && doc.Target != nil && doc.Applied != nil && doc.Applied.Commit == doc.Target.Commit)
	d.notifyStatus()
}

// setDoc replaces the status document and the metrics drawn from it.
func (d *Daemon) setDoc(doc status.Document) {
	d.mu.Lock()
	d.doc = doc
	d.mu.Unlock()
	m := d.metrics
	if doc.Applied != nil {
		m.SetApplied(doc.Applied.Commit, doc.Applied.Branch, doc.Applied.Group, doc.Applied.Committed)
		m.SetJournalSteps(doc.Applied.Steps)
	}
	if doc.Target != nil {
		m.SetTarget(doc.Target.Commit, doc.Target.Branch, doc.Target.Committed)
		// The target is recorded by the run's resolve of the hosts
		// block: its branch and the group are the host's now.
		m.SetGroup(doc.Group, doc.Target.Branch)
	}
	m.SetState(doc.State)
	m.SetHeld(doc.Held != nil)
	m.SetDrift(len(doc.Drift))
	m.SetConverged(doc.Converged)
}

// notifyStatus tells systemd the state and the applied commit.
func (d *Daemon) notifyStatus() {
	d.mu.Lock()
	line := "state " + d.doc.State
	if d.doc.Applied != nil {
		line += ", at " + short(d.doc.Applied.Commit)
	}
	d.mu.Unlock()
	systemd.Status(line)
}
