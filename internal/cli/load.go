package cli

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// loadJournal parses a journal file with its INCLUDEs expanded; any error is
// bad input. The files are mapped (mapFile): for a command that only reads
// them (journal diff); one that writes the state reads them
// (loadJournalData).
func loadJournal(name string) (*journal.Journal, error) {
	j, err := journal.Load(name, mapFile)
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: fileError(err)}
	}
	return j, nil
}

// loadJournalData is loadJournal for a command that writes the state from
// the journal (journal apply): every file is read into the process's own
// memory (journal.ReadFile), never mapped. The steps keep substrings of
// the bytes, and a mapping's pages show a write to the file while the
// command runs: the steps would change after they were checked, planned
// and hashed, and applied.json record what was not applied. data, when
// not nil, is the bytes of name already read (readJournal), which stand
// for its first read.
func loadJournalData(name string, data []byte) (*journal.Journal, error) {
	read := func(n string) ([]byte, error) {
		if d := data; d != nil && n == name {
			data = nil
			return d, nil
		}
		return journal.ReadFile(n)
	}
	j, err := journal.Load(name, read)
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

// openState opens the state under the flags for a command that only reads
// it (drift, show, kept): the lock is waited for (lockWait), and an
// interrupted move is recovered first, like every command that opens the
// state. close releases the lock and the root.
func (f *stateFlags) openState(e *env) (a *steps.Applier, close func(), err error) {
	root, stateDir, err := f.open()
	if err != nil {
		return nil, nil, err
	}
	a, err = steps.Open(e.ctx, steps.Options{Root: root, StateDir: stateDir, Wait: lockWait, Log: e.log, Output: e.stderr, Host: hostDrivers(root)})
	if err != nil {
		root.Close()
		return nil, nil, err
	}
	return a, func() { a.Close(); root.Close() }, nil
}
