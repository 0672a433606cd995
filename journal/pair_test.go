package journal

import (
	"fmt"
	"strings"
	"testing"
)

// renderPlanPos is renderPlan with the position of every step.
func renderPlanPos(p *Plan) string {
	var b strings.Builder
	for _, op := range p.Ops {
		fmt.Fprintf(&b, "%c %v %s %s", op.Action.Symbol(), op.Noop, op.Step.Pos, op.Step)
		if op.Prev != nil {
			fmt.Fprintf(&b, " (was %s %s)", op.Prev.Pos, op.Prev)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "removed %d added %d\n", len(p.Removed), len(p.Added))
	return b.String()
}

func TestPlanPair(t *testing.T) {
	copyA := "COPY f /a/f sha256=" + hexA
	big := func(n int, edit func(i int) string) string {
		var b strings.Builder
		for i := range n {
			if s := edit(i); s != "" {
				b.WriteString(s)
				continue
			}
			fmt.Fprintf(&b, "MKDIR /d/%05d # site.cairn:%d:1\n", i, i)
		}
		return b.String()
	}
	tests := []struct{ name, old, new string }{
		{"both empty", "", ""},
		{"old empty", "", "MKDIR /a\nRM /b\n"},
		{"new empty", "MKDIR /a\nRM /b\n", ""},
		{"same", "MKDIR /a\n" + copyA + "\n", "MKDIR /a\n" + copyA + "\n"},
		{"no final newline", "MKDIR /a\nRM /b", "MKDIR /a\nRM /b"},
		{"shifted lines keep their own positions", "MKDIR /a\nRM /b\n", "\n# c\nMKDIR /x\nMKDIR /a\n  RM /b\n"},
		{"same step, other comment", "MKDIR /a # s:1:1\n", "MKDIR /a # s:2:1\n"},
		{"same step, other spelling", "MKDIR /a mode=0755\nEXEC  true\n", "MKDIR /a\nEXEC true\n"},
		{"repeated lines", "EXEC true\nMKDIR /a\nEXEC true\nEXEC true\n", "EXEC true\nEXEC true\nMKDIR /a\nEXEC true\n"},
		{"a line repeated in new only", "CHECK file /a\n", "CHECK file /a\nMKDIR /a\nCHECK file /a\n"},
		{"non-canonical line unchanged, canonical twin added", "EXEC \"x\"  undo=y\n", "EXEC \"x\"  undo=y\nEXEC x undo=y\n"},
		{"uid change reruns an unchanged owned step", "USERADD web uid=1000\nMKDIR /w owner=web\n", "USERADD web uid=1001\nMKDIR /w owner=web\n"},
		{"error in old only", "MKDIR\nRM /b\n", "RM /b\n"},
		{"error in new only", "RM /b\n", "RM /b\nFROB /x\n"},
		{"the same bad line in both", "RM /b\nMKDIR /a mode=9\n", "MKDIR /a mode=9\nRM /b\n"},
		{"carriage return in both", "RM /b\r\n", "RM /b\r\n"},
		{"invalid UTF-8 in both", "RM /\xff\n", "RM /\xff\n"},
		{"include in old", "INCLUDE x.journal\n", "RM /b\n"},
		{"include in new", "RM /b\n", "RM /b\nINCLUDE x.journal\n"},
		{"include in both", "INCLUDE x.journal\n", "INCLUDE x.journal\n"},
		// Many lines, changed in a few places.
		{"two halves", big(3000, func(int) string { return "" }), big(3000, func(i int) string {
			switch i % 500 {
			case 7:
				return fmt.Sprintf("MKDIR /d/%05d mode=0700\n", i)
			case 9:
				return "\n"
			}
			return ""
		})},
		// A block of steps moved, and one removed.
		{"moved block", big(100, func(int) string { return "" }), func() string {
			all := strings.SplitAfter(big(100, func(int) string { return "" }), "\n")
			return strings.Join(all[30:60], "") + strings.Join(all[:29], "") + strings.Join(all[60:], "")
		}()},
		{"two halves, error in the second", big(3000, func(i int) string {
			if i == 2900 {
				return "MKDIR\n"
			}
			return ""
		}), big(3000, func(int) string { return "" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkPlanPair(t, tt.old, tt.new) })
	}
}

// TestPlanPairBenchJournals compares PlanPair with Parse and MakePlan on
// the journals of the benchmarks, without and with source comments.
func TestPlanPairBenchJournals(t *testing.T) {
	for _, n := range []int{100, 5000} {
		for _, comments := range []bool{false, true} {
			old, new := GenDiffJournals(uint64(n), n, 0.02)
			if comments {
				for i := range old {
					old[i] += fmt.Sprintf(" # site.cairn:%d:3", i%97)
				}
				for i := range new {
					new[i] += fmt.Sprintf(" # site.cairn:%d:3", i%89)
				}
			}
			t.Run(fmt.Sprintf("%d/comments=%v", n, comments), func(t *testing.T) {
				checkPlanPair(t, strings.Join(old, "\n")+"\n", strings.Join(new, "\n")+"\n")
			})
		}
	}
}

// FuzzPlanPair is the differential fuzz test of PlanPair against Parse and
// MakePlan, and of lineKey against the parser: new is built from the lines of old and of more, chosen by the bits of
// mix, so that most of its lines are lines of old, as in a diff.
func FuzzPlanPair(f *testing.F) {
	f.Add([]byte("MKDIR /a\nRM /b # s:1:1\nEXEC true\n"), []byte("MKDIR /a mode=0700\nRM /b # s:2:1\n"), uint64(0x5a5a))
	f.Add([]byte("EXEC \"x\"  undo=y\nCHECK file /a\n"), []byte("EXEC x undo=y\nCHECK file /a\n"), uint64(0xf0f0))
	f.Add([]byte("USERADD web uid=1000\nMKDIR /w owner=web\n"), []byte("USERADD web uid=1001\n"), uint64(1))
	f.Add([]byte("MKDIR /a\n\n# c\n"), []byte("INCLUDE x\nMKDIR\n"), uint64(3))
	// The same step written two ways, in one file or in both (PlanPair
	// must give them one id).
	f.Add([]byte("MKDIR /a\nEXEC x\nMKDIR /b mode=0700\n"), []byte("MKDIR  /a\nEXEC \"x\"\nMKDIR /b   mode=700 # c\n"), uint64(0x33))
	f.Add([]byte("EXEC x\nEXEC  x\n"), []byte("EXEC  x\nEXEC x\n"), uint64(0xc))
	f.Add([]byte("COPY files/aaaaaaaa.conf /srv/app/bbbbbbbb.conf sha256="+hexA+"\n"), []byte("COPY files/aaaaaaaa.conf\t/srv/app/bbbbbbbb.conf sha256="+hexA+" mode=0644\n"), uint64(5))
	f.Fuzz(func(t *testing.T, old, more []byte, mix uint64) {
		a := strings.Split(string(old), "\n")
		b := strings.Split(string(more), "\n")
		for _, l := range append(a, b...) {
			checkLineKey(t, l)
		}
		var new []string
		for i := 0; i < len(a) || i < len(b); i++ {
			bit := mix >> (uint(i) % 64)
			if i < len(a) && bit&1 == 0 {
				new = append(new, a[i])
			}
			if i < len(b) && bit&2 == 0 {
				new = append(new, b[i])
			}
		}
		checkPlanPair(t, string(old), strings.Join(new, "\n"))
	})
}
