// Package clidoc renders a kong command tree as the documents that ship
// with a command: manual pages (roff), bash and zsh completion scripts, and
// an environment file that lists every setting of a command, commented out.
//
// Each is made from the same model the command line parses with and prints
// its help from ([kong.Application]), so none of them can drift from the
// command: a flag added to the command appears in its manual page, its
// completion and the settings file at the next build.
//
// # Use
//
//   - [ManPages] returns one page for the application and one for each
//     command and sub-command (cairn(1), cairn-agent(1), cairn-journal-apply(1)).
//   - [Bash] and [Zsh] write completion scripts for the application.
//   - [EnvFile] writes, for one command, every flag that reads an
//     environment variable as a commented-out NAME=DEFAULT line under its help.
//
// The package never prints: each function writes to the [io.Writer] it is
// given, or returns the documents.
package clidoc
