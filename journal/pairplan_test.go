package journal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

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
	released := 0
	release := func(part string) {
		p := uintptr(unsafe.Pointer(unsafe.StringData(part)))
		in := func(text string) bool {
			b := uintptr(unsafe.Pointer(unsafe.StringData(text)))
			return p >= b && p+uintptr(len(part)) <= b+uintptr(len(text))
		}
		if !in(texts[0]) && !in(texts[1]) {
			t.Fatalf("released %d bytes outside the texts", len(part))
		}
		page := uintptr(os.Getpagesize())
		skip := (page - p%page) % page
		if uintptr(len(part)) < skip+page {
			return
		}
		n := (uintptr(len(part)) - skip) &^ (page - 1)
		if err := syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(part)), skip)), n), syscall.MADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		released += len(part)
	}
	p, ok := PlanPair("old.journal", texts[0], "new.journal", texts[1], release)
	if ok && len(old)+len(new) > 4*pairReleaseStep && released == 0 {
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
