package cli

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// loadJournal parses a journal file with its INCLUDEs expanded; any error is
// bad input.
func loadJournal(name string) (*journal.Journal, error) {
	j, err := journal.Load(name, mapFile)
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: fileError(err)}
	}
	return j, nil
}

// fileError shortens the error of a journal file that cannot be read to
// "FILE: reason", the file first like every other finding.
func fileError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// stateFlags are the flags of the commands that open a state directory.
type stateFlags struct {
	Root  string `help:"Resolve object paths beneath DIR as if it were /." default:"/" placeholder:"DIR"`
	State string `help:"The state directory (default: /var/lib/cairn beneath the root)." placeholder:"DIR"`
}

// open resolves the flags: the root, opened, and the state directory as a
// host path, or "" for the default, which steps resolves beneath the root.
func (f *stateFlags) open() (*rootfs.Root, string, error) {
	root, err := rootfs.Open(f.Root)
	if err != nil {
		return nil, "", &exitError{code: exitBadInput, err: err}
	}
	state := f.State
	if state == "" {
		return root, "", nil
	}
	if state, err = filepath.Abs(state); err != nil {
		root.Close()
		return nil, "", &exitError{code: exitBadInput, err: err}
	}
	return root, state, nil
}
