// Package docs holds cairn's documentation, Markdown pages for people. It
// has no code of its own: its test runs every command of the tutorial
// (tutorial.md) where the tutorial says it runs, on this machine as the
// reader's workstation and in two systemd test hosts (internal/testhost) as
// the reader's hosts, and checks that each prints what the tutorial shows.
package docs
