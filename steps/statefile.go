package steps

import (
	"os"

	"github.com/cairn-cm/cairn/statedir"
)

// errNotCairns is the error for an entry of the state directory that cairn
// never makes there.
var errNotCairns = statedir.ErrNotCairns

// openStateFile opens name, a file of the state directory or of its blob
// store, only if it is what cairn makes there (statedir.OpenFile).
func openStateFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return statedir.OpenFile(name, flag, perm)
}

// readStateFile reads the whole of name, a file of the state directory, as
// openStateFile opens it.
func readStateFile(name string) ([]byte, error) { return statedir.ReadFile(name) }
