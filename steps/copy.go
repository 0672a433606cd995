package steps

import (
	"context"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// copyKind runs COPY.
//
// Syntax: COPY SRC PATH sha256=HEX [mode=0644] [owner=root] [group=root]
//
// Forward: write the content whose sha256 is HEX to PATH atomically (a temp
// file in the same directory, renamed over PATH), with that mode and owner;
// where the op's undo image says nothing was at PATH, the file is written
// without a name (O_TMPFILE) and then linked at PATH, as atomically.
// The content comes from the state's blob store, where the applier put it
// from SRC (relative to the source root) or, for SRC "-", from the blob
// directory, after checking its hash. Blocks of zeros are left as holes. A
// file that already holds the content gets the mode and owner in place,
// unless its inode has other names (a hard link): then it is replaced too.
//
// Inverse: restore the original image (content, mode, owner, extended
// attributes and mtime). If the file holds content someone wrote by hand
// since, that content is kept in the state first (journal kept).
//
// Check: a regular file with that content hash, mode and owner.
//
// Example: COPY files/motd /etc/motd sha256=9f86d0… mode=0644
type copyKind struct{ pathFamily }

var (
	_ Kind    = copyKind{}
	_ Checker = copyKind{}
	_ Imager  = copyKind{}

	_ pathKind = copyKind{}
)

func (copyKind) Op() string { return journal.OpCopy }

func (k copyKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return forwardFresh(ctx, env, k, s)
}

func (copyKind) forwardAt(_ context.Context, env *Env, s *journal.Step, l *loc) error {
	uid, gid, err := ownerOf(env, s)
	if err != nil {
		return err
	}
	return ensureFile(env, l, s.Get("sha256"), journal.ParseMode(s.Get("mode")), uid, gid)
}

func (copyKind) Check(_ context.Context, env *Env, s *journal.Step) (string, error) {
	st, sum, err := hashPathCached(env, s.Object())
	if err != nil {
		return "", err
	}
	if !st.exists {
		return "absent, want a file", nil
	}
	if st.typ != TypeFile {
		return "is a " + st.typ + ", want a file", nil
	}
	uid, gid, err := ownerOf(env, s)
	if err != nil {
		return "", err
	}
	var d []string
	if want := s.Get("sha256"); sum != want {
		d = append(d, "content sha256 "+sum[:12]+"…, want "+want[:12]+"…")
	}
	if om := describeOwnerMode(st, journal.ParseMode(s.Get("mode")), uid, gid, true); om != "" {
		d = append(d, om)
	}
	return strings.Join(d, "; "), nil
}
