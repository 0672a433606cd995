package steps

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cairn-cm/cairn/journal"
)

// groupaddKind runs GROUPADD.
//
// Syntax: GROUPADD NAME [gid=] [system=true]
//
// Forward: create the group with groupadd (a system group with system),
// or set its gid with groupmod; system counts only when the group is
// created.
//
// Inverse: restore the original image: a group cairn created is deleted;
// one that existed gets back its gid and its group and gshadow lines, its
// member list excepted (the users' own inverses set that).
//
// Check: the group exists, with that gid if one is given.
//
// Example: GROUPADD deploy gid=2000
type groupaddKind struct{ groupFamily }

var (
	_ Kind    = groupaddKind{}
	_ Checker = groupaddKind{}
	_ Imager  = groupaddKind{}
)

func (groupaddKind) Op() string { return journal.OpGroupadd }

func groupSpec(s *journal.Step) GroupSpec {
	return GroupSpec{Name: s.Object(), GID: s.Get("gid"), System: s.Get("system") == "true"}
}

func (groupaddKind) Forward(_ context.Context, env *Env, s *journal.Step) error {
	acc, err := accounts(env, s)
	if err != nil {
		return err
	}
	defer env.InvalidateIDs()
	spec := groupSpec(s)
	g, err := acc.Group(spec.Name)
	if err != nil {
		return err
	}
	if g == nil {
		err = acc.AddGroup(spec)
	} else {
		err = acc.ModifyGroup(spec)
	}
	return err
}

func (groupaddKind) Check(_ context.Context, env *Env, s *journal.Step) (string, error) {
	acc, err := accounts(env, s)
	if err != nil {
		return "", err
	}
	g, err := acc.Group(s.Object())
	if err != nil || g == nil {
		return "absent, want a group", err
	}
	if want := s.Get("gid"); want != "" && strconv.Itoa(g.GID) != want {
		return fmt.Sprintf("gid %d, want %s", g.GID, want), nil
	}
	return "", nil
}
