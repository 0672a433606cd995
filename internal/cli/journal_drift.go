package cli

import (
	"fmt"

	"github.com/cairn-cm/cairn/journal"
)

type journalDriftCmd struct {
	stateFlags
}

// Run lists the applied steps whose live state drifted; exit 1 if any.
func (c *journalDriftCmd) Run(e *env) error {
	a, done, err := c.openState(e)
	if err != nil {
		return err
	}
	defer done()
	drifted, err := a.Drift(e.ctx)
	if err != nil {
		return err
	}
	for _, d := range drifted {
		fmt.Fprintf(e.stdout, "%s: %s\n", describe(d.Step), d.Diff)
	}
	if len(drifted) > 0 {
		return exitCode(exitDiffers)
	}
	return nil
}

// describe names a step for a listing: its position, canonical form and
// source position.
func describe(s *journal.Step) string {
	msg := s.Pos.String() + ": " + s.Canonical()
	if s.Source != "" {
		msg += " (from " + s.Source + ")"
	}
	return msg
}
