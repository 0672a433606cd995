package steps

import (
	"context"

	"github.com/cairn-cm/cairn/journal"
)

// useraddKind runs USERADD.
//
// Syntax: USERADD NAME [uid=] [gid=] [home=] [shell=] [groups=a,b] [system=true]
//
// Forward: create the user (with useradd: a group of its name unless gid
// is given, a home directory from /etc/skel unless it is a system account),
// or bring the attributes given to these with usermod: groups is the whole
// list of supplementary groups; a home that changes moves along when the
// new one does not exist yet. system counts only when the user is created.
//
// Inverse: restore the original image: a user cairn created is deleted,
// with its home directory only if cairn created that too, and its group of
// the same name unless that was there before; a user that existed gets back
// its uid, gid, GECOS, home, shell, supplementary groups, and its passwd
// and shadow lines byte for byte.
//
// Check: the user exists with the attributes given.
//
// Example: USERADD deploy shell=/bin/bash groups=www-data,ssh
type useraddKind struct{ userFamily }

var (
	_ Kind    = useraddKind{}
	_ Checker = useraddKind{}
	_ Imager  = useraddKind{}
)

func (useraddKind) Op() string { return journal.OpUseradd }

func (useraddKind) Forward(_ context.Context, env *Env, s *journal.Step) error {
	acc, err := accounts(env, s)
	if err != nil {
		return err
	}
	defer env.InvalidateIDs()
	spec := userSpec(s)
	u, err := acc.User(spec.Name)
	if err != nil {
		return err
	}
	if u == nil {
		err = acc.AddUser(spec)
	} else {
		err = acc.ModifyUser(spec)
	}
	return err
}

func (useraddKind) Check(_ context.Context, env *Env, s *journal.Step) (string, error) {
	acc, err := accounts(env, s)
	if err != nil {
		return "", err
	}
	u, err := acc.User(s.Object())
	if err != nil || u == nil {
		return "absent, want a user", err
	}
	return describeUser(u, userSpec(s)), nil
}
