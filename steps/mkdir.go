package steps

import (
	"context"

	"github.com/cairn-cm/cairn/journal"
)

// mkdirKind runs MKDIR.
//
// Syntax: MKDIR PATH [mode=0755] [owner=root] [group=root]
//
// Forward: make PATH a directory with that mode and owner; its parent must
// exist. A file or link at PATH is replaced; an existing directory keeps its
// entries and gets the mode and owner.
//
// Inverse: restore the original image; a directory cairn made that now holds
// entries no step manages is left in place with a warning naming them.
//
// Check: a directory with that mode and owner.
//
// Example: MKDIR /srv/www mode=0750 owner=www-data
type mkdirKind struct{ pathFamily }

var (
	_ Kind    = mkdirKind{}
	_ Checker = mkdirKind{}
	_ Imager  = mkdirKind{}

	_ pathKind = mkdirKind{}
)

func (mkdirKind) Op() string { return journal.OpMkdir }

func (k mkdirKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return forwardFresh(ctx, env, k, s)
}

func (mkdirKind) forwardAt(_ context.Context, env *Env, s *journal.Step, l *loc) error {
	uid, gid, err := ownerOf(env, s)
	if err != nil {
		return err
	}
	return ensureDir(env, l, journal.ParseMode(s.Get("mode")), uid, gid)
}

func (mkdirKind) Check(_ context.Context, env *Env, s *journal.Step) (string, error) {
	st, err := lstatChecked(env, s.Object())
	if err != nil {
		return "", err
	}
	if !st.exists {
		return "absent, want a directory", nil
	}
	if st.typ != TypeDir {
		return "is a " + st.typ + ", want a directory", nil
	}
	uid, gid, err := ownerOf(env, s)
	if err != nil {
		return "", err
	}
	return describeOwnerMode(st, journal.ParseMode(s.Get("mode")), uid, gid, true), nil
}
