package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-cm/cairn/blobstore"
)

// Blobs receives the content of COPY - steps (inline content, rendered
// templates, what plugins write) by sha256. The command line gives a
// BlobDir; the agent gives its state's blob store (blobstore.Store), so that
// rendered content goes straight into it.
type Blobs interface {
	// PutBlob stores data, whose sha256 is sum, unless it is there already.
	PutBlob(sum string, data []byte) error
}

// BlobDir is a directory of blobs, one file per sha256 named by it: the
// compiler's blob directory (DIR/.cairn/blobs by default), which `cairn
// journal apply --blobs` reads.
type BlobDir string

var _ Blobs = BlobDir("")

// PutBlob writes data to the directory as a file named by its sha256,
// atomically (a temporary file renamed into place), unless it is there
// already. The directory is made if missing.
func (d BlobDir) PutBlob(sum string, data []byte) error {
	dir := string(d)
	name := filepath.Join(dir, sum)
	if _, err := os.Lstat(name); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("blob directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".blob-*")
	if err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), name)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write blob %s: %w", sum, werr)
	}
	return nil
}

// putBlob gives data, whose sha256 is sum, to Options.Blobs, if set.
func (c *compiler) putBlob(sum string, data []byte) error {
	if c.opts.Blobs == nil {
		return nil
	}
	return c.opts.Blobs.PutBlob(sum, data)
}

// collectPluginBlobs puts what a plugin wrote into its temporary blob
// directory (a file named by each sha256, the files of a BlobDir) into
// Options.Blobs, and empties the directory. A file whose name is no sha256
// is ignored, as the applier would never look for it; one whose content
// hashes otherwise is an error, which the applier would find too.
func (c *compiler) collectPluginBlobs(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("blobs the plugin wrote: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := filepath.Join(dir, e.Name())
		if !blobstore.ValidSum(e.Name()) || !e.Type().IsRegular() {
			os.RemoveAll(name)
			continue
		}
		data, err := os.ReadFile(name)
		os.Remove(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("blob %s the plugin wrote: %w", e.Name(), unwrapPath(err)))
			continue
		}
		h := sha256.Sum256(data)
		if got := hex.EncodeToString(h[:]); got != e.Name() {
			errs = append(errs, fmt.Errorf("the plugin wrote blob %s whose content hashes to %s", e.Name(), got))
			continue
		}
		if err := c.putBlob(e.Name(), data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
