package journal

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// checkPair fails the test unless ParsePair gives, for old and new, exactly
// what Parse gives for each file (every field of every step, positions
// included, and so the same plan), or declines (ok false) exactly when
// Parse finds an error or an INCLUDE in either file.
func checkPair(t *testing.T, old, new string) {
	t.Helper()
	checkPlanPair(t, old, new)
	wantOld, errOld := Parse("old.journal", []byte(old))
	wantNew, errNew := Parse("new.journal", []byte(new))
	wantOK := errOld == nil && errNew == nil && !hasInclude(wantOld.Steps) && !hasInclude(wantNew.Steps)
	gotOld, gotNew, ok := ParsePair("old.journal", old, "new.journal", new)
	if ok != wantOK {
		t.Fatalf("ParsePair ok = %v, want %v (Parse errors: %v / %v)", ok, wantOK, errOld, errNew)
	}
	if !ok {
		return
	}
	for _, c := range []struct {
		side      string
		got, want *Journal
	}{{"old", gotOld, wantOld}, {"new", gotNew, wantNew}} {
		if c.got.File != c.want.File {
			t.Errorf("%s: File %q, want %q", c.side, c.got.File, c.want.File)
		}
		if len(c.got.Steps) != len(c.want.Steps) {
			t.Fatalf("%s: %d steps, want %d", c.side, len(c.got.Steps), len(c.want.Steps))
		}
		for i := range c.want.Steps {
			g, w := c.got.Steps[i], c.want.Steps[i]
			// Slices of a slab compare by contents, not capacity.
			if len(g.Args) == 0 && len(w.Args) == 0 {
				g.Args, w.Args = nil, nil
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("%s step %d:\n got %#v\nwant %#v", c.side, i, g, w)
			}
		}
	}
	got := renderPlanPos(MakePlan(gotOld.Steps, gotNew.Steps))
	want := renderPlanPos(MakePlan(wantOld.Steps, wantNew.Steps))
	if got != want {
		t.Fatalf("plan through ParsePair:\n%s\nwant (Parse):\n%s", got, want)
	}
}

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

func TestParsePair(t *testing.T) {
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
		// Large enough for the old file to be parsed in two halves: the
		// second half numbers its lines on from the first.
		{"two halves", big(3000, func(int) string { return "" }), big(3000, func(i int) string {
			switch i % 500 {
			case 7:
				return fmt.Sprintf("MKDIR /d/%05d mode=0700\n", i)
			case 9:
				return "\n"
			}
			return ""
		})},
		// A block of steps moved further than ParsePair looks ahead, and
		// one removed: found through the map, then in order again.
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
		t.Run(tt.name, func(t *testing.T) { checkPair(t, tt.old, tt.new) })
	}
}

// TestParsePairGenerated compares ParsePair with Parse on the journals of
// the benchmarks, without and with source comments.
func TestParsePairGenerated(t *testing.T) {
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
				checkPair(t, strings.Join(old, "\n")+"\n", strings.Join(new, "\n")+"\n")
			})
		}
	}
}

// FuzzParsePair is the differential fuzz test of ParsePair against Parse:
// new is built from the lines of old and of more, chosen by the bits of
// mix, so that most of its lines are lines of old, as in a diff.
func FuzzParsePair(f *testing.F) {
	f.Add([]byte("MKDIR /a\nRM /b # s:1:1\nEXEC true\n"), []byte("MKDIR /a mode=0700\nRM /b # s:2:1\n"), uint64(0x5a5a))
	f.Add([]byte("EXEC \"x\"  undo=y\nCHECK file /a\n"), []byte("EXEC x undo=y\nCHECK file /a\n"), uint64(0xf0f0))
	f.Add([]byte("USERADD web uid=1000\nMKDIR /w owner=web\n"), []byte("USERADD web uid=1001\n"), uint64(1))
	f.Add([]byte("MKDIR /a\n\n# c\n"), []byte("INCLUDE x\nMKDIR\n"), uint64(3))
	f.Fuzz(func(t *testing.T, old, more []byte, mix uint64) {
		a := strings.Split(string(old), "\n")
		b := strings.Split(string(more), "\n")
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
		checkPair(t, string(old), strings.Join(new, "\n"))
	})
}
