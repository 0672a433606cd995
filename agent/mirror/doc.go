// Package mirror keeps a bare git repository in the agent's state directory
// that mirrors branches and tags of the configuration repository, with
// go-git. Nothing is checked out: agent/gitfs reads the files of a fetched
// commit straight from the mirror's objects.
//
// It serves the agent's runs, which fetch the control branch and the target
// branch (spec agent.md §2), check the descendant rule (§4) with
// [Mirror.IsAncestor], and `cairn apply --to REV`, which fetches everything
// and resolves REV.
//
// # Use
//
//  1. [Open] the mirror: a directory (created with mode 0700 when missing)
//     and the remote's URL: a local path, or a file://, git://, http://,
//     https:// or ssh:// URL, or an scp-like [user@]host:path. [Options]
//     name the ssh key and known hosts file, the timeout and the logger.
//     A directory that mirrors another URL is re-pointed: its branches and
//     tags are dropped, its objects kept.
//  2. [Mirror.Fetch] the branches a run needs; it returns their tips. A
//     branch the remote lacks is an error wrapping [ErrNoBranch].
//     [Mirror.FetchAll] fetches every branch and tag.
//  3. Read what was fetched: [Mirror.Resolve] a revision to a commit hash,
//     [Mirror.Commit] for the commit itself, [Mirror.IsAncestor] for the
//     descendant rule, and agent/gitfs opened on [Mirror.Dir] for the files.
//  4. [Mirror.Close] the mirror.
//
// `cairn promote`, `cairn lock` and `cairn unlock` also write: they fetch
// with [Mirror.Fetch] and [Mirror.FetchRefs] (a notes reference), write
// objects into [Mirror.Objects] (or with git into [Mirror.Dir]), and
// [Mirror.Push] references back.
//
// # Fetching
//
// Each fetched reference is set to the remote's hash, forced: a branch that
// was force-pushed is followed, and the commits it left stay in the mirror
// (no object is ever deleted from it), so IsAncestor can tell that the new
// tip does not descend from the old one.
//
// Local paths and file:// URLs are read in this process, with no git
// binary: go-git's upload-pack advertises the references, and the pack
// holds the objects reachable from the new tips down to those the mirror
// has. git:// and ssh:// go through an upload-pack session of this package
// over the connection (golang.org/x/crypto/ssh for ssh), and http(s) through
// go-git's smart HTTP client. An ssh fetch authenticates with one private key file
// (no agent, no passphrase) and always checks the host key against a known
// hosts file; ~/.ssh/config is not read. Credentials in an http(s) URL are
// sent as HTTP basic authentication and are never written to errors, logs,
// or the mirror's configuration.
//
// Errors name the remote's URL (credentials replaced by "xxxxx") and what
// failed. A fetch stops when its context is done, and fails when the server
// stays silent longer than [Options.Timeout] (connecting, before answering,
// or in the middle of a transfer); either way it changes no reference.
//
// # Pushing
//
// [Mirror.Push] sets references on the remote, each only if it is still at
// the hash the caller read (the server compares and sets), and never
// forces: a branch update that is not a fast-forward is refused before
// anything is sent. It sends the objects the remote lacks in one pack,
// over the same transports as a fetch, with the same ssh key, known hosts,
// credentials and timeouts; the remote's receive-pack must allow pushing
// (git daemon's receive-pack service, http.receivepack for git
// http-backend). Several updates are atomic when the server offers it. A
// local path is written in this process.
//
// # Cost and concurrency
//
// A fetch is one connection (over HTTP, its requests share one while the
// server keeps it open) and one reference advertisement. When every tip
// asked for is already in the mirror, that is all: no pack is requested
// (over HTTP, one GET of info/refs). Otherwise one pack holds the missing
// objects; the mirror tells the server about up to 256 commits it has (the
// tips of its branches and tags and a few ancestors of each), without
// further negotiation, as go-git does. Each pack received is kept as a pack
// file; they are never repacked.
//
// IsAncestor walks back from the newer commit, newest first, visiting each
// commit at most once and stopping at the older one: a tip a few commits
// ahead costs a few commit reads, and an answer of false costs one walk of
// the newer commit's history.
//
// A Mirror may be used from many goroutines; its calls are serialised, so a
// Resolve waits for a running fetch. Two Mirrors (or processes) must not
// write one directory at once: the agent holds its state lock around them.
package mirror
