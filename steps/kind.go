package steps

import (
	"context"
	"sort"

	"github.com/cairn-cm/cairn/journal"
)

// Kind is the behaviour of one journal op. Forward brings the host to the
// step's state and is idempotent.
//
// The ctx an op gets, forward or inverse, is done only when the move is
// killed (Options.Kill), never when it is merely stopped: an op honours it
// by ending at once, killing any process it runs (with its process group),
// and returning an error. The ops of the package family, and every undo,
// get a ctx that is never done (the package doc, "Stopping a move").
type Kind interface {
	Op() string
	Forward(ctx context.Context, env *Env, s *journal.Step) error
}

// Checker is a kind with a live-state check: Check returns how the host
// differs from the step, or "" when it matches (§7).
type Checker interface {
	Check(ctx context.Context, env *Env, s *journal.Step) (drift string, err error)
}

// Imager is a kind that manages an object whose state can be captured and
// restored. Its inverse restores the original image (§6). All kinds of one
// identity family share one Imager, since an identity may pass through
// several kinds (a path is a directory, then a file).
type Imager interface {
	Capture(ctx context.Context, env *Env, s *journal.Step) (Image, error)
	Restore(ctx context.Context, env *Env, s *journal.Step, img Image) error
}

// Inverter is a kind whose inverse is an action of its own rather than the
// restore of an image (EXEC's undo command, CHECK's nothing).
type Inverter interface {
	Inverse(ctx context.Context, env *Env, s *journal.Step) error
}

// kinds is the table of step kinds, sorted by op. A new kind is one row here
// and one file with its behaviour.
var kinds = []Kind{
	aptInstallKind{},
	checkKind{},
	copyKind{},
	execKind{},
	groupaddKind{},
	kubectlKind{},
	mkdirKind{},
	playbookKind{},
	rmKind{},
	symlinkKind{},
	systemdEnableKind{},
	systemdReloadKind{},
	systemdRestartKind{},
	systemdStartKind{},
	useraddKind{},
}

// LookupKind returns the kind that runs op, or nil if this build has none.
func LookupKind(op string) Kind {
	i := sort.Search(len(kinds), func(i int) bool { return kinds[i].Op() >= op })
	if i < len(kinds) && kinds[i].Op() == op {
		return kinds[i]
	}
	return nil
}

// Kinds returns the table of kinds, sorted by op.
func Kinds() []Kind { return kinds }
