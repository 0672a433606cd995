package cli

import (
	"os"

	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// hostDrivers plugs the debian and systemd drivers into steps for a root:
// the one place that decides how cairn touches users, packages and units.
func hostDrivers(root *rootfs.Root) steps.Host {
	h := steps.Host{}
	h.Packages = debian.NewApt(root.Path())
	h.Accounts = accounts{debian.NewAccounts(root.Path())}
	// The running systemd over D-Bus when it is PID 1 and the root is /,
	// else systemctl --root (enable and disable only).
	h.Units = systemd.New(root.Path())
	// kubectl and ansible-playbook get cairn's environment (KUBECONFIG
	// included); CAIRN_KUBE_CONTEXT picks a kubectl context (docs/tools.md).
	h.Tools = debian.Tools{Context: os.Getenv("CAIRN_KUBE_CONTEXT")}
	return h
}

// accounts adapts debian's accounts driver to steps.Accounts: the entry
// types of the two packages have the same fields (debian imports nothing
// of ours), so each converts into the other.
type accounts struct{ d *debian.Accounts }

func (a accounts) User(name string) (*steps.User, error) {
	u, err := a.d.User(name)
	return (*steps.User)(u), err
}

func (a accounts) Group(name string) (*steps.Group, error) {
	g, err := a.d.Group(name)
	return (*steps.Group)(g), err
}

func (a accounts) AddUser(s steps.UserSpec) error    { return a.d.AddUser(debian.UserSpec(s)) }
func (a accounts) ModifyUser(s steps.UserSpec) error { return a.d.ModifyUser(debian.UserSpec(s)) }
func (a accounts) DeleteUser(name string, removeHome bool) error {
	return a.d.DeleteUser(name, removeHome)
}
func (a accounts) RestoreUser(u steps.User) error      { return a.d.RestoreUser(debian.User(u)) }
func (a accounts) AddGroup(s steps.GroupSpec) error    { return a.d.AddGroup(debian.GroupSpec(s)) }
func (a accounts) ModifyGroup(s steps.GroupSpec) error { return a.d.ModifyGroup(debian.GroupSpec(s)) }
func (a accounts) DeleteGroup(name string) error       { return a.d.DeleteGroup(name) }
func (a accounts) RestoreGroup(g steps.Group) error    { return a.d.RestoreGroup(debian.Group(g)) }
