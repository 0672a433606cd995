package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// where returns a step's source position, or its journal position when the
// journal was written by hand.
func where(s *journal.Step) string {
	if s.Source != "" {
		return s.Source
	}
	return s.Pos.String()
}

// writeChanges prints the removed and added steps with their positions.
func writeChanges(w io.Writer, p *journal.Plan) {
	for _, s := range p.Removed {
		fmt.Fprintf(w, "- %s # %s\n", s.Canonical(), where(s))
	}
	for _, s := range p.Added {
		fmt.Fprintf(w, "+ %s # %s\n", s.Canonical(), where(s))
	}
}

// writePlan prints the ops of a plan, one a line, each a journal step with
// '+' (forward), '-' (inverse) or '~' (in-place update) before it; notes (an
// inverse that does nothing, a CHECK that runs again) start with '#'. A
// trailing comment says why an unchanged step runs.
func writePlan(w io.Writer, p *journal.Plan) {
	for _, op := range p.Ops {
		line := op.Step.Canonical()
		switch {
		case op.Noop && op.Step.Op == journal.OpCheck:
			fmt.Fprintf(w, "# - %s: a CHECK has nothing to undo\n", line)
		case op.Noop:
			fmt.Fprintf(w, "# - %s: no undo given, its inverse does nothing\n", line)
		case op.Action == journal.Recheck:
			fmt.Fprintf(w, "# %s: runs again, the plan changes what it guards\n", line)
		case op.Action == journal.Rerun:
			fmt.Fprintf(w, "~ %s # runs again\n", line)
		case op.Action == journal.Update && op.Prev != nil && op.Prev.Canonical() == line:
			fmt.Fprintf(w, "~ %s # moved, unchanged\n", line)
		default:
			fmt.Fprintf(w, "%c %s\n", op.Action.Symbol(), line)
		}
	}
}

// jsonStep is a step as --json prints it.
type jsonStep struct {
	Step   string `json:"step"`
	At     string `json:"at"`
	Source string `json:"source,omitempty"`
}

func toJSONStep(s *journal.Step) jsonStep {
	return jsonStep{Step: s.Canonical(), At: s.Pos.String(), Source: s.Source}
}

type jsonOp struct {
	Action string `json:"action"`
	Symbol string `json:"symbol"`
	jsonStep
	Prev *jsonStep `json:"prev,omitempty"`
	Noop bool      `json:"noop,omitempty"`
}

type jsonDiff struct {
	Old     string     `json:"old"`
	New     string     `json:"new"`
	Same    bool       `json:"same"`
	Removed []jsonStep `json:"removed"`
	Added   []jsonStep `json:"added"`
	Plan    []jsonOp   `json:"plan"`
}

func writeJSON(w io.Writer, oldName, newName string, p *journal.Plan) error {
	d := jsonDiff{Old: oldName, New: newName, Same: p.Empty(), Removed: []jsonStep{}, Added: []jsonStep{}, Plan: []jsonOp{}}
	for _, s := range p.Removed {
		d.Removed = append(d.Removed, toJSONStep(s))
	}
	for _, s := range p.Added {
		d.Added = append(d.Added, toJSONStep(s))
	}
	for _, op := range p.Ops {
		jo := jsonOp{Action: op.Action.String(), Symbol: string(op.Action.Symbol()), jsonStep: toJSONStep(op.Step), Noop: op.Noop}
		if op.Prev != nil {
			prev := toJSONStep(op.Prev)
			jo.Prev = &prev
		}
		d.Plan = append(d.Plan, jo)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "a > b" in source positions, not "a \u003e b"
	return enc.Encode(d)
}

// plural returns "1 op", "2 ops".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}

// abbrev is a commit's name cut to n characters, as the tables and
// messages show it (the whole name when it is shorter).
func abbrev(n int, commit string) string {
	if len(commit) > n {
		return commit[:n]
	}
	return commit
}
