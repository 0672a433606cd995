package agent

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// DriftMode says what a run does with drift on the unchanged steps.
type DriftMode string

// The drift modes (--drift).
const (
	DriftReport DriftMode = "report"
	DriftRepair DriftMode = "repair"
)

// Config is what the pipeline needs to know, from the settings of spec
// agent.md §1 (the command line parses them; this package takes values).
type Config struct {
	// Repo is the configuration repository's URL or path ("" for the
	// commands that only read the state: status, resume).
	Repo string
	// Version is cairn's version, for the status document.
	Version string
	// SSHKey and KnownHosts are for ssh:// repositories ("" = ~/.ssh's).
	SSHKey, KnownHosts string
	// Host is the name the hosts block matches; Group, when set,
	// overrides the group it gives.
	Host, Group string
	// Branch is the control branch (default "main").
	Branch string
	// Facts are the host's facts for the compiler.
	Facts map[string]string
	// Root is where object paths resolve; StateDir the state directory
	// ("" = beneath the root).
	Root     *rootfs.Root
	StateDir string
	// Trust is the trust file's path; AllowUnsigned runs without one.
	// Without either, a run refuses every commit (unsigned), a Plan run
	// too: it says what apply would do.
	Trust         string
	AllowUnsigned bool
	// Drift says whether drifted steps are repaired.
	Drift DriftMode
	// MaxRemoval is the blast-radius guard, in percent of the managed
	// identities (§5).
	MaxRemoval float64
	// Confirm is how long the new journal's CHECKs must keep holding after
	// a move (§3); 0 turns confirmation off.
	Confirm time.Duration
	// RehashEvery makes every Nth drift check hash every file whatever
	// the state's stat cache says (steps.Options.RehashEvery); 0 is
	// steps.DefaultRehashEvery.
	RehashEvery int
	// LockWait is how long to wait for another process's state lock.
	LockWait time.Duration
	// Drivers are the host's drivers of users, packages, units and tools.
	Drivers steps.Host
	// Log receives the agent's log; Output what EXEC and CHECK commands
	// print.
	Log    *slog.Logger
	Output io.Writer
	// Ops hears of every op a move runs (nil: nobody).
	Ops steps.Observer
	// Kill, once closed, kills the op that runs (steps.Options.Kill).
	Kill <-chan struct{}
}

// check returns an error for settings that cannot work together. Neither
// --trust nor --allow-unsigned is no such error: cairn status, plan and
// resume read the state or move nothing, and a move without either is
// refused (unsigned) by the verify stage; the command line refuses to start
// the commands that move (spec agent.md §1).
func (c *Config) check() error {
	switch {
	case c.Host == "":
		return fmt.Errorf("no host name: set --host or CAIRN_HOST")
	case c.Drift != DriftReport && c.Drift != DriftRepair:
		return fmt.Errorf("--drift %q: want report or repair", c.Drift)
	case c.MaxRemoval < 0 || c.MaxRemoval > 100:
		return fmt.Errorf("--max-removal %v: want a percentage from 0 to 100", c.MaxRemoval)
	case c.RehashEvery < 0:
		return fmt.Errorf("--rehash-every %d: want 1 or more (0: the default)", c.RehashEvery)
	}
	if c.Branch == "" {
		c.Branch = "main"
	}
	return nil
}
