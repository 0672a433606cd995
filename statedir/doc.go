// Package statedir owns cairn's state directory as a place: it finds it
// (beneath the root, or where --state says), checks that it and the way to
// it are cairn's own, makes it, locks it for one process, and keeps the
// files that are not a move's: the root it belongs to, the short history
// of runs, and the agent's records.
//
// What a move writes there (the applied journal, the intent log, the blob
// store) is package steps'; this package knows their names only to tell a
// state that holds something from an empty one, and gives steps OpenFile
// and ReadFile, which open an entry only if it is what cairn makes there
// (a regular file, never through a link). Both steps and the agent use a
// Dir through steps.Applier, which holds it open, and so its lock, for as
// long as it lives.
package statedir
