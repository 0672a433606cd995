package journal

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlanPairEdges is the differential test of PlanPair on the cases its
// pairing of lines by bytes may get wrong: many identical lines, swaps and
// moves at the edges of the window pairLines looks in, lines of equal
// canonical forms written otherwise, blank and comment lines at every place,
// CRLF, a last line without newline, very long lines.
func TestPlanPairEdges(t *testing.T) {
	rep := func(line string, n int) string { return strings.Repeat(line+"\n", n) }
	seq := func(from, to int, f string) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, f+"\n", i)
		}
		return b.String()
	}
	long := "EXEC " + strings.Repeat("x", 200000)
	tests := []struct{ name, old, new string }{
		{"1000 identical checks, one more", rep("CHECK file /a", 1000), rep("CHECK file /a", 1001)},
		{"1000 identical checks, one less", rep("CHECK file /a", 1000), rep("CHECK file /a", 999)},
		{"identical checks, a step in the middle", rep("CHECK file /a", 1000), rep("CHECK file /a", 500) + "MKDIR /x\n" + rep("CHECK file /a", 500)},
		{"identical checks, respelled in new", rep("CHECK file /a", 100), rep("CHECK file /a", 50) + rep("CHECK  file /a", 50)},
		{"identical checks, respelled in old", rep("CHECK file /a timeout=30s", 100), rep("CHECK file /a", 100)},
		{"swap 31 apart", seq(0, 100, "MKDIR /d/%d"), seq(0, 10, "MKDIR /d/%d") + "MKDIR /d/41\n" + seq(11, 41, "MKDIR /d/%d") + "MKDIR /d/10\n" + seq(42, 100, "MKDIR /d/%d")},
		{"swap 32 apart", seq(0, 100, "MKDIR /d/%d"), seq(0, 10, "MKDIR /d/%d") + "MKDIR /d/42\n" + seq(11, 42, "MKDIR /d/%d") + "MKDIR /d/10\n" + seq(43, 100, "MKDIR /d/%d")},
		{"swap 33 apart", seq(0, 100, "MKDIR /d/%d"), seq(0, 10, "MKDIR /d/%d") + "MKDIR /d/43\n" + seq(11, 43, "MKDIR /d/%d") + "MKDIR /d/10\n" + seq(44, 100, "MKDIR /d/%d")},
		{"32 removed", seq(0, 100, "MKDIR /d/%d"), seq(0, 10, "MKDIR /d/%d") + seq(42, 100, "MKDIR /d/%d")},
		{"33 removed", seq(0, 100, "MKDIR /d/%d"), seq(0, 10, "MKDIR /d/%d") + seq(43, 100, "MKDIR /d/%d")},
		{"33 added", seq(0, 100, "MKDIR /d/%d"), seq(0, 10, "MKDIR /d/%d") + seq(0, 33, "RM /r/%d") + seq(10, 100, "MKDIR /d/%d")},
		{"block moved back", seq(0, 100, "MKDIR /d/%d"), seq(60, 93, "MKDIR /d/%d") + seq(0, 60, "MKDIR /d/%d") + seq(93, 100, "MKDIR /d/%d")},
		{"respelled twin in window", "MKDIR /a mode=0700 owner=x\nMKDIR /b\n", "MKDIR /b\nMKDIR /a owner=x mode=700\n"},
		{"respelled twin far", "MKDIR /a mode=0700 owner=x\n" + seq(0, 40, "RM /r/%d"), seq(0, 40, "RM /r/%d") + "MKDIR /a owner=x mode=700\n"},
		{"defaults and case", "COPY f /a sha256=" + strings.ToUpper(hexA) + " mode=0644 owner=root\nEXEC x timeout=600s\n", "COPY f /a sha256=" + hexA + "\nEXEC x\n"},
		{"quoted args", "SYMLINK \"t\" /a\nEXEC \"a b\"\n", "SYMLINK t /a\nEXEC \"a b\"  # c\n"},
		{"comments everywhere", "# h\n\nMKDIR /a\n\n\n# x\nMKDIR /b\n# end", "\n\n\nMKDIR /a\n# y\nMKDIR /c\nMKDIR /b\n\n"},
		{"only comments", "# a\n\n# b\n", "\n# c\n"},
		{"last line without newline", "MKDIR /a\nMKDIR /b", "MKDIR /a\nMKDIR /b\nMKDIR /c"},
		{"last line comment without newline", "MKDIR /a\n# x", "MKDIR /b\n# x"},
		{"CRLF in a changed line", "MKDIR /a\r\n", "MKDIR /b\r\n"},
		{"CRLF in a comment", "# a\r\nMKDIR /a\n", "MKDIR /a\n"},
		{"CR alone", "MKDIR /a\n\r\n", "MKDIR /a\n"},
		{"long lines", long + "\n" + long + "y\n", long + "y\n" + long + "\n"},
		{"long line changed", long + "\nMKDIR /a\n", long + "z\nMKDIR /a\n"},
		{"empty and blank", "", "\n\n  \n"},
		{"vertical tab and form feed", "MKDIR\v/a\nMKDIR /b\f\n", "MKDIR /a\nMKDIR /b\n"},
		{"leading white space", "\tMKDIR /a\n", "MKDIR /a\n  \n\tMKDIR /a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkPlanPair(t, tt.old, tt.new) })
	}
}

// TestPlanPairShuffled is the differential test of PlanPair on journals
// made of a few dozen texts repeated, respelled, commented and moved around,
// small and large (large ones are mapped and released as PlanPair goes).
func TestPlanPairShuffled(t *testing.T) {
	texts := []string{
		"CHECK file /a", "CHECK  file /a", "CHECK file /a timeout=30s", "CHECK file /a interval=2s",
		"MKDIR /a", "MKDIR /a mode=0755", "MKDIR /a mode=0700", "MKDIR /a mode=700", "MKDIR /a owner=u group=g", "MKDIR /a group=g owner=u",
		"EXEC true", "EXEC \"true\"", "EXEC true # c", "EXEC\ttrue", "SYSTEMD-RELOAD", "SYSTEMD-RELOAD # x",
		"USERADD u uid=1000", "USERADD u uid=01000", "USERADD u uid=1001", "MKDIR /o owner=u",
		"RM /b", "RM /c", "SYMLINK t /l", "SYMLINK \"t\" /l",
	}
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 99))
		n := 20 + rng.IntN(200)
		if seed%15 == 14 {
			n = 200000
		}
		line := func() string {
			switch rng.IntN(20) {
			case 0:
				return "# comment"
			case 1:
				return ""
			case 2, 3, 4, 5, 6, 7:
				return fmt.Sprintf("MKDIR /d/%d", rng.IntN(n))
			}
			return texts[rng.IntN(len(texts))]
		}
		old := make([]string, n)
		for i := range old {
			old[i] = line()
		}
		new := append([]string(nil), old...)
		for range 1 + rng.IntN(20) {
			if len(new) < 2 {
				break
			}
			i := rng.IntN(len(new))
			switch rng.IntN(5) {
			case 0: // swap at a distance about the window's
				j := min(len(new)-1, i+28+rng.IntN(8))
				new[i], new[j] = new[j], new[i]
			case 1: // move a block
				k := min(len(new)-i, 1+rng.IntN(40))
				block := append([]string(nil), new[i:i+k]...)
				rest := append(new[:i:i], new[i+k:]...)
				at := rng.IntN(len(rest) + 1)
				new = append(rest[:at:at], append(block, rest[at:]...)...)
			case 2:
				new[i] = line()
			case 3:
				new = append(new[:i:i], new[i+1:]...)
			case 4:
				new = append(new[:i:i], append([]string{line()}, new[i:]...)...)
			}
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkPlanPair(t, strings.Join(old, "\n")+"\n", strings.Join(new, "\n"))
		})
	}
}

// TestPlanPairLarge is the differential test of PlanPair on large journals
// of shapes the small ones do not reach: the table grown by the lines of
// new, one line repeated throughout, lines that pair only past the window,
// and lines that pair only by their canonical forms.
func TestPlanPairLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large journals")
	}
	seq := func(from, to int, f string) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, f+"\n", i)
		}
		return b.String()
	}
	rep := func(line string, n int) string { return strings.Repeat(line+"\n", n) }
	tests := []struct{ name, old, new string }{
		{"old small, new large", "MKDIR /a\n", seq(0, 150000, "MKDIR /d/%d")},
		{"one line throughout", rep("CHECK file /a", 150000), rep("CHECK file /a", 149000) + "MKDIR /a\n" + rep("CHECK file /a", 1001)},
		{"halves swapped", seq(0, 150000, "MKDIR /d/%d"), seq(75000, 150000, "MKDIR /d/%d") + seq(0, 75000, "MKDIR /d/%d")},
		{"respelled throughout", seq(0, 150000, "MKDIR /d/%d mode=0755"), seq(0, 150000, "MKDIR /d/%d")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkPlanPair(t, tt.old, tt.new) })
	}
}
