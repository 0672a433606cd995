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
//	go run ./packaging/deb -default packaging/deb/cairn.default
//
// rewrites the settings file the package ships (a test checks that the file
// in the tree is what this writes).
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
	flag.Parse()
	if flag.NArg() > 0 || (*root == "") == (*def == "") {
		fmt.Fprintln(os.Stderr, "usage: deb -root DIR [-version V] [-date D] | deb -default FILE")
		os.Exit(2)
	}
	app, err := cli.Model()
	if err == nil && *def != "" {
		err = writeDefault(app, *def)
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

// defaultText is the text of /etc/default/cairn: the header and every
// setting of cairn agent.
func defaultText(app *kong.Application) ([]byte, error) {
	var agent *kong.Node
	for _, c := range app.Children {
		if c.Name == "agent" {
			agent = c
		}
	}
	if agent == nil {
		return nil, fmt.Errorf("cairn has no agent command")
	}
	var b bytes.Buffer
	b.WriteString(defaultHeader)
	if err := clidoc.EnvFile(&b, agent); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeDefault(app *kong.Application, file string) error {
	text, err := defaultText(app)
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
Not promoted: a condition did not hold on a host of --from, a group of the --to branch is locked, Prometheus or the git server could not be reached, or another push won the race.

	2
Bad input: an unknown group, --from and --to on one branch, a --to branch that is not an ancestor of the --from tip, a bad URL.`

// lockStatus is what the exit codes of cairn lock and unlock mean.
const lockStatus = `	0
The signed commit was pushed (or, with --dry-run, made).

	1
The group is locked already (lock) or not locked (unlock), or signing or the push failed.

	2
Bad input: an unknown group, a reason that is empty or not one line.`

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
