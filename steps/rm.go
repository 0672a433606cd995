package steps

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"

	"github.com/cairn-cm/cairn/journal"
)

// rmKind runs RM.
//
// Syntax: RM PATH
//
// Forward: make PATH absent: a file, a link or an empty directory; a
// directory with entries is an error.
//
// Inverse: restore the original image (nothing, if PATH was absent).
//
// Check: PATH is absent.
//
// Example: RM /etc/cron.d/old-job
type rmKind struct{ pathFamily }

var (
	_ Kind    = rmKind{}
	_ Checker = rmKind{}
	_ Imager  = rmKind{}

	_ pathKind = rmKind{}
)

func (rmKind) Op() string { return journal.OpRm }

func (k rmKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return forwardFresh(ctx, env, k, s)
}

func (rmKind) forwardAt(_ context.Context, _ *Env, s *journal.Step, l *loc) error {
	p := s.Object()
	st, err := lstatAt(l)
	if err != nil || !st.exists {
		return err
	}
	err = l.Remove()
	if errors.Is(err, syscall.ENOTEMPTY) {
		names, _ := l.ReadDirNames()
		sort.Strings(names)
		return fmt.Errorf("rm %s: the directory holds entries (%s)", p, strings.Join(names, ", "))
	}
	return err
}

func (rmKind) Check(_ context.Context, env *Env, s *journal.Step) (string, error) {
	st, err := lstatPath(env, s.Object())
	if err != nil {
		return "", err
	}
	if st.exists {
		return "present (a " + st.typ + "), want absent", nil
	}
	return "", nil
}
