// Package treefs holds the rules every file system of a cairn
// configuration tree follows, whether it is a directory on disk or a git
// revision (agent/gitfs):
//
//   - a symbolic link is followed only while it stays inside the tree: a
//     path through a link that is absolute or climbs out of the tree fails
//     with ErrLinkEscapes ("symbolic link leads out of the tree"), and one
//     through more than MaxLinks links with ErrLinkLoop;
//   - only regular files are read: a FIFO, a device or a socket is refused
//     with ErrNotRegular before a byte is read, and without blocking.
//
// Dir is the tree of a directory on disk; agent/gitfs returns the same
// errors for a git revision, so that both refuse the same files with the
// same message.
package treefs

import "errors"

// MaxLinks is how many symbolic links one lookup follows, as in the kernel.
const MaxLinks = 40

// The errors of a path the tree refuses.
var (
	// ErrLinkEscapes is the error of a path through a symbolic link that
	// is absolute or climbs out of the tree.
	ErrLinkEscapes = errors.New("symbolic link leads out of the tree")
	// ErrLinkLoop is the error of a path through more than MaxLinks links.
	ErrLinkLoop = errors.New("too many levels of symbolic links")
	// ErrNotRegular is the error of an input that is no regular file (a
	// FIFO, a device, a socket; a directory where a file is read).
	ErrNotRegular = errors.New("not a regular file")
)
