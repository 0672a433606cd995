package journal

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // findings, in order
	}{
		{"clean", "MKDIR /a\nCOPY f /a/f sha256=" + hexA + "\nSYMLINK f /a/l\n", nil},
		{"duplicate identity", "MKDIR /a\nRM /a\n", []string{"t:2:1: duplicate identity path:/a: already managed by MKDIR at t:1:1"}},
		{"parent made later", "COPY f /a/f sha256=" + hexA + "\nMKDIR /a\n", []string{"t:1:1: parent directory /a is made by MKDIR at t:2:1, which comes later"}},
		{"beneath a link", "SYMLINK /x /a\nMKDIR /a/b\n", []string{"t:2:1: /a/b lies beneath /a, which SYMLINK at t:1:1 manages as no directory"}},
		{"through a file", "COPY f /a sha256=" + hexA + "\nRM /a/b/c\n", []string{"t:2:1: /a/b/c lies beneath /a, which COPY at t:1:1 manages as no directory"}},
		{"beneath an RM", "RM /a\nMKDIR /a/b\n", []string{"t:2:1: /a/b lies beneath /a, which RM at t:1:1 manages as no directory"}},
		{"owner created later", "MKDIR /a owner=deploy\nUSERADD deploy\n", []string{"t:1:1: owner deploy is created by USERADD at t:2:1, which comes later"}},
		{"group created later", "MKDIR /a group=web\nGROUPADD web\n", []string{"t:1:1: group web is created by GROUPADD at t:2:1, which comes later"}},
		{"user first is fine", "USERADD deploy\nMKDIR /a owner=deploy\n", nil},
		{"exec without undo warns", "EXEC true\n", []string{"t:1:1: warning: EXEC without undo: its inverse does nothing"}},
		{"exec and check repeat", "EXEC true undo=true\nEXEC true undo=true\nCHECK file /a\nCHECK file /a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse("t", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range Check(j.Steps) {
				got = append(got, f.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("top.journal", "MKDIR /a\nINCLUDE sub/web.journal\nRM /z\n")
	write("sub/web.journal", "MKDIR /a/web\nINCLUDE more.journal\n")
	write("sub/more.journal", "RM /a/web/old # web.cairn:3:1\n")
	j, err := LoadFile(filepath.Join(dir, "top.journal"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range j.Steps {
		got = append(got, s.Canonical()+" @"+filepath.Base(s.Pos.File)+":"+strconv.Itoa(s.Pos.Line))
	}
	want := []string{"MKDIR /a @top.journal:1", "MKDIR /a/web @web.journal:1", "RM /a/web/old @more.journal:1", "RM /z @top.journal:3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("expanded:\n got %v\nwant %v", got, want)
	}

	write("cyc/a.journal", "INCLUDE b.journal\n")
	write("cyc/b.journal", "RM /x\nINCLUDE a.journal\n")
	_, err = LoadFile(filepath.Join(dir, "cyc/a.journal"))
	if err == nil || !strings.Contains(err.Error(), "b.journal:2:1: INCLUDE cycle: ") || !strings.Contains(err.Error(), "a.journal -> ") {
		t.Errorf("cycle error = %v", err)
	}

	write("missing.journal", "RM /x\nINCLUDE nope.journal\n")
	_, err = LoadFile(filepath.Join(dir, "missing.journal"))
	if err == nil || !strings.Contains(err.Error(), "missing.journal:2:1: INCLUDE nope.journal: cannot read") {
		t.Errorf("missing include error = %v", err)
	}

	write("bad/top.journal", "INCLUDE sub.journal\nRM x\n")
	write("bad/sub.journal", "MKDIR y\n")
	_, err = LoadFile(filepath.Join(dir, "bad/top.journal"))
	if l := Findings(err); len(l) != 2 {
		t.Errorf("want both files' errors, got %v", err)
	}
}

// TestCheckDeepPaths checks the findings about ancestors on paths at the
// limits: MKDIRs nested to the deepest path allowed, in order and out of
// order, and a link far up their chain. (BenchmarkCheckNested shows that the
// checks cost O(total path bytes).)
func TestCheckDeepPaths(t *testing.T) {
	data := nestedJournal(MaxPath / 2)
	j, err := Parse("t", data)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(j.Steps); len(errs) != 0 {
		t.Fatalf("nested MKDIRs in order: %v", errs)
	}
	n := len(j.Steps)
	last := j.Steps[n-1].Object()
	if len(last) != MaxPath-1 {
		t.Fatalf("deepest path is %d bytes", len(last))
	}

	// The deepest MKDIR first: its parent comes later; every other step
	// is fine.
	steps := append([]Step{j.Steps[n-1]}, j.Steps[:n-1]...)
	errs := Check(steps)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "parent directory "+last[:len(last)-2]+" is made by MKDIR at t:"+strconv.Itoa(n-1)+":1, which comes later") {
		t.Fatalf("deepest MKDIR first: %v", errs)
	}

	// A link at depth 10 and an RM at depth 20: everything beneath 20 is
	// reported against the RM (the nearest), 11 to 20 against the link.
	steps = append([]Step(nil), j.Steps...)
	link, err := ParseStep(Pos{File: "t", Line: 10, Col: 1}, "SYMLINK /x "+steps[9].Object())
	if err != nil {
		t.Fatal(err)
	}
	rm, err := ParseStep(Pos{File: "t", Line: 20, Col: 1}, "RM "+steps[19].Object())
	if err != nil {
		t.Fatal(err)
	}
	steps[9], steps[19] = link, rm
	errs = Check(steps)
	if len(errs) != n-10 {
		t.Fatalf("%d findings, want %d", len(errs), n-10)
	}
	for _, e := range errs {
		want := "which SYMLINK at t:10:1 manages as no directory"
		if e.Pos.Line > 20 {
			want = "which RM at t:20:1 manages as no directory"
		}
		if !strings.Contains(e.Msg, want) {
			t.Fatalf("%v: want %q", e, want)
		}
	}
}

func TestPathTree(t *testing.T) {
	var tr PathTree[int]
	for i, p := range []string{"/a", "/a/b/c", "/a/bc", "/x/y", "/a/b/c/d"} {
		tr.Set(p, i)
	}
	tr.Set("/a", 10) // again
	if tr.Len() != 5 {
		t.Errorf("Len = %d", tr.Len())
	}
	for p, want := range map[string]int{"/a": 10, "/a/b/c": 1, "/a/b": -1, "/a/bc": 2, "/x": -1, "/q": -1} {
		v, ok := tr.Get(p)
		if !ok {
			v = -1
		}
		if v != want {
			t.Errorf("Get(%s) = %d, want %d", p, v, want)
		}
	}
	var got []string
	for a, v := range tr.Ancestors("/a/b/c/d/e") {
		got = append(got, a+"="+strconv.Itoa(v))
	}
	if strings.Join(got, " ") != "/a=10 /a/b/c=1 /a/b/c/d=4" {
		t.Errorf("Ancestors = %v", got)
	}
	for a := range tr.Ancestors("/a") {
		t.Errorf("/a has ancestor %s", a)
	}
	for a := range tr.Ancestors("/a/b/c") {
		if a != "/a" {
			t.Errorf("/a/b/c has ancestor %s", a)
		}
		break
	}
	tr.Clear()
	if _, ok := tr.Get("/a"); ok || tr.Len() != 0 {
		t.Error("Clear left paths")
	}
}
