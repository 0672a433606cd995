package steps

import (
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
)

// TestGuardRemoval: a journal that manages no object is refused when the
// move would undo what the applied journal did: remove its objects, or
// run the undo of its commands (an EXEC with undo= is what it did to the
// host as much as a file is). Moves that keep something, or that have
// nothing to undo, go ahead.
func TestGuardRemoval(t *testing.T) {
	undo := `EXEC "touch /tmp/x" undo="rm -f /tmp/x"`
	for _, tc := range []struct {
		name     string
		old, new []string
		want     string // in the refusal; "" goes ahead
	}{
		{"objects to nothing", []string{"MKDIR /srv", "MKDIR /srv/a"}, nil, "(2 objects)"},
		{"objects to a CHECK", []string{"MKDIR /srv"}, []string{"CHECK http http://localhost/"}, "(1 object)"},
		{"commands with an undo to nothing", []string{undo, `EXEC "true"`}, nil, "the undo of 1 command"},
		{"objects and commands to nothing", []string{"MKDIR /srv", undo}, nil, "(1 object and the undo of 1 command)"},
		{"objects to all but one", []string{"MKDIR /srv", "MKDIR /srv/a"}, []string{"MKDIR /srv"}, ""},
		{"commands without an undo to nothing", []string{`EXEC "true"`, "CHECK http http://localhost/"}, nil, ""},
		{"nothing to nothing", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := func(lines []string) []journal.Step {
				s, err := journal.ParseSteps("t.journal", lines)
				must(t, err)
				return s
			}
			a := &Applier{}
			err := a.guardRemoval(parse(tc.old), Move{Journal: "new.journal", Steps: parse(tc.new)})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (ExitCode(err) != ExitBadInput || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--allow-removal")):
				t.Errorf("got %v, want a refusal that says %q", err, tc.want)
			}
			if err := a.guardRemoval(parse(tc.old), Move{Steps: parse(tc.new), AllowRemoval: true}); err != nil {
				t.Errorf("with AllowRemoval: %v", err)
			}
		})
	}
}
