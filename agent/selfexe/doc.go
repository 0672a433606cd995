// Package selfexe notices that the program's own executable was replaced on
// disk while it runs, and hands the process over to the new one.
//
// It serves the agent's self-upgrade: a journal's APT-INSTALL cairn
// version=NEW makes dpkg replace /usr/bin/cairn under the running agent
// (dpkg writes the new file beside the old one and renames it over it, so
// the agent keeps running the old, now unlinked, file). Once that move has
// committed, the agent re-executes the new file in its own process, which
// keeps its PID and so its place in systemd's unit (docs/agent.md says why
// that, rather than an exit for Restart= to restart).
//
// # Use
//
//  1. [Open] at start, before anything can replace the file: it records
//     which file the process runs (/proc/self/exe) and what it is (device,
//     inode, size, modification time); [OpenPath] records another name of
//     it.
//  2. Between pieces of work, ask [Executable.Replaced]: whether the file
//     at that path now holds another program than the one that runs.
//  3. Before handing over, [Executable.Run] the new file (cairn version):
//     a file that cannot run is not handed over to.
//  4. [Executable.Exec] replaces the process with the new file.
//
// # What counts as replaced
//
// The path's identity (device and inode), size and modification time are
// compared with those recorded at start; when they are the same, the file
// is the one that runs. When they differ, the contents decide: the running
// program (read through /proc/self/exe, which reaches it even after it was
// unlinked) and the file now at the path are hashed (SHA-256), and only
// different contents are a replacement. A package reinstalled at the same
// version, or an upgrade undone by a rollback that installed the former
// version again, leaves other inodes but the same program: no handover,
// and the new identity becomes the one compared from then on. A path that
// no longer exists is not replaced (nothing to hand over to).
//
// Linux only: /proc/self/exe is how the running program is found.
package selfexe
