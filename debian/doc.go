// Package debian holds what cairn knows of Debian hosts and the drivers
// behind the step kinds that are not files: the host's facts (release,
// codename, architecture, host name), users and groups through the shadow
// tools (accounts.go), packages through apt-get and dpkg-query (apt.go), and
// the outside tools KUBECTL-APPLY and PLAYBOOK run (tools.go). It imports
// nothing of cairn's: steps defines the interfaces, and the command line
// plugs these drivers into them.
package debian
