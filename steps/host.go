package steps

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
