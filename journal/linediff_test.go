package journal

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// ldCheck returns why edits is not a valid edit script from old to new, or
// nil: in order, every index once, Equal lines equal, and in each run of
// changes the Deletes before the Inserts.
func ldCheck(old, new []string, edits []Edit) error {
	i, j := 0, 0
	inserting := false // an Insert since the last Equal
	for k, e := range edits {
		switch e.Kind {
		case Equal:
			if e.Old != i || e.New != j {
				return fmt.Errorf("edit %d: %v %d,%d, want %d,%d", k, e.Kind, e.Old, e.New, i, j)
			}
			if old[i] != new[j] {
				return fmt.Errorf("edit %d: equal %q and %q", k, old[i], new[j])
			}
			i++
			j++
			inserting = false
		case Delete:
			if e.Old != i || e.New != -1 {
				return fmt.Errorf("edit %d: %v %d,%d, want %d,-1", k, e.Kind, e.Old, e.New, i)
			}
			if inserting {
				return fmt.Errorf("edit %d: delete after an insert", k)
			}
			i++
		case Insert:
			if e.Old != -1 || e.New != j {
				return fmt.Errorf("edit %d: %v %d,%d, want -1,%d", k, e.Kind, e.Old, e.New, j)
			}
			j++
			inserting = true
		default:
			return fmt.Errorf("edit %d: kind %v", k, e.Kind)
		}
		if i > len(old) || j > len(new) {
			return fmt.Errorf("edit %d: %v %d,%d out of range", k, e.Kind, e.Old, e.New)
		}
	}
	if i != len(old) || j != len(new) {
		return fmt.Errorf("script covers %d old and %d new lines of %d and %d", i, j, len(old), len(new))
	}
	return nil
}

// ldKinds writes a script as one character an edit: = - +.
func ldKinds(edits []Edit) string {
	var b strings.Builder
	for _, e := range edits {
		b.WriteByte("=-+"[e.Kind])
	}
	return b.String()
}

// ldEqual counts the Equal edits.
func ldEqual(edits []Edit) int {
	n := 0
	for _, e := range edits {
		if e.Kind == Equal {
			n++
		}
	}
	return n
}

// ldLCS is the length of a longest common subsequence, by dynamic
// programming.
func ldLCS[T comparable](x, y []T) int {
	row := make([]int, len(y)+1)
	for i := range x {
		diag := 0
		for j := range y {
			up := row[j+1]
			if x[i] == y[j] {
				row[j+1] = diag + 1
			} else {
				row[j+1] = max(row[j+1], row[j])
			}
			diag = up
		}
	}
	return row[len(y)]
}

// ldAnchorLCS is the length of the longest common subsequence of the lines
// that occur exactly once in old and once in new.
func ldAnchorLCS(old, new []string) int {
	count := map[string][2]int{}
	for _, s := range old {
		c := count[s]
		c[0]++
		count[s] = c
	}
	for _, s := range new {
		c := count[s]
		c[1]++
		count[s] = c
	}
	unique := func(lines []string) []string {
		var u []string
		for _, s := range lines {
			if count[s] == [2]int{1, 1} {
				u = append(u, s)
			}
		}
		return u
	}
	return ldLCS(unique(old), unique(new))
}

// ldGoDiffEqual is the number of equal lines in go-diff's plain line mode.
func ldGoDiffEqual(old, new []string) int {
	join := func(lines []string) string {
		var b strings.Builder
		for _, s := range lines {
			b.WriteString(s)
			b.WriteByte('\n')
		}
		return b.String()
	}
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0
	r1, r2, _ := dmp.DiffLinesToRunes(join(old), join(new))
	n := 0
	for _, d := range dmp.DiffMainRunes(r1, r2, false) {
		if d.Type == diffmatchpatch.DiffEqual {
			n += utf8.RuneCountInString(d.Text)
		}
	}
	return n
}

func TestDiffLines(t *testing.T) {
	const (
		mkA   = "MKDIR /srv/a"
		mkB   = "MKDIR /srv/b"
		cpX   = "COPY files/x /srv/a/x sha256=" + "00000000000000000000000000000000000000000000000000000000000000aa"
		cpX2  = "COPY files/x /srv/a/x sha256=" + "00000000000000000000000000000000000000000000000000000000000000bb"
		cpY   = "COPY files/y /srv/b/y sha256=" + "00000000000000000000000000000000000000000000000000000000000000cc"
		exec  = `EXEC "systemctl daemon-reload"`
		check = "CHECK tcp 127.0.0.1:80"
	)
	tests := []struct {
		name     string
		old, new []string
		want     string // ldKinds of the script
	}{
		{"empty/empty", nil, nil, ""},
		{"empty/non-empty", nil, []string{mkA, cpX}, "++"},
		{"non-empty/empty", []string{mkA, cpX}, []string{}, "--"},
		{"identical", []string{mkA, cpX, mkB}, []string{mkA, cpX, mkB}, "==="},
		{"insert at start", []string{cpX, mkB}, []string{mkA, cpX, mkB}, "+=="},
		{"insert inside", []string{mkA, mkB}, []string{mkA, cpX, cpY, mkB}, "=++="},
		{"insert at end", []string{mkA}, []string{mkA, cpX}, "=+"},
		{"delete inside", []string{mkA, cpX, cpY, mkB}, []string{mkA, mkB}, "=--="},
		{"delete all but one", []string{mkA, cpX, mkB}, []string{cpX}, "-=-"},
		{"changed line", []string{mkA, cpX, mkB}, []string{mkA, cpX2, mkB}, "=-+="},
		{"moved to end", []string{mkA, mkB, cpX, cpY}, []string{mkB, cpX, cpY, mkA}, "-===+"},
		{"moved back", []string{mkA, mkB, cpX, cpY}, []string{mkA, cpY, mkB, cpX}, "=+==-"},
		{"changes at both ends", []string{mkA, cpX, cpY, mkB}, []string{exec, cpX, cpY, check}, "-+==-+"},
		{"nothing common", []string{mkA, cpX}, []string{mkB, cpY, check}, "--+++"},
		{"repeated lines kept", []string{mkA, exec, cpX, exec, mkB}, []string{mkA, exec, cpX2, exec, mkB}, "==-+=="},
		{"repeated line added", []string{mkA, exec, mkB}, []string{mkA, exec, cpX, exec, mkB}, "==++="},
		{"repeated line removed", []string{exec, mkA, exec, mkB, exec}, []string{exec, mkA, mkB, exec}, "==-=="},
		// No line is unique on both sides: go-diff pairs them.
		{"only repeated lines", []string{exec, check, exec, check}, []string{check, exec, check, exec}, "-===+"},
		{"repeated around unique", []string{exec, exec, mkA, check, check}, []string{check, mkA, exec}, "--+=--+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edits := DiffLines(tt.old, tt.new)
			if err := ldCheck(tt.old, tt.new, edits); err != nil {
				t.Fatalf("%v\n%v", err, edits)
			}
			if got := ldKinds(edits); got != tt.want {
				t.Errorf("DiffLines = %q, want %q", got, tt.want)
			}
		})
	}
	if DiffLines(nil, nil) != nil {
		t.Error("DiffLines(nil, nil) is not nil")
	}
}

func TestEditKindString(t *testing.T) {
	for k, want := range map[EditKind]string{Equal: "equal", Delete: "delete", Insert: "insert", 7: "EditKind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// ldMutate returns a copy of lines with up to k random changes: a line
// replaced, inserted, deleted or moved; fresh() makes new lines.
func ldMutate(rng *rand.Rand, lines []string, k int, fresh func() string) []string {
	out := slices.Clone(lines)
	for range rng.IntN(k + 1) {
		switch op := rng.IntN(4); {
		case op == 0 && len(out) > 0:
			out[rng.IntN(len(out))] = fresh()
		case op == 1:
			out = slices.Insert(out, rng.IntN(len(out)+1), fresh())
		case op == 2 && len(out) > 0:
			i := rng.IntN(len(out))
			out = slices.Delete(out, i, i+1)
		case op == 3 && len(out) > 0:
			i := rng.IntN(len(out))
			s := out[i]
			out = slices.Delete(out, i, i+1)
			out = slices.Insert(out, rng.IntN(len(out)+1), s)
		}
	}
	return out
}

// TestDiffLinesRandom checks the scripts of thousands of random pairs, and
// reports how they compare with go-diff's plain line mode.
func TestDiffLinesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	// Per kind of pair: how many times our Equal count is smaller than
	// go-diff's, the same, larger.
	versus := map[string]*[3]int{}
	check := func(kind string, old, new []string, unique bool) {
		t.Helper()
		edits := DiffLines(old, new)
		if err := ldCheck(old, new, edits); err != nil {
			t.Fatalf("%s: %v\nold %q\nnew %q\n%s", kind, err, old, new, ldKinds(edits))
		}
		if again := DiffLines(slices.Clone(old), slices.Clone(new)); !slices.Equal(edits, again) {
			t.Fatalf("%s: not deterministic\nold %q\nnew %q\n%s\n%s", kind, old, new, ldKinds(edits), ldKinds(again))
		}
		eq := ldEqual(edits)
		if lcs := ldLCS(old, new); eq > lcs {
			t.Fatalf("%s: %d equal lines, more than the LCS %d", kind, eq, lcs)
		}
		if a := ldAnchorLCS(old, new); eq < a {
			t.Fatalf("%s: %d equal lines, fewer than the LCS of the anchors %d\nold %q\nnew %q", kind, eq, a, old, new)
		}
		if unique {
			// Every common line is an anchor, so patience finds an LCS.
			if lcs := ldLCS(old, new); eq != lcs {
				t.Fatalf("%s: %d equal lines, want the LCS %d\nold %q\nnew %q", kind, eq, lcs, old, new)
			}
		}
		if versus[kind] == nil {
			versus[kind] = &[3]int{}
		}
		switch g := ldGoDiffEqual(old, new); {
		case eq < g:
			versus[kind][0]++
		case eq == g:
			versus[kind][1]++
		default:
			versus[kind][2]++
		}
	}

	// Small alphabets: lines repeat a lot.
	for range 4000 {
		alpha := 1 + rng.IntN(6)
		line := func() string { return fmt.Sprintf("EXEC x%d", rng.IntN(alpha)) }
		old := make([]string, rng.IntN(25))
		for i := range old {
			old[i] = line()
		}
		var new []string
		if rng.IntN(2) == 0 {
			new = make([]string, rng.IntN(25))
			for i := range new {
				new[i] = line()
			}
		} else {
			new = ldMutate(rng, old, 6, line)
		}
		check("repeated", old, new, false)
	}

	// Journals of unique lines, and the same with repeated EXEC and CHECK
	// steps mixed in.
	for _, mixed := range []bool{false, true} {
		for range 3000 {
			next := 0
			line := func() string {
				if mixed && rng.IntN(4) == 0 {
					return []string{"EXEC a", "EXEC b", "CHECK tcp :80"}[rng.IntN(3)]
				}
				next++
				return fmt.Sprintf("MKDIR /srv/d%d", next)
			}
			old := make([]string, rng.IntN(40))
			for i := range old {
				old[i] = line()
			}
			new := ldMutate(rng, old, 1+rng.IntN(10), line)
			if !mixed && rng.IntN(4) == 0 {
				rng.Shuffle(len(new), func(i, j int) { new[i], new[j] = new[j], new[i] })
			}
			check(fmt.Sprintf("mixed=%v", mixed), old, new, !mixed)
		}
	}
	for _, kind := range []string{"repeated", "mixed=false", "mixed=true"} {
		v := versus[kind]
		t.Logf("%s: equal lines against go-diff's plain line mode: fewer in %d pairs, as many in %d, more in %d",
			kind, v[0], v[1], v[2])
	}
}

func TestDiffLinesBenchJournals(t *testing.T) {
	old, new := GenDiffJournals(7, 20_000, 0.01)
	old2, new2 := GenDiffJournals(7, 20_000, 0.01)
	if !slices.Equal(old, old2) || !slices.Equal(new, new2) {
		t.Fatal("GenDiffJournals is not deterministic")
	}
	edits := DiffLines(old, new)
	if err := ldCheck(old, new, edits); err != nil {
		t.Fatal(err)
	}
	changed := len(old) + len(new) - 2*ldEqual(edits)
	if changed < 200 || changed > 800 {
		t.Errorf("%d changed lines in 20k at 1%%", changed)
	}
	if got, want := ldEqual(edits), ldGoDiffEqual(old, new); got < want {
		t.Errorf("%d equal lines, go-diff finds %d", got, want)
	}
}

func FuzzDiffLines(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		old, new := strings.Split(a, "\n"), strings.Split(b, "\n")
		edits := DiffLines(old, new)
		if err := ldCheck(old, new, edits); err != nil {
			t.Fatalf("%v\nold %q\nnew %q\n%s", err, old, new, ldKinds(edits))
		}
		if again := DiffLines(old, new); !slices.Equal(edits, again) {
			t.Fatalf("not deterministic\nold %q\nnew %q", old, new)
		}
	})
}

// TestDiffLinesGoDiffManyLines sends go-diff a gap of more distinct lines than
// there are runes below the surrogates, none unique on both sides.
func TestDiffLinesGoDiffManyLines(t *testing.T) {
	const k = 60_000
	a := make([]string, k)
	for i := range a {
		a[i] = fmt.Sprintf("EXEC \"echo %d\"", i)
	}
	old := slices.Concat([]string{"MKDIR /a"}, a, a, []string{"MKDIR /b"})
	new := slices.Concat([]string{"MKDIR /c"}, a, a, []string{"MKDIR /d"})
	new[1+k+k/2] = a[k/2+1] // now once in new, and a[k/2+1] three times
	edits := DiffLines(old, new)
	if err := ldCheck(old, new, edits); err != nil {
		t.Fatal(err)
	}
	if got, want := ldEqual(edits), 2*k-1; got != want {
		t.Errorf("%d equal lines, want %d", got, want)
	}
}
