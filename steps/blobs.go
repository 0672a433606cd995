package steps

import (
	"io"
	"os"

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

// openBlobs opens the state's blob store in dir; without create, a missing
// dir is an empty store that is not written.
func openBlobs(dir string, create bool) (*Blobs, error) {
	if create {
		return blobstore.Open(dir)
	}
	return blobstore.OpenExisting(dir)
}

// HashReader returns the sha256 of everything r yields.
func HashReader(r io.Reader) (string, error) { return blobstore.HashReader(r) }

// copyBuffer copies with a pooled buffer (blobstore.CopyBuffer).
func copyBuffer(dst io.Writer, src io.Reader) (int64, error) { return blobstore.CopyBuffer(dst, src) }

// copySparse writes src into the empty file f, leaving blocks of zeros as
// holes (blobstore.CopySparse).
func copySparse(f *os.File, src io.Reader, also io.Writer) (int64, error) {
	return blobstore.CopySparse(f, src, also)
}
