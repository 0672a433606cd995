package steps

import "context"

// Host holds the drivers of the objects that are not files: users and
// groups, packages, units, and outside tools. steps defines what it needs
// of each; the debian and systemd packages implement them, and the command
// line plugs them in. Any may be nil: a step that needs a missing driver
// fails with an error that says so, before anything changes.
type Host struct {
	Accounts Accounts
	Packages Packages
	Units    Units
	Tools    Tools
}

// Accounts is what steps need of the shadow tools (debian implements it).
type Accounts interface{}

// Packages is what steps need of the package manager (debian implements it).
type Packages interface{}

// Units is what steps need of a unit manager (systemd implements it).
type Units interface {
	// CheckActive returns nil if the unit is active, else why not.
	CheckActive(ctx context.Context, unit string) error
}

// Tools runs the outside tools that KUBECTL-APPLY and PLAYBOOK drive.
type Tools interface{}
