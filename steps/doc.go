// Package steps gives every journal step kind its behaviour and moves a host
// from one journal to another as one transaction.
//
// Each kind answers: how to do it (forward), how to undo it (inverse), and
// whether the live host matches it (check). Kinds that manage an object
// belong to a family (path, user, ...) whose Imager captures the object's
// state as an Image and restores it: the original image, kept from the first
// time cairn managed the object until it leaves management, is what every
// inverse restores; the undo image, taken before each op, undoes a move that
// fails or is interrupted.
//
// The Applier owns the state directory (applied journal, original images,
// content kept from files edited by hand, blobs by sha256, intent log,
// history, the agent's records) and moves the host in two calls: Plan
// computes the journal.Plan and checks it before anything changes, Run
// runs that very plan:
//
//  1. take the state lock and recover an interrupted move (Open);
//  2. check every input the plan needs (COPY content and its sha256) and
//     the plan against the host (Plan);
//  3. record the plan in the intent log, and, batch by batch, the undo
//     image of every op before the op runs;
//  4. run the ops; if one fails, undo those already run, in reverse order;
//  5. sync the file system and commit: write the new applied journal
//     atomically, then drop the intent log.
//
// An Observer (Options.Observer) is told of every op and undo as it runs.
//
// # Stopping a move
//
// A cancelled context stops a move between ops, never inside one. The
// command line maps a first SIGINT or SIGTERM to the stop and a second to
// the kill; an agent maps systemd's stop to the stop and a deadline of its
// own, before systemd's stop timeout SIGKILLs it, to the kill. The
// contract, which stop.go alone implements (every op, undo image and undo
// gets its context from one function, cancellation.opContext):
//
//   - The ctx of Applier.Run (or of Apply, which plans and runs) is the
//     stop: once it is done, no further op starts (the move fails before
//     it, "interrupted before this step"), the op that runs ends by itself
//     (a command within its own timeout: EXEC's, a CHECK's), and the move
//     is undone (a *StepError, exit 1). No op ever sees that ctx's
//     cancellation; only the reads before any op (Drift, and Plan's drift
//     check of a repair) stop with it at once.
//   - Options.Kill is the kill: once it is closed, the op that runs is
//     killed at once: it runs with a context that is done then (cause
//     ErrKilled), and a command it runs gets SIGKILL with its whole process
//     group; no further op starts, and the move is undone (exit 1).
//   - Never killed, by either: apt-get and dpkg. The package family's ops,
//     images and undos run with a context that is never done, and the
//     package driver runs the commands that change packages detached, with
//     no context at all (debian.Apt): a dpkg killed half way leaves a
//     broken package database. Neither are the shadow tools (useradd and
//     the like: debian.Accounts starts them without a context).
//   - Never stopped or killed: an undo, after a failure or in the recovery
//     that Open makes of a dead process's move, whatever Open's ctx says.
//     Each undo command runs to its end or its own timeout; the dpkg lock
//     waits are bounded.
//
// Only SIGKILL of cairn itself cuts a move short; it leaves the intent log,
// the package manager runs on without cairn, and the next Open waits for it
// and undoes the move.
//
// The host itself is reached through Env: the root (package rootfs) for
// files, and host interfaces for users, packages and units that other
// packages implement.
package steps
