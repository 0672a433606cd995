// Package promote is the git side of `cairn promote`, `cairn lock` and
// `cairn unlock`: it moves a commit from one host group's branch to
// another's when a gate says the first group ran it healthily, and records
// locks that stop it.
//
// Groups and branches come from the hosts block at the control branch's
// tip (spec agent.md §2): a group without `branch` follows the control
// branch, and several groups may share one branch, so that promoting to one
// moves them all. Locks are files .cairn/locks/GROUP on the control branch
// (lines "reason:", "by:" and "since:", RFC 3339), which the compiler does
// not read.
//
// # Use
//
//  1. [Promote] with [Options]: the repository, the control branch, the
//     --from and --to groups, the soak window and the least number of
//     hosts, and the gate, a [GateFunc] (fleet.Gate against Prometheus,
//     for the command line). It returns a [Result] that says what it did
//     and why, for the command line to print as text or JSON.
//  2. [LockGroup] and [UnlockGroup] with [LockOptions] add or remove a
//     group's lock as a commit on the control branch, signed by git
//     itself (git commit-tree -S, with the operator's git configuration).
//
// # Promote
//
// In order, each refusal ending it:
//
//  1. Fetch the control branch and read its hosts block and locks. An
//     unknown group, or --from and --to on one branch, is bad input
//     (an error wrapping [ErrBadInput]).
//  2. Fetch both branches and the notes reference. When --to's tip is
//     --from's, there is nothing to do (Result.Status "up-to-date").
//  3. A lock on any group of --to's branch refuses (Status "locked"), with
//     who locked it, when and why. (Before the next check: a lock commit
//     on a control branch that --to's groups follow makes that branch
//     diverge too.)
//  4. When --to's tip is not an ancestor of --from's, the error (bad
//     input) lists the commits --to has that --from lacks, and how to fix
//     it: merge --to's branch into --from's.
//  5. The gate checks the --from group at --from's tip over the soak
//     window; a failed condition refuses (Status "refused") with the
//     verdict's reasons.
//  6. Push, in one push (atomic when the server can): --to's branch
//     fast-forwarded to --from's tip, never forced, and a note on that
//     commit under refs/notes/cairn-promotions with the evidence (appended
//     to a note already there). Just before, the control branch is
//     read again (when --to follows it, the push's compare-and-set on
//     it does the same): one that moved while the gate was asked (a
//     lock, say) is an error wrapping mirror.ErrStale, and nothing is
//     pushed. A push that loses a race is an error, and the server is
//     left as the other push made it. A server that is not atomic gets
//     the branch, then the note (mirror.Push's order); a note it refuses
//     is pushed again on the notes' fresh tip, or the error says that the
//     branch moved without it. --dry-run stops before the push (Status
//     "dry-run").
//
// # Locks
//
// A lock or unlock fetches the control branch into a temporary mirror,
// writes the new tree with go-git, has git commit-tree -S make the signed
// commit there, and pushes it as a fast-forward; a push that races another
// is tried once more on a fresh fetch. Locking a locked group and unlocking
// an unlocked one are refused with an error wrapping [ErrLockState].
//
// The network goes through agent/mirror (go-git, with its ssh, https and
// timeout handling); only signing runs git.
package promote
