package journal

import (
	"hash/maphash"
	"math"
	"strings"
)

// PlanPair computes the plan that moves a host from the journal oldText to
// the journal newText, as MakePlan does from the two files parsed in full,
// but parses only the lines whose text is not in both files, and the few
// unchanged lines the plan runs again. It is how `journal diff` compares two
// large journals that are mostly the same text.
//
// The lines are interned by their bytes and diffed as ids (DiffLines on
// ids). That gives the script of the canonical forms as long as two lines
// have equal canonical forms exactly when their bytes are equal, and PlanPair
// makes sure that holds: every line of a text in one file only is parsed, and
// so is every line whose op and positional arguments (as written, which is
// their canonical value when no word is quoted) are those of a line of
// another text; lines of equal canonical forms then share an id. Lines of
// other texts cannot have the canonical form of another line: a canonical
// form begins with the op and the positional arguments.
//
// ok is false when a line it parses has an error, when either file holds an
// INCLUDE, or a file is too large to index with int32: then nothing is
// returned and the caller parses the files in full (Load and MakePlan),
// which reports every error or expands the INCLUDEs. One check of the full
// parse is left out: a malformed line whose text is in both files and that
// the plan does not use is not seen (the old journal was checked when it was
// applied, and the line did not change). The steps of the plan hold
// substrings of the texts, which must not change while the plan is in use.
func PlanPair(oldFile, oldText, newFile, newText string) (plan *Plan, ok bool) {
	if len(oldText) >= math.MaxInt32 || len(newText) >= math.MaxInt32 {
		return nil, false
	}
	var old, new pairSide
	done := make(chan bool)
	go func() { done <- old.split(oldText) }()
	okNew := new.split(newText)
	if okOld := <-done; !okOld || !okNew {
		return nil, false
	}
	n, m := len(old.lines), len(new.lines)
	if n+m >= math.MaxInt32 {
		return nil, false
	}

	// Intern the lines by their bytes: id = the position of the first line
	// of the same text, old then new.
	in := ldInterner{old: old.lines, new: new.lines}
	in.init(max(n, m))
	flags := make([]uint8, n+m) // by id
	var keys pairKeys
	keys.init(max(n, m))
	intern := func(p int32, side uint8) int32 {
		id := in.id(p)
		if id == p {
			keys.add(in.line(p), p, flags)
		}
		flags[id] |= side
		return id
	}
	a, b := make([]int32, n), make([]int32, m)
	for i := range max(n, m) {
		if i < n {
			a[i] = intern(int32(i), pairInOld)
		}
		if i < m {
			b[i] = intern(int32(n+i), pairInNew)
		}
	}

	// Parse the texts whose canonical form may be that of another text:
	// first the hard ones, whose keys are known only from their steps,
	// then all of them, merging the ids of equal canonical forms.
	po, pn := parser{file: oldFile}, parser{file: newFile}
	parseID := func(id int32) (Step, bool) {
		if int(id) < n {
			return po.parseLine(int(old.lineNo[id]), old.lines[id])
		}
		return pn.parseLine(int(new.lineNo[int(id)-n]), new.lines[int(id)-n])
	}
	hardCanon := map[int32]string{}
	for id := range int32(n + m) {
		if flags[id]&pairHard == 0 {
			continue
		}
		s, ok := parseID(id)
		if !ok {
			return nil, false
		}
		hardCanon[id] = s.Canonical()
		keys.mark(keys.hash(stepKey(&s)), flags)
	}
	canon := map[string]int32{}
	alias := map[int32]int32{}
	for id := range int32(n + m) {
		f := flags[id]
		if f&(pairInOld|pairInNew) == 0 || (f&pairCanon == 0 && f&(pairInOld|pairInNew) == pairInOld|pairInNew) {
			continue // not an id, or a text of both files whose key is its own
		}
		c, hard := hardCanon[id]
		if !hard {
			s, ok := parseID(id)
			if !ok {
				return nil, false
			}
			c = s.Canonical()
		}
		if first, dup := canon[c]; dup {
			alias[id] = first
		} else {
			canon[c] = id
		}
	}
	hardCanon, canon = nil, nil
	if len(alias) > 0 {
		for _, ids := range [][]int32{a, b} {
			for i, id := range ids {
				if to, ok := alias[id]; ok {
					ids[i] = to
				}
			}
		}
	}
	flags, keys = nil, pairKeys{}
	in = ldInterner{}

	// The diff, and a step for each removed and added line.
	edits := diffIDs(a, b, n+m)
	a, b = nil, nil
	var pi planInput
	nDel := 0
	for _, e := range edits {
		if e.Kind == Delete {
			nDel++
		}
	}
	steps := make([]Step, len(edits))
	pi.removed = make([]*Step, 0, nDel)
	pi.added = make([]*Step, 0, len(edits)-nDel)
	pi.addedAt = make([]int, 0, len(edits)-nDel)
	for k, e := range edits {
		var ok bool
		if e.Kind == Delete {
			steps[k], ok = po.parseLine(int(old.lineNo[e.Old]), old.lines[e.Old])
			pi.removed = append(pi.removed, &steps[k])
		} else {
			steps[k], ok = pn.parseLine(int(new.lineNo[e.New]), new.lines[e.New])
			pi.added = append(pi.added, &steps[k])
			pi.addedAt = append(pi.addedAt, e.New)
		}
		if !ok {
			return nil, false
		}
	}

	// The unchanged lines of new that the plan may run again, parsed when
	// it asks for them: a CHECK (§5.5), an owned step (§5.4).
	bad := false
	unchanged := func(want func(line string) bool, yield func(int, *Step) bool) {
		k := 0
		for j, line := range new.lines {
			if k < len(pi.addedAt) && pi.addedAt[k] == j {
				k++
				continue
			}
			if !want(line) {
				continue
			}
			s, ok := pn.parseLine(int(new.lineNo[j]), line)
			if !ok {
				bad = true
				return
			}
			if !yield(j, &s) {
				return
			}
		}
	}
	pi.checks = func(yield func(int, *Step) bool) {
		unchanged(func(line string) bool { return strings.HasPrefix(trimSpace(line), OpCheck) }, func(j int, s *Step) bool {
			return s.Op != OpCheck || yield(j, s)
		})
	}
	pi.owned = func(yield func(*Step) bool) {
		unchanged(func(line string) bool {
			return strings.Contains(line, "owner=") || strings.Contains(line, "group=")
		}, func(_ int, s *Step) bool { return yield(s) })
	}
	plan = makePlan(&pi)
	if bad || len(po.errs) > 0 || len(pn.errs) > 0 {
		return nil, false
	}
	return plan, true
}

// The flags of a text in PlanPair.
const (
	pairInOld uint8 = 1 << iota // a line of old has the text
	pairInNew                   // a line of new has the text
	pairCanon                   // its canonical form is needed: its key is another text's too
	pairHard                    // its key is known only from its parsed step
)

// pairSide is one journal of PlanPair: the text and line number of each line
// that is neither blank nor a comment.
type pairSide struct {
	lines  []string
	lineNo []int32
}

// split finds the step lines of text; false if one is an INCLUDE (or may
// be: any line whose first word begins with INCLUDE).
func (s *pairSide) split(text string) bool {
	n := strings.Count(text, "\n") + 1
	s.lines = make([]string, 0, n)
	s.lineNo = make([]int32, 0, n)
	lineNo := int32(0)
	for len(text) > 0 {
		lineNo++
		var line string
		line, text = cutLine(text)
		t := trimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.HasPrefix(t, OpInclude) {
			return false
		}
		s.lines = append(s.lines, line)
		s.lineNo = append(s.lineNo, lineNo)
	}
	return true
}

// trimSpace drops the white space (as the tokenizer sees it) that begins
// line.
func trimSpace(line string) string {
	i := 0
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	return line[i:]
}

// pairKeys is the table of the keys of the texts of PlanPair: a hash of the
// op and positional arguments of a line, as tokenize splits them. Two texts
// of equal canonical forms have equal keys (or one is hard); texts of equal
// keys are marked pairCanon. A collision of hashes only marks more texts.
type pairKeys struct {
	seed  maphash.Seed
	slots []ldSlot // tag: the top of the hash; id: the first text with it + 1
	used  int
}

func (k *pairKeys) init(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	k.seed = maphash.MakeSeed()
	k.slots = make([]ldSlot, size)
}

func (k *pairKeys) hash(key string) uint64 { return maphash.String(k.seed, key) }

// add enters the key of the text line, of id id, or marks it hard.
func (k *pairKeys) add(line string, id int32, flags []uint8) {
	key, ok := lineKey(line)
	if !ok {
		flags[id] |= pairHard | pairCanon
		return
	}
	h := k.hash(key)
	tag := uint32(h >> 32)
	mask := uint64(len(k.slots) - 1)
	for i := k.slot(tag); ; i = (i + 1) & mask {
		sl := k.slots[i]
		if sl.id == 0 {
			k.slots[i] = ldSlot{tag, uint32(id) + 1}
			if k.used++; 2*k.used > len(k.slots) {
				k.grow()
			}
			return
		}
		if sl.tag == tag {
			flags[sl.id-1] |= pairCanon
			flags[id] |= pairCanon
			return
		}
	}
}

// mark marks the text that entered the key of hash h, if any.
func (k *pairKeys) mark(h uint64, flags []uint8) {
	tag := uint32(h >> 32)
	mask := uint64(len(k.slots) - 1)
	for i := k.slot(tag); k.slots[i].id != 0; i = (i + 1) & mask {
		if k.slots[i].tag == tag {
			flags[k.slots[i].id-1] |= pairCanon
			return
		}
	}
}

// grow doubles the table. The slots keep only the tag, the top half of
// the hash, so the tag is also what places an entry (slot), which works for
// tables of up to 2^32 slots.
func (k *pairKeys) grow() {
	old := k.slots
	k.slots = make([]ldSlot, 2*len(old))
	for _, sl := range old {
		if sl.id == 0 {
			continue
		}
		i := k.slot(sl.tag)
		for k.slots[i].id != 0 {
			i = (i + 1) & uint64(len(k.slots)-1)
		}
		k.slots[i] = sl
	}
}

// slot is where the probe for tag starts.
func (k *pairKeys) slot(tag uint32) uint64 { return uint64(tag) & uint64(len(k.slots)-1) }

// lineKey returns the op and positional words of a step line joined by
// single spaces, which is "OP ARG ..." of its step (stepKey) when the line
// parses; ok is false when that cannot be told without parsing it: a quote
// among those words, or white space other than one space between two.
func lineKey(line string) (key string, ok bool) {
	i, n := 0, len(line)
	for i < n && isSpace(line[i]) {
		i++
	}
	start, end := i, i
	single := true // the white space before this word is one space
	for i < n {
		for ; i < n && !isSpace(line[i]); i++ {
			switch line[i] {
			case '"':
				return "", false
			case '=':
				return line[start:end], true
			}
		}
		if !single {
			return "", false
		}
		end = i
		ws := i
		for i < n && isSpace(line[i]) {
			i++
		}
		if i == n || line[i] == '#' {
			break
		}
		single = i-ws == 1 && line[ws] == ' '
	}
	return line[start:end], true
}

// stepKey is lineKey of a parsed step: its op and positional arguments.
func stepKey(s *Step) string {
	if len(s.Args) == 0 {
		return s.Op
	}
	return s.Op + " " + strings.Join(s.Args, " ")
}
