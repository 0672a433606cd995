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
// The host itself is reached through Env: the root (package rootfs) for
// files, and host interfaces for users, packages and units that other
// packages implement.
package steps
