package cli

import (
	"bufio"
	"fmt"
)

type journalShowCmd struct {
	stateFlags
}

// Run prints the applied journal: comment lines for the commit, branch and
// group it came from (those recorded), canonical steps, source positions as
// comments, then a comment line for each piece of content kept from a file
// edited by hand.
func (c *journalShowCmd) Run(e *env) error {
	a, done, err := c.openState(e)
	if err != nil {
		return err
	}
	defer done()
	// A step that drift would reject is rejected here too, the same way.
	if _, err := a.Journal(); err != nil {
		return err
	}
	applied := a.Applied()
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	// Where it came from, when the applier was told, as comments first.
	for _, f := range [][2]string{{"commit", applied.Commit}, {"branch", applied.Branch}, {"group", applied.Group}} {
		if f[1] != "" {
			fmt.Fprintf(w, "# %s %s\n", f[0], f[1])
		}
	}
	for _, s := range applied.Steps {
		src := s.Source
		if src == "" {
			src = s.At
		}
		fmt.Fprintf(w, "%s # %s\n", s.Step, src)
	}
	// Comments, so that the output stays a journal.
	for _, k := range applied.Kept {
		fmt.Fprintf(w, "# kept %s\n", keptLine(k))
	}
	return w.Flush()
}
