package steps

import (
	"context"
	"strconv"

	"github.com/cairn-cm/cairn/journal"
)

// symlinkKind runs SYMLINK.
//
// Syntax: SYMLINK TARGET PATH
//
// Forward: make PATH a link to TARGET, atomically (a link made under a temp
// name and renamed over PATH). TARGET is stored exactly as written. An
// empty directory at PATH is replaced; one with entries is an error.
//
// Inverse: restore the original image.
//
// Check: PATH is a link that points to TARGET.
//
// Example: SYMLINK ../sites-available/web /etc/nginx/sites-enabled/web
type symlinkKind struct{ pathFamily }

var (
	_ Kind    = symlinkKind{}
	_ Checker = symlinkKind{}
	_ Imager  = symlinkKind{}

	_ pathKind = symlinkKind{}
)

func (symlinkKind) Op() string { return journal.OpSymlink }

func (k symlinkKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return forwardFresh(ctx, env, k, s)
}

func (symlinkKind) forwardAt(_ context.Context, env *Env, s *journal.Step, l *loc) error {
	return ensureSymlink(env, l, s.Args[0], 0, 0)
}

func (symlinkKind) Check(_ context.Context, env *Env, s *journal.Step) (string, error) {
	p := s.Object()
	st, err := lstatPath(env, p)
	if err != nil {
		return "", err
	}
	if !st.exists {
		return "absent, want a link", nil
	}
	if st.typ != TypeSymlink {
		return "is a " + st.typ + ", want a link", nil
	}
	target, err := env.Root.Readlink(p)
	if err != nil {
		return "", err
	}
	if target != s.Args[0] {
		return "points to " + strconv.Quote(target) + ", want " + strconv.Quote(s.Args[0]), nil
	}
	return "", nil
}
