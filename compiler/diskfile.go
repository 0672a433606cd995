package compiler

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"

	"github.com/cairn-cm/cairn/internal/treefs"
)

// openSource opens a file of the configuration for reading and returns it
// with its size. Only a regular file opens: anything else (a FIFO, a
// device, a socket, a directory) is ErrNotRegular, found without blocking.
//
// A configuration directory on disk is read through treefs.Dir, whose
// files read with plain system calls.
func (c *compiler) openSource(p string) (io.ReadCloser, int64, error) {
	if c.dir != nil {
		f, err := c.dir.OpenFile(p)
		if err != nil {
			return nil, 0, err
		}
		return f, f.Size(), nil
	}
	f, err := c.fsys.Open(p)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: p, Err: treefs.ErrNotRegular}
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, info.Size(), nil
}

// readInput reads a file of the configuration into memory: a *.cairn file,
// a template, the argument of file(). It must be a regular file of at most
// MaxInputSize bytes; the error names the file and says what is wrong with
// it, never what it holds.
func (c *compiler) readInput(p string) ([]byte, error) {
	if c.dir == nil {
		// A file system that reads whole files on Open (agent/gitfs) is
		// asked the size first.
		if info, err := fs.Stat(c.fsys, p); err != nil {
			return nil, newInputError(p, err)
		} else if info.Mode().IsRegular() && info.Size() > MaxInputSize {
			return nil, tooLarge(p, info.Size())
		}
	}
	f, size, err := c.openSource(p)
	if err != nil {
		return nil, newInputError(p, err)
	}
	defer f.Close()
	if size > MaxInputSize {
		return nil, tooLarge(p, size)
	}
	data, err := treefs.ReadAll(io.LimitReader(f, MaxInputSize+1), size)
	if err != nil {
		return nil, newInputError(p, err)
	}
	if len(data) > MaxInputSize { // it grew meanwhile
		return nil, tooLarge(p, int64(len(data)))
	}
	return data, nil
}

// inputError is why a configuration file could not be read: "P: reason".
// Its reason never quotes the file.
type inputError struct {
	path   string
	reason error
}

func (e *inputError) Error() string { return e.path + ": " + e.reason.Error() }
func (e *inputError) Unwrap() error { return e.reason }

// newInputError says why the configuration file p could not be read.
func newInputError(p string, err error) error {
	if missing(err) {
		return &inputError{p, errNoFile{}}
	}
	return &inputError{p, unwrapPath(err)}
}

// missing reports whether err says that a path names nothing: it does not
// exist, or it goes through a regular file (files/a/x where files/a is a
// file: ENOTDIR on disk), which a git tree (agent/gitfs) reports as
// missing too, so that a configuration is refused alike from both.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// errNoFile is a file the configuration does not hold.
type errNoFile struct{}

func (errNoFile) Error() string        { return "no such file in the configuration" }
func (errNoFile) Is(target error) bool { return target == fs.ErrNotExist }

func tooLarge(p string, size int64) error {
	return &inputError{p, fmt.Errorf("%d bytes, more than the %s a configuration file may hold", size, sizeText(MaxInputSize))}
}
