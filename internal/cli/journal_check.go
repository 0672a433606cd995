package cli

import (
	"fmt"

	"github.com/cairn-cm/cairn/journal"
)

type journalCheckCmd struct {
	Files []string `arg:"" name:"FILE" help:"Journal files to check."`
}

// Run parses and statically checks each file; findings go to stderr.
func (c *journalCheckCmd) Run(e *env) error {
	bad := false
	for _, f := range c.Files {
		j, err := journal.LoadFile(f)
		findings := journal.Findings(err)
		if err != nil && findings == nil {
			fmt.Fprintln(e.stderr, fileError(err))
			bad = true
			continue
		}
		findings = append(findings, journal.Check(j.Steps)...)
		findings.Sort()
		for _, fd := range findings {
			fmt.Fprintln(e.stderr, fd.Error())
		}
		bad = bad || findings.HasErrors()
	}
	if bad {
		return exitCode(exitBadInput)
	}
	return nil
}
