package steps

import (
	"io"

	"github.com/cairn-cm/cairn/blobstore"
)

// Blobs is the state's content store (package blobstore).
type Blobs = blobstore.Store

// HashMismatchError says that content does not hash to what the journal
// says (blobstore.HashMismatchError).
type HashMismatchError = blobstore.HashMismatchError

// MaxSourceSize is the most one input file (a COPY source, the blob of a
// COPY -, a PLAYBOOK or a file of a KUBECTL-APPLY directory) may hold.
const MaxSourceSize = blobstore.MaxSourceSize

// ErrNotRegular is the error of an input that is no regular file: a FIFO, a
// device, a socket or a directory. It is refused before a byte is read.
var ErrNotRegular = blobstore.ErrNotRegular

// OpenBlobs opens (creating if needed) the blob store in dir.
func OpenBlobs(dir string) (*Blobs, error) { return blobstore.Open(dir) }

// HashReader returns the sha256 of everything r yields.
func HashReader(r io.Reader) (string, error) { return blobstore.HashReader(r) }
