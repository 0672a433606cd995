package journal

import (
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"
	"unsafe"
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
// ok is false when a line it parses has an error, a blank or comment line
// has one ('\r', invalid UTF-8), either file holds an INCLUDE, or a file is
// too large to index with int32: then nothing is returned and the caller
// parses the files in full (Load and MakePlan), which reports every error
// or expands the INCLUDEs. One check of the full
// parse is left out: a malformed line whose text is in both files and that
// the plan does not use is not seen (the old journal was checked when it was
// applied, and the line did not change). The texts must not change while
// PlanPair runs; without release, the steps of the plan hold substrings of
// them, and then they must not change while the plan is in use.
//
// release, if not nil, is called with parts of the texts that PlanPair has
// read through and will read again only for the lines it parses: a caller
// that holds the texts in file mappings can drop their pages
// (madvise MADV_DONTNEED), so that two large files need not be in memory
// whole. The parts must stay readable.
func PlanPair(oldFile, oldText, newFile, newText string, release func(text string)) (plan *Plan, ok bool) {
	if len(oldText) >= math.MaxInt32 || len(newText) >= math.MaxInt32 {
		return nil, false
	}
	var keys pairKeys
	keys.seed = maphash.MakeSeed()
	lineSeed := maphash.MakeSeed()
	old := pairSide{seed: lineSeed, keySeed: keys.seed, rel: pairReleaser{text: oldText, fn: release}}
	new := pairSide{seed: lineSeed, keySeed: keys.seed, rel: pairReleaser{text: newText, fn: release}}
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
	in := ldInterner{old: old.lines, new: new.lines, oldHash: old.hash, newHash: new.hash}
	in.init(max(n, m))
	flags := make([]uint8, n+m) // by id
	keys.init(max(n, m))
	a, b := make([]int32, n), make([]int32, m)
	old.rel.done, new.rel.done = 0, 0
	for i := range max(n, m) {
		if i&1023 == 0 {
			old.rel.behind(old.lines, i)
			new.rel.behind(new.lines, i)
		}
		if i < n {
			id := in.id(int32(i))
			if id == int32(i) {
				keys.add(old.key[i], id, flags)
			}
			flags[id] |= pairInOld
			a[i] = id
		}
		if i < m {
			p := int32(n + i)
			id := in.id(p)
			if id == p {
				keys.add(new.key[i], id, flags)
			}
			flags[id] |= pairInNew
			b[i] = id
		}
	}
	old.hash, old.key, new.hash, new.key = nil, nil, nil, nil

	// Parse the texts whose canonical form may be that of another text:
	// first the hard ones, whose keys are known only from their steps,
	// then all of them, merging the ids of equal canonical forms.
	po, pn := parser{file: oldFile}, parser{file: newFile}
	parseID := func(id int32) (Step, bool) {
		if int(id) < n {
			return old.parse(&po, int(id))
		}
		return new.parse(&pn, int(id)-n)
	}
	old.rel.done, new.rel.done = 0, 0
	hardCanon := map[int32]string{}
	for id := range int32(n + m) {
		if flags[id]&pairHard == 0 {
			continue
		}
		s, ok := parseID(id)
		if !ok {
			return nil, false
		}
		hardCanon[id] = strings.Clone(s.Canonical())
		keys.mark(keys.hash(stepKey(&s)), flags)
	}
	old.rel.done, new.rel.done = 0, 0
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
			// A copy: the map reads its keys again as it grows, which
			// would bring back the pages of the texts released.
			c = strings.Clone(s.Canonical())
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
	old.rel.done, new.rel.done = 0, 0
	for k, e := range edits {
		var ok bool
		if e.Kind == Delete {
			steps[k], ok = old.parse(&po, e.Old)
			pi.removed = append(pi.removed, &steps[k])
		} else {
			steps[k], ok = new.parse(&pn, e.New)
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
	// unchanged yields the unchanged lines of new that want takes, of
	// the lines of new numbered in lines, or of all if all is set.
	unchanged := func(lines []int32, all bool, want func(line string) bool, yield func(int, *Step) bool) {
		new.rel.done = 0
		k := 0
		if all {
			lines = nil
		}
		for t := 0; all && t < len(new.lines) || t < len(lines); t++ {
			j := t
			if !all {
				j = int(lines[t])
			}
			for k < len(pi.addedAt) && pi.addedAt[k] < j {
				k++
			}
			line := new.lines[j]
			if k < len(pi.addedAt) && pi.addedAt[k] == j || !want(line) {
				continue
			}
			s, ok := new.parse(&pn, j)
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
		unchanged(new.checks, false, func(string) bool { return true }, func(j int, s *Step) bool {
			return s.Op != OpCheck || yield(j, s)
		})
	}
	pi.owned = func(yield func(*Step) bool) {
		unchanged(nil, true, func(line string) bool {
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

// pairSide is one journal of PlanPair: the text, line number, hash and key
// of each line that is neither blank nor a comment.
type pairSide struct {
	seed, keySeed maphash.Seed
	lines         []string
	lineNo        []int32
	hash          []uint64 // maphash of the line with seed
	key           []uint64 // maphash of lineKey with keySeed; 0: hard (parse it)
	rel           pairReleaser
	checks        []int32 // the lines that may be CHECKs: they begin with CHECK
}

// parse parses line i with p, and releases the text well before it: the
// lines parsed in a row are in file order. The step holds a copy of the
// line, not the text: reading a released part of the text again maps it in
// again, and not only the page read (the kernel maps pages around a fault).
func (s *pairSide) parse(p *parser, i int) (Step, bool) {
	s.rel.behind(s.lines, i)
	line := s.lines[i]
	if s.rel.fn != nil {
		line = strings.Clone(line)
	}
	return p.parseLine(int(s.lineNo[i]), line)
}

// pairReleaser hands the parts of a text that PlanPair is done with to the
// release function of PlanPair, a few at a time.
type pairReleaser struct {
	text string
	fn   func(string)
	done int // text[:done] has been released
}

// pairReleaseStep is how many bytes a pairReleaser releases at once at least.
const pairReleaseStep = 1 << 20

// upTo releases the text before off.
func (r *pairReleaser) upTo(off int) {
	if r.fn != nil && off-r.done >= pairReleaseStep {
		r.fn(r.text[r.done:off])
		r.done = off
	}
}

// behind releases the text before lines[i], a line of it.
func (r *pairReleaser) behind(lines []string, i int) {
	if r.fn != nil && i < len(lines) {
		r.upTo(int(uintptr(unsafe.Pointer(unsafe.StringData(lines[i]))) - uintptr(unsafe.Pointer(unsafe.StringData(r.text)))))
	}
}

// split finds the step lines of text; false if one is an INCLUDE (or may
// be: any line whose first word begins with INCLUDE), or if a blank or
// comment line has an error (a '\r', invalid UTF-8), which PlanPair would
// not see otherwise.
func (s *pairSide) split(text string) bool {
	// Count the lines a part at a time, each released when counted.
	n := 1
	for off := 0; off < len(text); off += pairReleaseStep {
		n += strings.Count(text[off:min(off+pairReleaseStep, len(text))], "\n")
		s.rel.upTo(min(off+pairReleaseStep, len(text)))
	}
	s.rel.done = 0
	s.lines = make([]string, 0, n)
	s.lineNo = make([]int32, 0, n)
	s.hash = make([]uint64, 0, n)
	s.key = make([]uint64, 0, n)
	lineNo := int32(0)
	for len(text) > 0 {
		lineNo++
		if lineNo&1023 == 0 {
			s.rel.upTo(len(s.rel.text) - len(text))
		}
		var line string
		line, text = cutLine(text)
		t := trimSpace(line)
		if t == "" || t[0] == '#' {
			// Not a step, but parse checks every line for these.
			if strings.IndexByte(line, '\r') >= 0 || !utf8.ValidString(line) {
				return false
			}
			continue
		}
		if strings.HasPrefix(t, OpInclude) {
			return false
		}
		if strings.HasPrefix(t, OpCheck) {
			s.checks = append(s.checks, int32(len(s.lines)))
		}
		s.lines = append(s.lines, line)
		s.lineNo = append(s.lineNo, lineNo)
		s.hash = append(s.hash, maphash.String(s.seed, line))
		key, ok := lineKey(line)
		h := uint64(0)
		if ok {
			h = maphash.String(s.keySeed, key)
		}
		s.key = append(s.key, h)
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
	k.slots = make([]ldSlot, size)
}

func (k *pairKeys) hash(key string) uint64 { return maphash.String(k.seed, key) }

// add enters the key hash h of the text of id id, or marks the text hard
// if h is 0 (which a real key may hash to: it is then parsed for nothing).
func (k *pairKeys) add(h uint64, id int32, flags []uint8) {
	if h == 0 {
		flags[id] |= pairHard | pairCanon
		return
	}
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
	bad := false // the white space before this word is not one space
	for i < n {
		// Eight bytes at a time while none is a quote, a '=', white space
		// or a control character.
		for i+8 <= n {
			if m := swarSpecial(load64(line, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i == n {
			break
		}
		c := line[i]
		if c == '"' {
			return "", false
		}
		if c == '=' {
			return line[start:end], true
		}
		if c > ' ' || !isSpace(c) {
			i++
			continue
		}
		// White space ends a positional word.
		if bad {
			return "", false
		}
		end = i
		ws := i
		for i < n && isSpace(line[i]) {
			i++
		}
		if i == n || line[i] == '#' {
			return line[start:end], true
		}
		bad = i-ws != 1 || line[ws] != ' '
	}
	if bad {
		return "", false
	}
	return line[start:], true
}

// load64 reads the eight bytes of s at i as a little-endian number (one
// load: the compiler combines them).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// swarSpecial returns, for the eight bytes of x, a mask whose lowest set
// bit is the top bit of the first byte below '!' (white space and control
// characters), '"' or '=', or 0 if there is none. Bits above the lowest may
// be set for bytes that are none of these.
func swarSpecial(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	less := func(x, n uint64) uint64 { return (x - lo*n) & ^x & hi }
	return less(x, '!') | less(x^(lo*'"'), 1) | less(x^(lo*'='), 1)
}

// stepKey is lineKey of a parsed step: its op and positional arguments.
func stepKey(s *Step) string {
	if len(s.Args) == 0 {
		return s.Op
	}
	return s.Op + " " + strings.Join(s.Args, " ")
}
