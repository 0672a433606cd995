// Package agent is cairn's main job: it keeps a host at the commit its
// group's git branch names, undoes what fails, and reports where the host
// stands (spec agent.md).
//
// One pipeline serves the daemon and every host command (cairn plan,
// apply, rollback, resume, status):
//
//	resolve → fetch → verify → compile → plan → guard → apply → confirm → drift
//
// # Use
//
//  1. [New] checks a [Config] (the settings of spec §1, as values: the
//     command line parses them) and loads the trust file.
//  2. [Pipeline.Run] runs the pipeline once for a [Request] ([Follow] for
//     the agent's runs, [Plan], [Apply], [Rollback]) and returns a
//     [Report]: its record ([Run]), the plan, the drift, and the error that
//     ended it (a [*Refusal], a steps error, a fetch error). [Report.ExitCode]
//     maps it to the exit codes of spec §8. An [Observer] hears every
//     transition of the lifecycle.
//  3. [Pipeline.Status] reads the status document from the state;
//     [Pipeline.Resume] lifts a rollback's pin.
//  4. [NewDaemon] wraps a pipeline in the agent: [Daemon.Run] owns one
//     reconcile loop (a run at start, then every interval plus the host's
//     splay [Offset], and at every [Daemon.Trigger]: SIGHUP, POST /trigger),
//     serves metrics and status over HTTP (agent/web, agent/metrics), and
//     talks to systemd (READY, STATUS, WATCHDOG). Given its own executable
//     (agent/selfexe), it ends with a [*Handover] once a run that leaves the
//     host at its target finds the file replaced (cairn upgraded through
//     cairn): the caller re-executes the new program in the same process.
//
// # A run
//
// A run opens the state (waiting for its lock, recovering a move a dead
// process left), fetches the control branch into the bare mirror in the
// state directory (agent/mirror), reads the hosts block at its tip for the
// host's group and target branch, and goes through the states of the
// lifecycle table (lifecycle.go): an unchanged target, a held host or a
// move already known to be bad goes straight to the drift check; otherwise
// the target is verified (agent/trust, the descendant rule), compiled from
// the git objects (agent/gitfs) into the state's blob store, planned,
// guarded (the blast radius), applied through steps, and confirmed (the
// journal's CHECKs run again for the confirm window). A failed or refused
// move is recorded as bad and not tried again from the same commit.
//
// # State
//
// The agent's records (lifecycle state, last runs, bad moves, the pin, the
// target last fetched, the drift) live beside the applier's, under the
// same lock and with the same atomic writes (steps.Applier.WriteRecord).
//
// # Cancellation
//
// The context of Run stops a move between ops, never inside one: the move
// is undone (steps' contract). Config.Kill kills the op that runs. The way
// back after a failed confirmation is never stopped.
package agent
