// Package cli is cairn's command line: one struct per subcommand with a Run
// method, flags parsed by kong, errors mapped to the documented exit codes
// (spec cli.md) in one place. cmd/cairn only calls Run.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// Exit codes (spec cli.md).
const (
	exitOK       = steps.ExitOK
	exitDiffers  = steps.ExitFailed // diff and drift: differences found
	exitBadInput = steps.ExitBadInput
)

// CLI is the command tree.
type CLI struct {
	LogLevel string `help:"Log level: debug, info, warn or error (default: info for the agent and host commands, warn for the others)." default:"" enum:",debug,info,warn,error" name:"log-level" env:"CAIRN_LOG_LEVEL"`

	Agent    agentCmd    `cmd:"" help:"Run the agent: follow the group's git branch, apply, roll back, report." group:"agent"`
	Status   statusCmd   `cmd:"" help:"Show the applied and target commit, state, drift and last run (exit 1 when not converged)." group:"agent"`
	Plan     planCmd     `cmd:"" help:"Fetch, verify and compile the target, and print the plan and the drift." group:"agent"`
	Apply    applyCmd    `cmd:"" help:"Move the host to the target (or --to REV) now, in the foreground." group:"agent"`
	Rollback rollbackCmd `cmd:"" help:"Move to the commit applied before (or --to REV) and hold the host there." group:"agent"`
	Resume   resumeCmd   `cmd:"" help:"Lift a rollback's hold: the agent follows its branch again." group:"agent"`

	Fleet   fleetCmd   `cmd:"" help:"Show every group as Prometheus sees it: tip, commits, converged, drifting, failing, held, and the hosts that lag (exit 1 when any)." group:"fleet"`
	Promote promoteCmd `cmd:"" help:"Fast-forward a group's branch to another group's tip once Prometheus shows that group healthy on it." group:"fleet"`
	Lock    lockCmd    `cmd:"" help:"Lock a group: promote refuses to move its branch (a signed commit on the control branch)." group:"fleet"`
	Unlock  unlockCmd  `cmd:"" help:"Remove a group's lock (a signed commit on the control branch)." group:"fleet"`

	Compile compileCmd `cmd:"" help:"Compile configuration for one host and print its journal."`
	Explain explainCmd `cmd:"" help:"Show which configuration produced a step, a path or a name."`
	Fmt     fmtCmd     `cmd:"" help:"Rewrite configuration files in canonical style (--check to only report)."`
	Journal journalCmd `cmd:"" help:"Work on journal files: check, fmt, diff, apply, drift, show, kept."`
	Version versionCmd `cmd:"" help:"Print cairn's version."`
	Help    helpCmd    `cmd:"" help:"Show help for a command (cairn help journal apply)."`
}

type journalCmd struct {
	Check journalCheckCmd `cmd:"" help:"Parse and statically check journal files."`
	Fmt   journalFmtCmd   `cmd:"" help:"Print the canonical form of every step."`
	Diff  journalDiffCmd  `cmd:"" help:"Show the steps removed and added between two journals, then the plan."`
	Apply journalApplyCmd `cmd:"" help:"Move the host from the applied journal to FILE."`
	Drift journalDriftCmd `cmd:"" help:"Check the live state against the applied journal."`
	Show  journalShowCmd  `cmd:"" help:"Print the applied journal."`
	Kept  journalKeptCmd  `cmd:"" help:"List the content kept from files edited by hand, or print what is kept for PATH."`
}

// env is what every command's Run receives.
type env struct {
	// ctx is cancelled by the first SIGINT or SIGTERM, and kill closed by
	// the second (signals).
	ctx    context.Context
	kill   <-chan struct{}
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	// level is --log-level (the log's level), and levelSet whether it
	// was given.
	level    slog.Level
	levelSet bool
	// notes is where cairn's own notices go: the signals' and the error
	// the command ends with.
	notes *notes
	// args is the command line Run was given (without the program's
	// name): the agent re-executes itself with it (agentCmd.handOver).
	args []string
	// journal is whether stderr is the process's stderr and a stream to
	// systemd's journal (--log-format auto).
	journal bool
}

// notes is where cairn's own notices go — what signals says of a signal,
// and the error a command ends with: raw lines on stderr, or, once a
// command that logs one JSON object a line hands over its log (the agent
// and the host commands with --log-format json or journal,
// settings.logger), records of that log, so that stderr stays one object a
// line, and the journal has the fields.
type notes struct {
	stderr io.Writer
	log    atomic.Pointer[slog.Logger]
}

// signal notes a signal and what cairn does about it.
func (n *notes) signal(sig os.Signal, again bool, what string) {
	if log := n.log.Load(); log != nil {
		if again {
			log.Warn(what, "signal", sig.String(), "again", true)
		} else {
			log.Info(what, "signal", sig.String())
		}
		return
	}
	if again {
		fmt.Fprintf(n.stderr, "cairn: %v again: %s\n", sig, what)
		return
	}
	fmt.Fprintf(n.stderr, "cairn: %v: %s\n", sig, what)
}

// newLogger makes the logger of a command: text on w, from level up.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		// A command's messages carry no time: it runs in the foreground,
		// and its output stays comparable run to run.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// exitError carries an exit code with an error already printed or to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// exitCode is an exit without an error message (diff found differences).
func exitCode(code int) error { return &exitError{code: code} }

type kongExit int

// Run runs the command line args and returns the exit code. It sets up
// signals: the first SIGINT or SIGTERM cancels the context, which long
// commands check between steps; the second kills the step running (a move
// is then undone, steps.Applier.Run).
func Run(args []string, stdout, stderr io.Writer) (code int) {
	n := &notes{stderr: stderr}
	ctx, kill, stop := signals(context.Background(), n, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, kill, n, args, stdout, stderr)
}

// signals maps the signals sigs to the two ways a move stops
// (steps.Applier.Apply): the first cancels ctx, so that no further step
// starts and the one running ends by itself, within its timeout; the
// second closes kill, so that the step running is killed at once. Either
// way the move is undone, and the undo is never interrupted: later signals
// are ignored. (SIGKILL still works; the next command then undoes the move
// from the intent log.) Each signal is noted in n: on stderr, which a
// command shares only with its log, or as a record of that log. stop
// releases the signals.
func signals(parent context.Context, n *notes, sigs ...os.Signal) (ctx context.Context, kill <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	killc := make(chan struct{})
	c := make(chan os.Signal, 1)
	signal.Notify(c, sigs...)
	done := make(chan struct{})
	go func() {
		count := 0
		for {
			select {
			case sig := <-c:
				count++
				switch count {
				case 1:
					n.signal(sig, false, "stopping after the step that runs (a second signal kills it)")
					cancel()
				case 2:
					n.signal(sig, true, "killing the step that runs")
					close(killc)
				}
			case <-done:
				return
			}
		}
	}()
	return ctx, killc, func() {
		signal.Stop(c)
		close(done)
		cancel()
	}
}

func run(ctx context.Context, kill <-chan struct{}, n *notes, args []string, stdout, stderr io.Writer) (code int) {
	var c CLI
	defer func() {
		if r := recover(); r != nil {
			if k, ok := r.(kongExit); ok {
				code = int(k)
				return
			}
			panic(r)
		}
	}()
	parser, err := newParser(&c,
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		onlyCommand(args),
	)
	if err != nil {
		fmt.Fprintln(stderr, "cairn:", err)
		return exitBadInput
	}
	emptyEnvUnset(parser.Model.Node)
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "cairn: %v\n", err)
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil {
			fmt.Fprintf(stderr, "run '%s --help' for usage\n", commandPath(pe.Context))
		}
		return exitBadInput
	}
	level := slog.LevelWarn
	if c.LogLevel != "" {
		level.UnmarshalText([]byte(c.LogLevel))
	}
	e := &env{
		ctx:      ctx,
		kill:     kill,
		stdout:   stdout,
		stderr:   stderr,
		log:      newLogger(stderr, level),
		level:    level,
		levelSet: c.LogLevel != "",
		notes:    n,
		args:     args,
		journal:  stderr == io.Writer(os.Stderr) && systemd.StderrIsJournal(),
	}
	err = kctx.Run(e, parser)
	if log := n.log.Load(); log != nil {
		// The command's log is JSON or the journal's: its error is a
		// record too.
		var msg strings.Builder
		code := report(&msg, err)
		if msg.Len() > 0 {
			log.Error("cairn exits", "code", code, "err", strings.TrimSuffix(msg.String(), "\n"))
		}
		return code
	}
	return report(stderr, err)
}

// description is what cairn is, in one sentence: the top of its help and
// of its manual page.
const description = "cairn keeps Debian hosts at the state a git repository describes, and can undo any change."

// newParser makes the parser of the command tree c, with the options every
// use shares (the command line, and Model's generated documents).
func newParser(c *CLI, opts ...kong.Option) (*kong.Kong, error) {
	return kong.New(c, append([]kong.Option{
		kong.Name("cairn"),
		kong.Description(description),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	}, opts...)...)
}

// Model returns the command tree as kong models it, the same the command
// line parses and prints help from, for the documents generated from it:
// manual pages, shell completions and /etc/default/cairn (package clidoc).
// Defaults and help are as written, whatever CAIRN_* variables the
// environment holds.
func Model() (*kong.Application, error) {
	var c CLI
	parser, err := newParser(&c, kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
	if err != nil {
		return nil, err
	}
	return parser.Model, nil
}

// emptyEnvUnset makes an empty CAIRN_* variable mean what an absent one
// does, which is what a line "CAIRN_CONFIRM=" of /etc/default/cairn means
// to whoever wrote it: kong would otherwise parse the empty string as the
// value, which is an error for a duration, a number, a bool or an enum,
// and replaces a default ("main", "/") for a string. A setting tagged
// emptyenv:"value" keeps the empty string as its value instead: CAIRN_LISTEN=
// turns the listener off, as --listen "" does. It drops, beneath node, the
// names of the empty variables from the flags' lists of variables, which
// kong reads when it parses.
func emptyEnvUnset(node *kong.Node) {
	for _, f := range node.Flags {
		if f.Tag.Get("emptyenv") == "value" {
			continue
		}
		var keep []string
		for _, name := range f.Tag.Envs {
			if v, ok := os.LookupEnv(name); !ok || v != "" {
				keep = append(keep, name)
			}
		}
		f.Tag.Envs = keep
	}
	for _, child := range node.Children {
		emptyEnvUnset(child)
	}
}

// commandPath names the command a parse reached, without its arguments:
// "cairn journal diff".
func commandPath(kctx *kong.Context) string {
	names := []string{"cairn"}
	for _, p := range kctx.Path {
		if p.Command != nil {
			names = append(names, p.Command.Name)
		}
	}
	return strings.Join(names, " ")
}

// report prints err and maps it to an exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(stderr, ee.err)
		}
		return ee.code
	}
	printError(stderr, err)
	return steps.ExitCode(err)
}

// printError prints an error, each finding of a journal on its own line.
func printError(w io.Writer, err error) {
	if l := journal.Findings(err); len(l) > 0 && errors.Is(err, l) {
		fmt.Fprintln(w, l.Error())
		return
	}
	fmt.Fprintln(w, err.Error())
}

type versionCmd struct{}

func (versionCmd) Run(e *env) error {
	fmt.Fprintln(e.stdout, "cairn", Version())
	return nil
}

// version is cairn's version when the build sets it: go build -ldflags
// "-X github.com/cairn-cm/cairn/internal/cli.version=1.2.3" (make deb sets
// the package's version). Empty: the module version from the build info.
var version string

// Version returns the version cairn was built as (the -X of version), or
// the module version it was built from, or "devel". cairn version prints it
// and the agent exports it as cairn_build_info's version label.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

type helpCmd struct {
	Command []string `arg:"" optional:"" help:"The command to describe."`
}

func (h helpCmd) Run(e *env, parser *kong.Kong) error {
	kctx, err := kong.Trace(parser, h.Command)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if kctx.Error != nil {
		return &exitError{code: exitBadInput, err: fmt.Errorf("unknown command %q; run 'cairn --help' for the commands", strings.Join(h.Command, " "))}
	}
	return kctx.PrintUsage(false)
}
