package steps

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/cairn-cm/cairn/internal/atomicfile"
)

// Blobs is a content store of files by sha256: every blob a COPY applies and
// every before-image's content, so that an inverse or a rollback never needs
// the source again. A blob is written under a temporary name and renamed
// into place, so a blob that exists is whole.
type Blobs struct {
	dir   string
	dirty atomic.Bool // a blob was written since the last sync
}

// OpenBlobs opens (creating if needed) the store in dir.
func OpenBlobs(dir string) (*Blobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return &Blobs{dir: dir}, nil
}

// Path returns the file that holds the blob with hash sum.
func (b *Blobs) Path(sum string) string {
	return filepath.Join(b.dir, sum[:2], sum[2:])
}

// Has reports whether the store holds the blob.
func (b *Blobs) Has(sum string) bool {
	_, err := os.Lstat(b.Path(sum))
	return err == nil
}

// Open opens a blob for reading.
func (b *Blobs) Open(sum string) (*os.File, error) {
	f, err := os.Open(b.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is not in the store %s", sum, b.dir)
	}
	return f, err
}

// Put copies r into the store and returns its sha256. If want is not empty
// and the content hashes otherwise, nothing is stored and the error says so.
func (b *Blobs) Put(r io.Reader, want string) (string, error) {
	tmp, err := os.CreateTemp(b.dir, ".blob.tmp-*")
	if err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err := copyBuffer(io.MultiWriter(tmp, h), r); err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return sum, &HashMismatchError{Got: sum, Want: want}
	}
	if b.Has(sum) {
		return sum, nil
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	dst := b.Path(sum)
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("blob store: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	tmp = nil
	b.dirty.Store(true)
	return sum, nil
}

// PutFile stores the file at name, checking it against want if not empty.
func (b *Blobs) PutFile(name, want string) (string, error) {
	if want != "" && b.Has(want) {
		return want, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return b.Put(f, want)
}

// Clean removes temporary files that a process killed mid-write left.
func (b *Blobs) Clean() {
	entries, _ := os.ReadDir(b.dir)
	for _, e := range entries {
		if atomicfile.IsTemp(e.Name()) || filepathMatch(".blob.tmp-*", e.Name()) {
			os.Remove(filepath.Join(b.dir, e.Name()))
		}
	}
}

func filepathMatch(pattern, name string) bool {
	m, _ := filepath.Match(pattern, name)
	return m
}

// HashMismatchError says that content does not hash to what the journal
// says.
type HashMismatchError struct{ Got, Want string }

func (e *HashMismatchError) Error() string {
	return "sha256 mismatch: content has " + e.Got + ", journal says " + e.Want
}

// HashReader returns the sha256 of everything r yields.
func HashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := copyBuffer(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyBuffer copies with a pooled buffer, for the many small files of a
// journal.
func copyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	return io.CopyBuffer(dst, src, *buf)
}
