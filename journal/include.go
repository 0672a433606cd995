package journal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ReadFunc reads a journal file by name; os.ReadFile is one. The bytes it
// returns belong to the parser from then on, which keeps substrings of them.
type ReadFunc func(name string) ([]byte, error)

// LoadFile parses the journal at name and splices in its INCLUDEs
// recursively, reading files with os.ReadFile.
func LoadFile(name string) (*Journal, error) {
	return Load(name, os.ReadFile)
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
	e := expander{read: read, stack: []string{filepath.Clean(name)}}
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
		data, err := e.read(name)
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
