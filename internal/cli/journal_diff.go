package cli

import (
	"bufio"
	"fmt"
	"runtime/debug"

	"github.com/cairn-cm/cairn/journal"
)

type journalDiffCmd struct {
	Plan bool   `help:"Print only the ops of the plan, one a line."`
	JSON bool   `name:"json" help:"Print the changes and the plan as JSON."`
	Old  string `arg:"" name:"OLD" help:"The journal the host has."`
	New  string `arg:"" name:"NEW" help:"The journal to move to."`
}

// Run prints the changes and the plan; exit 1 when the journals differ.
func (c *journalDiffCmd) Run(e *env) error {
	// Everything parsed stays live until the plan is printed: collecting
	// often would only scan it again and again (a profile of 100k-step
	// journals showed most of the time in the collector).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	// The two files parse on two cores.
	var oldJ *journal.Journal
	var oldErr error
	parsed := make(chan struct{})
	go func() {
		defer close(parsed)
		oldJ, oldErr = loadJournal(c.Old)
	}()
	newJ, err := loadJournal(c.New)
	<-parsed
	if oldErr != nil {
		return oldErr
	}
	if err != nil {
		return err
	}
	p := journal.MakePlan(oldJ.Steps, newJ.Steps)
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	switch {
	case c.JSON:
		err = writeJSON(w, c.Old, c.New, p)
	case c.Plan:
		writePlan(w, p)
	default:
		writeChanges(w, p)
		if !p.Empty() {
			fmt.Fprintf(w, "\n# plan: %s\n", plural(acting(p), "op"))
			writePlan(w, p)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return err
	}
	if !p.Empty() {
		return exitCode(exitDiffers)
	}
	return nil
}

// acting counts the ops of a plan that do something: notes of inverses that
// do nothing are not counted, so the count matches what apply reports.
func acting(p *journal.Plan) int {
	n := 0
	for _, op := range p.Ops {
		if !op.Noop {
			n++
		}
	}
	return n
}
