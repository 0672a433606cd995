package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ReadFunc reads a journal file by name; os.ReadFile is one. The bytes it
// returns belong to the parser from then on, which keeps substrings of them.
type ReadFunc func(name string) ([]byte, error)

// The limits of loading one journal: a journal is an input the applier
// reads as root, and INCLUDE multiplies it (a file that includes the next
// twice, thirty deep, is a billion files).
const (
	// MaxIncludes is how many INCLUDE steps one Load expands.
	MaxIncludes = 10_000
	// MaxLoadSize is the most one Load reads, the journal and every file
	// it includes together.
	MaxLoadSize = 256 << 20
)

// ErrNotRegular is the error of a journal file that is no regular file (a
// FIFO, a device, a socket, a directory): it is never read.
var ErrNotRegular = errors.New("not a regular file")

// LoadFile parses the journal at name and splices in its INCLUDEs
// recursively, reading files with ReadFile.
func LoadFile(name string) (*Journal, error) {
	return Load(name, ReadFile)
}

// ReadFile reads a journal file: a regular file of at most MaxLoadSize
// bytes. Anything else is refused before a byte is read, and without
// waiting: a FIFO is never opened, a device never read.
func ReadFile(name string) ([]byte, error) {
	data, _, err := ReadFileInfo(name)
	return data, err
}

// ReadFileInfo is ReadFile that also returns what fstat said of the open
// file before it was read: the file the bytes are of.
func ReadFileInfo(name string) ([]byte, fs.FileInfo, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	// Non-blocking, should a FIFO have taken the file's place meanwhile.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	if info.Size() > MaxLoadSize {
		return nil, nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%d bytes, more than the %d MiB a journal may hold", info.Size(), MaxLoadSize>>20)}
	}
	data := make([]byte, 0, info.Size()+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, info, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if len(data) == cap(data) {
			if len(data) > MaxLoadSize {
				return nil, nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("more than the %d MiB a journal may hold", MaxLoadSize>>20)}
			}
			data = append(data, 0)[:len(data)]
		}
	}
}

// Load parses the journal at name and expands it with read. The result holds
// no INCLUDE step; each spliced step keeps the position in its own file. The
// error is an ErrorList naming every bad line, missing file and cycle.
func Load(name string, read ReadFunc) (*Journal, error) {
	data, err := read(name)
	if err != nil {
		return nil, err
	}
	// The buffer is ours: parse it in place.
	top, err := parseText(name, bytesToString(data))
	errs := Findings(err)
	if !hasInclude(top.Steps) {
		if len(errs) > 0 {
			return top, errs
		}
		return top, nil
	}
	e := expander{read: read, stack: []string{filepath.Clean(name)}, size: len(data)}
	out := &Journal{File: name, Steps: make([]Step, 0, len(top.Steps))}
	out.Steps = e.splice(out.Steps, top)
	errs = append(errs, e.errs...)
	if len(errs) > 0 {
		errs.Sort()
		return out, errs
	}
	return out, nil
}

type expander struct {
	read  ReadFunc
	stack []string // files being expanded, outermost first
	errs  ErrorList
	// includes and size are the INCLUDEs expanded and the bytes read so
	// far; stopped is set once one passed its limit.
	includes, size int
	stopped        bool
}

func (e *expander) splice(out []Step, j *Journal) []Step {
steps:
	for _, s := range j.Steps {
		if s.Op != OpInclude {
			out = append(out, s)
			continue
		}
		name := filepath.Join(filepath.Dir(j.File), filepath.FromSlash(s.Args[0]))
		clean := filepath.Clean(name)
		for i, f := range e.stack {
			if f == clean {
				cycle := append(append([]string{}, e.stack[i:]...), clean)
				e.errs = append(e.errs, &Error{Pos: s.Pos, Msg: "INCLUDE cycle: " + strings.Join(cycle, " -> ")})
				continue steps
			}
		}
		if e.stopped {
			continue
		}
		if e.includes++; e.includes > MaxIncludes {
			e.stopped = true
			e.errs = append(e.errs, &Error{Pos: s.Pos, Msg: fmt.Sprintf("INCLUDE %s: more than %d INCLUDEs expanded in one journal (does a file include another twice at every level?): expansion stops here", s.Args[0], MaxIncludes)})
			continue
		}
		data, err := e.read(name)
		if err == nil {
			if e.size += len(data); e.size > MaxLoadSize {
				e.stopped = true
				e.errs = append(e.errs, &Error{Pos: s.Pos, Msg: fmt.Sprintf("INCLUDE %s: the journal and the files it includes pass the %d MiB they may hold together: expansion stops here", s.Args[0], MaxLoadSize>>20)})
				continue
			}
		}
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			e.errs = append(e.errs, &Error{Pos: s.Pos, Msg: "INCLUDE " + s.Args[0] + ": cannot read " + name + ": " + err.Error()})
			continue
		}
		sub, err := parseText(name, bytesToString(data))
		e.errs = append(e.errs, Findings(err)...)
		e.stack = append(e.stack, clean)
		out = e.splice(out, sub)
		e.stack = e.stack[:len(e.stack)-1]
	}
	return out
}

func hasInclude(steps []Step) bool {
	for i := range steps {
		if steps[i].Op == OpInclude {
			return true
		}
	}
	return false
}
