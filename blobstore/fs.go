package blobstore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/cairn-cm/cairn/statedir"
)

// FS returns the store as a file system whose files are its blobs, each
// named by its sha256 (mode 0444; there are no directories to list): what a
// move reads the content of COPY - steps from (steps.Move.Blobs), so that
// another store than the state's can be a move's blob source. Reading
// checks the hash, as Open does.
func (b *Store) FS() fs.FS { return storeFS{b} }

type storeFS struct{ b *Store }

func (s storeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	size, err := s.b.size(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	r, err := s.b.Open(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &blobFile{r: r, info: blobInfo{name: name, size: size}}, nil
}

// size returns the size of blob sum, fs.ErrNotExist if the store has none.
func (b *Store) size(sum string) (int64, error) {
	key, ok := parseSum(sum)
	if !ok {
		return 0, fs.ErrNotExist
	}
	if err := b.load(); err != nil {
		return 0, err
	}
	b.mu.RLock()
	loc, packed := b.idx.get(key)
	fan := b.fanout[key[0]]
	b.mu.RUnlock()
	if packed {
		return int64(loc.size), nil
	}
	if !fan {
		return 0, fs.ErrNotExist
	}
	fi, err := os.Lstat(b.loosePath(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fs.ErrNotExist
	} else if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, statedir.ErrNotCairns
	}
	return fi.Size(), nil
}

// blobFile is a blob opened through FS.
type blobFile struct {
	r    io.ReadCloser
	info blobInfo
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *blobFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *blobFile) Close() error               { return f.r.Close() }

// blobInfo describes a blob of FS.
type blobInfo struct {
	name string
	size int64
}

func (i blobInfo) Name() string       { return i.name }
func (i blobInfo) Size() int64        { return i.size }
func (i blobInfo) Mode() fs.FileMode  { return 0o444 }
func (i blobInfo) ModTime() time.Time { return time.Time{} }
func (i blobInfo) IsDir() bool        { return false }
func (i blobInfo) Sys() any           { return nil }
