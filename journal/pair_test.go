package journal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"
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

// checkPlanPair fails the test unless PlanPair gives the plan MakePlan gives
// for the two files parsed in full (every op, removed and added step, with
// positions and source comments), whenever Parse finds no error and no
// INCLUDE in either; and unless it declines (ok false) when either file holds
// an INCLUDE or an error on a line whose text is not a line of the other
// file. An error only on lines that both files hold unchanged is the one
// check PlanPair may leave out: it then may decline or not.
func checkPlanPair(t *testing.T, old, new string) {
	t.Helper()
	wantOld, errOld := Parse("old.journal", []byte(old))
	wantNew, errNew := Parse("new.journal", []byte(new))
	got, ok := PlanPair("old.journal", old, "new.journal", new, nil)
	if len(old)+len(new) > 1<<16 {
		// Through file mappings whose pages are dropped as PlanPair
		// releases them: the same answer.
		var okMapped bool
		got, okMapped = planPairMapped(t, old, new)
		if okMapped != ok {
			t.Fatalf("PlanPair ok = %v through mappings, %v on strings", okMapped, ok)
		}
	}
	if hasInclude(wantOld.Steps) || hasInclude(wantNew.Steps) {
		if ok {
			t.Fatal("PlanPair ok with an INCLUDE")
		}
		return
	}
	if errOld != nil || errNew != nil {
		if ok && (!onlySharedErrors(old, new, errOld) || !onlySharedErrors(new, old, errNew)) {
			t.Fatalf("PlanPair ok despite errors on changed lines: %v / %v", errOld, errNew)
		}
		return
	}
	if !ok {
		t.Fatal("PlanPair declined two journals without errors or INCLUDE")
	}
	want := renderPlanFull(MakePlan(wantOld.Steps, wantNew.Steps))
	if g := renderPlanFull(got); g != want {
		t.Fatalf("plan through PlanPair:\n%s\nwant (Parse, MakePlan):\n%s", g, want)
	}
}

// planPairMapped runs PlanPair on the texts written to files and mapped,
// dropping the pages of the parts it releases, and checks that every part
// released is of one of the texts.
func planPairMapped(t *testing.T, old, new string) (*Plan, bool) {
	t.Helper()
	texts := [2]string{}
	for i, text := range []string{old, new} {
		name := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		data, err := syscall.Mmap(int(f.Fd()), 0, len(text), syscall.PROT_READ, syscall.MAP_PRIVATE)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Munmap(data) })
		texts[i] = unsafe.String(&data[0], len(data))
	}
	// PlanPair calls release from two goroutines.
	var released atomic.Int64
	release := func(part string) {
		p := uintptr(unsafe.Pointer(unsafe.StringData(part)))
		in := func(text string) bool {
			b := uintptr(unsafe.Pointer(unsafe.StringData(text)))
			return p >= b && p+uintptr(len(part)) <= b+uintptr(len(text))
		}
		if !in(texts[0]) && !in(texts[1]) {
			t.Errorf("released %d bytes outside the texts", len(part))
			return
		}
		page := uintptr(os.Getpagesize())
		skip := (page - p%page) % page
		if uintptr(len(part)) < skip+page {
			return
		}
		n := (uintptr(len(part)) - skip) &^ (page - 1)
		if err := syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(part)), skip)), n), syscall.MADV_DONTNEED); err != nil {
			t.Error(err)
		}
		released.Add(int64(len(part)))
	}
	p, ok := PlanPair("old.journal", texts[0], "new.journal", texts[1], release)
	if ok && len(old)+len(new) > 4*pairReleaseStep && released.Load() == 0 {
		t.Error("nothing released")
	}
	return p, ok
}

// onlySharedErrors reports whether every error of err, in text, is on a
// line whose text is also a line of other.
func onlySharedErrors(text, other string, err error) bool {
	if err == nil {
		return true
	}
	lines := strings.Split(text, "\n")
	shared := map[string]bool{}
	for _, l := range strings.Split(other, "\n") {
		shared[l] = true
	}
	for _, e := range Findings(err) {
		if !shared[lines[e.Pos.Line-1]] {
			return false
		}
	}
	return true
}

// renderPlanFull is renderPlanPos with every removed and added step.
func renderPlanFull(p *Plan) string {
	var b strings.Builder
	b.WriteString(renderPlanPos(p))
	for _, s := range p.Removed {
		fmt.Fprintf(&b, "removed %s %s\n", s.Pos, s)
	}
	for _, s := range p.Added {
		fmt.Fprintf(&b, "added %s %s\n", s.Pos, s)
	}
	return b.String()
}

// TestLineKeyGenerated checks lineKey against the parser on generated
// lines with quotes, '=', white space and control characters at every
// place of long lines (lineKey reads eight bytes at a time): a key is
// either refused or the op and positional arguments of the step.
func TestLineKeyGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{" ", "  ", "\t", "\"", "=", "#", " #", "a", "/srv", "/x/y/z", "-", "\x01", "é", "mode=0700", "\"a b\"", "0123456789"}
	ops := []string{"MKDIR ", "COPY ", "SYMLINK ", "RM ", "EXEC ", "CHECK file ", "SYSTEMD-RESTART ", " MKDIR "}
	for range 20000 {
		var b strings.Builder
		b.WriteString(ops[rng.IntN(len(ops))])
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		checkLineKey(t, b.String())
	}
}

// checkLineKey fails the test if lineKey(line) gives a key other than
// stepKey of the step the line parses to.
func checkLineKey(t *testing.T, line string) {
	t.Helper()
	key, ok := lineKey(line)
	if !ok {
		return
	}
	s, err := ParseStep(Pos{File: "k", Line: 1}, line)
	if err != nil {
		return
	}
	if stepKey(&s) != key {
		t.Fatalf("lineKey(%q) = %q, the step's is %q", line, key, stepKey(&s))
	}
}

func TestPlanPairKeys(t *testing.T) {
	tests := []struct {
		line, key string
		ok        bool
	}{
		{"MKDIR /a", "MKDIR /a", true},
		{"  MKDIR /a # c", "MKDIR /a", true},
		{"MKDIR /a mode=0700", "MKDIR /a", true},
		{"MKDIR /a  mode=0700", "MKDIR /a", true},
		{"MKDIR  /a", "", false},
		{"MKDIR\t/a", "", false},
		{"MKDIR /a\t# c", "MKDIR /a", true},
		{"COPY - /a sha256=x", "COPY - /a", true},
		{`COPY "-" /a`, "", false},
		{"SYSTEMD-RELOAD", "SYSTEMD-RELOAD", true},
		{"SYSTEMD-RELOAD on=x", "SYSTEMD-RELOAD", true},
		{"SYMLINK a#b /x", "SYMLINK a#b /x", true},
		{"RM /x #", "RM /x", true},
		{"COPY files/a/b/c/d.conf /srv/app/x/y/z.conf sha256=00", "COPY files/a/b/c/d.conf /srv/app/x/y/z.conf", true},
		{"COPY files/a/b/c/d.conf /srv/app/x/y/\"z.conf", "", false},
		{"COPY files/a/b/c/d.conf /srv/app/x/y/z.conf\t # c", "COPY files/a/b/c/d.conf /srv/app/x/y/z.conf", true},
		{"COPY files/a/b/c/d.conf\t/srv/app/x/y/z.conf", "", false},
		{"SYMLINK a\x01bcdefghij /srv/app", "SYMLINK a\x01bcdefghij /srv/app", true},
	}
	for _, tt := range tests {
		key, ok := lineKey(tt.line)
		if key != tt.key || ok != tt.ok {
			t.Errorf("lineKey(%q) = %q, %v; want %q, %v", tt.line, key, ok, tt.key, tt.ok)
		}
		if !tt.ok {
			continue
		}
		if s, err := ParseStep(Pos{}, tt.line); err == nil && stepKey(&s) != key {
			t.Errorf("stepKey of %q = %q, lineKey %q", tt.line, stepKey(&s), key)
		}
	}
}

// TestPlanPairGenerated is the differential test of PlanPair against the
// full parse on generated journals with random edits: changed and removed
// and added steps, moved blocks, and unchanged steps written another way
// (other spacing, quotes, defaults, attribute order, comments), which must
// still be the same step, and repeated lines.
func TestPlanPairGenerated(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 12))
		n := 50 + rng.IntN(400)
		switch seed % 10 {
		case 9:
			n = 6000
		case 5:
			n = 30000 // released as it goes
		}
		old, new := GenDiffJournals(seed, n, 0.02+rng.Float64()*0.1)
		old, new = decorate(rng, old), decorate(rng, new)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkPlanPair(t, strings.Join(old, "\n")+"\n", strings.Join(new, "\n"))
		})
	}
}

// decorate rewrites some lines of a generated journal into other spellings
// of the same step, and adds comments, blank lines, repeated steps, owned
// steps and users whose uid changes.
func decorate(rng *rand.Rand, lines []string) []string {
	var out []string
	for _, l := range lines {
		switch rng.IntN(40) {
		case 0:
			l = strings.Replace(l, " ", "  ", 1)
		case 1:
			l = strings.Replace(l, " ", "\t", 2)
		case 2:
			if f := strings.Fields(l); len(f) > 1 && !strings.Contains(f[1], `"`) {
				f[1] = `"` + f[1] + `"`
				l = strings.Join(f, " ")
			}
		case 3:
			if strings.HasPrefix(l, "MKDIR ") && !strings.Contains(l, "mode=") {
				l += " mode=0755 owner=root"
			}
		case 4:
			if f := strings.Fields(l); len(f) > 3 && strings.Contains(f[len(f)-2], "=") && !strings.Contains(l, `"`) {
				f[len(f)-1], f[len(f)-2] = f[len(f)-2], f[len(f)-1]
				l = strings.Join(f, " ")
			}
		case 5:
			l += fmt.Sprintf(" # site.cairn:%d:3", rng.IntN(5))
		case 6:
			out = append(out, "", "# a comment", "  ")
		case 7:
			out = append(out, "SYSTEMD-RELOAD", "EXEC true")
		case 8:
			out = append(out, fmt.Sprintf("CHECK file /srv/x%d", rng.IntN(3)))
		case 9:
			out = append(out, fmt.Sprintf("USERADD u%d uid=%d", rng.IntN(3), 1000+rng.IntN(2)))
		case 10:
			out = append(out, fmt.Sprintf("MKDIR /srv/o%d owner=u%d group=g", rng.IntN(4), rng.IntN(3)))
		case 11:
			l = "   " + l
		}
		out = append(out, l)
	}
	return out
}
