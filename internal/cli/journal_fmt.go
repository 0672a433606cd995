package cli

import (
	"github.com/cairn-cm/cairn/journal"
)

type journalFmtCmd struct {
	File string `arg:"" name:"FILE" help:"Journal file to print in canonical form."`
}

// Run prints the canonical form of every step, INCLUDEs kept as steps.
func (c *journalFmtCmd) Run(e *env) error {
	j, err := journal.ParseFile(c.File)
	if err != nil {
		return &exitError{code: exitBadInput, err: fileError(err)}
	}
	_, err = e.stdout.Write(j.Format())
	return err
}
