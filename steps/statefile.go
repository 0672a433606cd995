package steps

import (
	"github.com/cairn-cm/cairn/statedir"
)

// errNotCairns is the error for an entry of the state directory that cairn
// never makes there.
var errNotCairns = statedir.ErrNotCairns

// readStateFile reads the whole of name, a file of the state directory,
// only if it is what cairn makes there (statedir.ReadFile).
func readStateFile(name string) ([]byte, error) { return statedir.ReadFile(name) }
