package compiler

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"syscall"
)

// openSource opens a file of the repository for reading. When the
// configuration is a directory on disk (Options.Dir), it opens the file with
// plain system calls: os.Open registers every file with the runtime's poller
// (four fcntl and a failing epoll_ctl each), which for thousands of small
// source files costs more than reading them. fsys and Dir name the same
// directory, so both ways read the same bytes.
func (c *compiler) openSource(p string) (io.ReadCloser, error) {
	if c.opts.Dir == "" {
		return c.fsys.Open(p)
	}
	name := filepath.Join(c.opts.Dir, filepath.FromSlash(p))
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return &diskFile{fd: fd, path: p}, nil
	}
}

// diskFile reads a file through its descriptor, blocking, as regular files
// do anyway.
type diskFile struct {
	fd   int
	path string
}

func (f *diskFile) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(f.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *diskFile) Close() error { return syscall.Close(f.fd) }
