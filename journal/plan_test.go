package journal

import (
	"strings"
	"testing"
)

// renderPlan writes a plan as `journal diff --plan` does, compactly.
func renderPlan(p *Plan) string {
	var lines []string
	for _, op := range p.Ops {
		prefix := string(op.Action.Symbol())
		if op.Noop {
			prefix = "#-"
		}
		lines = append(lines, prefix+" "+op.Step.Canonical())
	}
	return strings.Join(lines, "\n")
}

func TestMakePlan(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     string
		empty    bool
	}{
		{"same", "MKDIR /a\nRM /b\n", "MKDIR /a\nRM /b\n", "", true},
		{"empty to some", "", "MKDIR /a\nRM /b\n", "+ MKDIR /a\n+ RM /b", false},
		{"some to empty: reverse order", "MKDIR /a\nMKDIR /a/b\nRM /c\n", "", "- RM /c\n- MKDIR /a/b\n- MKDIR /a", false},
		{"fused update", "MKDIR /a\nCOPY f /a/f sha256=" + hexA + "\n", "MKDIR /a\nCOPY f /a/f mode=0600 sha256=" + hexA + "\n", "~ COPY f /a/f mode=0600 sha256=" + hexA, false},
		{"kind change fuses", "MKDIR /a\n", "SYMLINK /x /a\n", "~ SYMLINK /x /a", false},
		{"moved step is an update", "MKDIR /a\nMKDIR /b\n", "MKDIR /b\nMKDIR /a\n", "~ MKDIR /a", false},
		{"inverses then forwards", "MKDIR /a\nRM /x\n", "MKDIR /a\nRM /y\n", "- RM /x\n+ RM /y", false},
		{"exec without undo is a note", "EXEC true\n", "", "#- EXEC true", false},
		{"exec with undo runs it", "EXEC true undo=false\n", "", "- EXEC true undo=false", false},
		{"check after a change runs again", "MKDIR /a\nCHECK file /a\nRM /b\n", "MKDIR /a mode=0700\nCHECK file /a\nRM /b\n", "~ MKDIR /a mode=0700\n? CHECK file /a", false},
		{"check before the change does not", "CHECK file /a\nMKDIR /a\n", "CHECK file /a\nMKDIR /a mode=0700\n", "~ MKDIR /a mode=0700", false},
		{"an inverse makes every check run", "CHECK file /a\nRM /x\n", "CHECK file /a\n", "- RM /x\n? CHECK file /a", false},
		{"removed check is a note", "CHECK file /a\n", "", "#- CHECK file /a", false},
		{"uid change reruns owned steps", "USERADD web uid=1000\nMKDIR /w owner=web\n", "USERADD web uid=1001\nMKDIR /w owner=web\n", "~ USERADD web uid=1001\n~ MKDIR /w owner=web", false},
		{"gid change reruns group-owned steps", "GROUPADD g gid=5\nMKDIR /w group=g\n", "GROUPADD g gid=6\nMKDIR /w group=g\n", "~ GROUPADD g gid=6\n~ MKDIR /w group=g", false},
		{"unchanged uid reruns nothing", "USERADD web uid=1000 shell=/bin/sh\nMKDIR /w owner=web\n", "USERADD web shell=/bin/bash uid=1000\nMKDIR /w owner=web\n", "~ USERADD web shell=/bin/bash uid=1000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Parse("old", []byte(tt.old))
			if err != nil {
				t.Fatal(err)
			}
			n, err := Parse("new", []byte(tt.new))
			if err != nil {
				t.Fatal(err)
			}
			p := MakePlan(o.Steps, n.Steps)
			if got := renderPlan(p); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			if p.Empty() != tt.empty {
				t.Errorf("Empty() = %v, want %v", p.Empty(), tt.empty)
			}
			acting := 0
			for _, line := range strings.Split(tt.want, "\n") {
				if line != "" && !strings.HasPrefix(line, "#-") {
					acting++
				}
			}
			if p.Acting() != acting || p.Acts() != (acting > 0) {
				t.Errorf("Acting() = %d, Acts() = %v; want %d", p.Acting(), p.Acts(), acting)
			}
		})
	}
}

func TestPlanUpdateKeepsPrev(t *testing.T) {
	o, _ := Parse("old", []byte("MKDIR /a mode=0700\n"))
	n, _ := Parse("new", []byte("MKDIR /a\n"))
	p := MakePlan(o.Steps, n.Steps)
	if len(p.Ops) != 1 || p.Ops[0].Prev == nil || p.Ops[0].Prev.Canonical() != "MKDIR /a mode=0700" {
		t.Fatalf("ops %+v", p.Ops)
	}
	if len(p.Removed) != 1 || len(p.Added) != 1 {
		t.Errorf("removed %d added %d, want 1 and 1", len(p.Removed), len(p.Added))
	}
}
