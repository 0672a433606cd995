// Command deb generates the files of cairn's Debian package that are made
// from its command line, so that none can drift from it: the manual pages
// (one a command and sub-command), the bash and zsh completions, and
// /etc/default/cairn (every setting of cairn agent, commented out). build.sh,
// which make deb runs, calls it on the package's staged tree:
//
//	go run ./packaging/deb -root STAGE -version 1.2.3 -date 2026-12-03
//
// writes STAGE/usr/share/man/man1/*.1 (not compressed),
// STAGE/usr/share/bash-completion/completions/cairn and
// STAGE/usr/share/zsh/vendor-completions/_cairn;
//
//	go run ./packaging/deb -default packaging/deb/cairn.default -default-promote packaging/deb/cairn-promote.default
//
// rewrites the settings files the package ships, /etc/default/cairn and
// /etc/default/cairn-promote (a test checks that the files in the tree are
// what this writes).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alecthomas/kong"

	"github.com/cairn-cm/cairn/internal/cli"
	"github.com/cairn-cm/cairn/internal/clidoc"
)

func main() {
	root := flag.String("root", "", "write the manual pages and completions beneath `DIR`")
	version := flag.String("version", "devel", "the `VERSION` the manual pages name")
	date := flag.String("date", "", "the `DATE` of the manual pages (YYYY-MM-DD)")
	def := flag.String("default", "", "write /etc/default/cairn's text to `FILE`")
	defPromote := flag.String("default-promote", "", "write /etc/default/cairn-promote's text to `FILE`")
	flag.Parse()
	if flag.NArg() > 0 || (*root == "") == (*def == "" && *defPromote == "") {
		fmt.Fprintln(os.Stderr, "usage: deb -root DIR [-version V] [-date D] | deb [-default FILE] [-default-promote FILE]")
		os.Exit(2)
	}
	app, err := cli.Model()
	for _, d := range []struct{ file, command string }{{*def, "agent"}, {*defPromote, "promote"}} {
		if err == nil && d.file != "" {
			err = writeDefault(app, d.command, d.file)
		}
	}
	if err == nil && *root != "" {
		err = writeTree(app, *root, *version, *date)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
}

// defaultHeader is the top of /etc/default/cairn, before the settings.
const defaultHeader = `# /etc/default/cairn: the settings of the cairn agent. cairn.service reads
# this file as its environment (EnvironmentFile=); "systemctl restart cairn"
# applies a change. Each variable CAIRN_<FLAG> is the flag --<flag> of
# "cairn agent" (see cairn-agent(1)); a flag given on the command line wins.
#
# Every setting is listed below, commented out, with its default: uncomment
# a line and change its value to set it. An empty value (CAIRN_CONFIRM=) is
# as if the line were absent, except CAIRN_LISTEN=, which turns the HTTP
# listener off. The agent starts only once CAIRN_REPO is set, and applies
# only commits signed by a key of CAIRN_TRUST (or any, with
# CAIRN_ALLOW_UNSIGNED=true).
#
# This file is generated from cairn's command line (packaging/deb); the
# package's upgrades keep your changes (it is a conffile).
`

// promoteHeader is the top of /etc/default/cairn-promote.
const promoteHeader = `# /etc/default/cairn-promote: the settings of cairn promote, which
# cairn-promote.service reads as its environment (EnvironmentFile=) each time
# cairn-promote.timer starts it. Each variable CAIRN_<FLAG> is the flag
# --<flag> of "cairn promote" (see cairn-promote(1) and docs/rollout.md).
#
# Every setting is listed below, commented out, with its default: uncomment
# a line and change its value to set it. CAIRN_REPO, CAIRN_FROM, CAIRN_TO and
# CAIRN_PROMETHEUS are required. The timer is off until
# "systemctl enable --now cairn-promote.timer"; enable it on one machine of
# the fleet only. The service sets CAIRN_CACHE=/var/cache/cairn-promote (its
# CacheDirectory=): a setting here overrides it.
#
# This file is generated from cairn's command line (packaging/deb); the
# package's upgrades keep your changes (it is a conffile).
`

// defaults are the settings files the package ships, by the command whose
// flags they list: their headers.
var defaults = map[string]string{"agent": defaultHeader, "promote": promoteHeader}

// defaultText is the text of a settings file under /etc/default: the header
// and every setting of cairn COMMAND (agent: /etc/default/cairn; promote:
// /etc/default/cairn-promote).
func defaultText(app *kong.Application, command string) ([]byte, error) {
	var node *kong.Node
	for _, c := range app.Children {
		if c.Name == command {
			node = c
		}
	}
	header, ok := defaults[command]
	if node == nil || !ok {
		return nil, fmt.Errorf("cairn has no %s command with a settings file", command)
	}
	var b bytes.Buffer
	b.WriteString(header)
	if err := clidoc.EnvFile(&b, node); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeDefault(app *kong.Application, command, file string) error {
	text, err := defaultText(app, command)
	if err != nil {
		return err
	}
	return os.WriteFile(file, text, 0o644)
}

// exitStatus is the EXIT STATUS section of every page (spec cli.md).
const exitStatus = `	0
Success: the host is at what was asked (applied, or nothing to do); for diff and drift, no differences.

	1
A step or CHECK failed and the host was put back where it was before the move; for diff and drift, differences found; for status, the host is not converged; for fleet, a host is not converged at its group's tip.

	2
Bad input or usage, with nothing changed: an unparsable file, a failed static check, an unknown flag or a missing setting, a refused commit (untrusted, or over the removal guard), a compile error, a state directory held by another process, a Prometheus that does not answer (fleet).

	3
The host could not be put back after a failure; the intent is kept and the next run retries.`

// promoteStatus is what the exit codes of cairn promote mean (docs/rollout.md).
const promoteStatus = `	0
Promoted, a dry run that would have promoted, or nothing to do.

	1
Not promoted: a condition did not hold on a host of --from, a group of the --to branch is locked, or another push moved a branch first (the next run decides again).

	2
Bad input, or promote could not decide: an unknown group, --from and --to on one branch, a --to branch that is not an ancestor of the --from tip, a bad URL; Prometheus or the git server could not be reached, the server refused the push, the hosts block does not compile. cairn-promote.service counts 1 as a success and 2 as a failure.`

// lockStatus is what the exit codes of cairn lock and unlock mean.
const lockStatus = `	0
The signed commit was pushed (or, with --dry-run, made).

	1
The group is locked already (lock) or not locked (unlock), or signing or the push failed.

	2
Bad input: an unknown group, a group whose name is not one file name, a reason that is empty, not one line or with control characters.`

// agentFiles is the FILES section of cairn-agent(1).
const agentFiles = `	/etc/default/cairn
The agent's settings, as CAIRN_* variables, read by cairn.service.

	/lib/systemd/system/cairn.service
The systemd unit that runs cairn agent.

	/var/lib/cairn
The state directory: the git mirror, the applied journal and its history (what a rollback needs), the intent log of a move in progress, and the status of the last runs.`

func writeTree(app *kong.Application, root, version, date string) error {
	meta := clidoc.Meta{
		Version:  "cairn " + version,
		Date:     date,
		Manual:   "cairn manual",
		Sections: []clidoc.Section{{Title: "EXIT STATUS", Text: exitStatus}},
		Extra: map[string][]clidoc.Section{
			"cairn agent":   {{Title: "FILES", Text: agentFiles}},
			"cairn promote": {{Title: "EXIT STATUS OF PROMOTE", Text: promoteStatus}},
			"cairn lock":    {{Title: "EXIT STATUS OF LOCK", Text: lockStatus}},
			"cairn unlock":  {{Title: "EXIT STATUS OF UNLOCK", Text: lockStatus}},
		},
	}
	man := filepath.Join(root, "usr/share/man/man1")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	for _, p := range clidoc.ManPages(app, meta) {
		if err := os.WriteFile(filepath.Join(man, p.Name), p.Text, 0o644); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"usr/share/bash-completion/completions/cairn", func(b *bytes.Buffer) error { return clidoc.Bash(b, app) }},
		{"usr/share/zsh/vendor-completions/_cairn", func(b *bytes.Buffer) error { return clidoc.Zsh(b, app) }},
	} {
		var b bytes.Buffer
		if err := c.write(&b); err != nil {
			return err
		}
		file := filepath.Join(root, c.file)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
