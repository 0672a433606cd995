package selfexe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procExe is the link to the running program.
const procExe = "/proc/self/exe"

// Executable is the file the process runs, as it was when Open recorded
// it. Its methods may be called from several goroutines.
type Executable struct {
	path    string
	running string // where the running program is read: procExe

	mu   sync.Mutex
	id   identity // of the file at path that runs, or holds the same program
	self []byte   // SHA-256 of the running program, once computed
	// other is the identity of the last file found to hold another
	// program, so that a replacement that does not run (the agent keeps
	// the old program) is not read again at every run.
	other identity
}

// identity is what tells two files apart without reading them.
type identity struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// Open records the executable of the running process: its path (where
// /proc/self/exe leads now) and that file's identity. It fails when the
// file was already replaced or removed (the path that /proc/self/exe shows
// ends in " (deleted)").
func Open() (*Executable, error) {
	path, err := os.Readlink(procExe)
	if err != nil {
		return nil, fmt.Errorf("the running executable: %w", err)
	}
	if strings.HasSuffix(path, " (deleted)") {
		return nil, fmt.Errorf("the running executable %s: already replaced or removed", path)
	}
	return openAt(path, procExe)
}

// OpenPath records the file at path as the running program's executable,
// as Open does with the one /proc/self/exe leads to: for a process started
// through another name of the file (a hard link, a copy at a known place).
// Replaced compares the file at path with the program that runs.
func OpenPath(path string) (*Executable, error) { return openAt(path, procExe) }

// openAt records the file at path as the one that runs, whose program
// running reads.
func openAt(path, running string) (*Executable, error) {
	id, err := stat(path)
	if err != nil {
		return nil, fmt.Errorf("the running executable: %w", err)
	}
	return &Executable{path: path, running: running, id: id}, nil
}

// Path returns the path of the executable, which Exec and Run execute.
func (e *Executable) Path() string { return e.path }

// Replaced says whether the file at Path now holds another program than
// the one that runs (see the package documentation for how it tells).
func (e *Executable) Replaced() (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, err := stat(e.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("the executable: %w", err)
	}
	if id == e.id {
		return false, nil
	}
	if id == e.other {
		return true, nil
	}
	if e.self == nil {
		if e.self, err = hashFile(e.running); err != nil {
			return false, fmt.Errorf("the running program: %w", err)
		}
	}
	now, err := hashFile(e.path)
	if err != nil {
		return false, fmt.Errorf("the executable: %w", err)
	}
	if bytes.Equal(now, e.self) {
		// The same program in another file: it stands for the running
		// one from now on, so that it is not read again.
		e.id = id
		return false, nil
	}
	e.other = id
	return true, nil
}

// Run runs the file at Path with args (not argv[0]), under ctx, and
// returns what it printed on stdout, trimmed. An exit other than 0 is an
// error that carries its stderr.
func (e *Executable) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", e.path, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Exec replaces the process with the file at Path (execve(2)): the same
// PID, argv and env as given, the open files that are not close-on-exec
// (Go opens every file close-on-exec; stdin, stdout and stderr stay). It
// returns only when the exec failed, and the process then goes on as it
// was.
func (e *Executable) Exec(argv, env []string) error {
	if err := syscall.Exec(e.path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", e.path, err)
	}
	return nil // not reached
}

// stat returns the identity of the file at path, following links.
func stat(path string) (identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return identity{}, err
	}
	id := identity{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id, nil
}

// hashFile returns the SHA-256 of a file's contents.
func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err // names the file
	}
	return h.Sum(nil), nil
}
