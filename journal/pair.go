package journal

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sort"
	"strings"
	"unicode/utf8"
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
// makes sure that holds. The interner looks a line up by its key, its op and
// positional arguments as written (lineKey), which are their canonical
// values when no word is quoted; a canonical form begins with them, so two
// lines of equal canonical forms have one key (or one is hard: quoted, or
// spaced otherwise than by single spaces, and then parsed for its key).
// Every text of a key that several texts share is parsed, as is every text
// of one file only, and the ids of equal canonical forms are merged; the
// other texts are parsed only if the plan needs their steps.
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
// read through in one pass; the next pass reads them again (pairing the
// lines reads both texts whole once more after cutting them into lines),
// and the last ones only for the lines they parse. A caller that holds the
// texts in file mappings can drop their pages (madvise MADV_DONTNEED), so
// that two large files need not be in memory whole. The parts must stay
// readable, and release may be called from two goroutines at once.
func PlanPair(oldFile, oldText, newFile, newText string, release func(text string)) (plan *Plan, ok bool) {
	if len(oldText) >= math.MaxInt32 || len(newText) >= math.MaxInt32 {
		return nil, false
	}
	var in pairInterner
	in.seed = maphash.MakeSeed()
	old := pairSide{seed: in.seed, text: oldText, rel: pairReleaser{text: oldText, fn: release}}
	new := pairSide{seed: in.seed, text: newText, rel: pairReleaser{text: newText, fn: release}}
	a, b, flags, ok := in.intern(&old, &new)
	if !ok {
		return nil, false
	}
	n, nIDs := len(a), in.ids()

	// Parse the texts whose canonical form may be that of another text:
	// first the hard ones, whose keys are known only from their steps,
	// then all of them, merging the ids of equal canonical forms.
	po, pn := parser{file: oldFile}, parser{file: newFile}
	// The steps parsed here, by their line's position in old then new:
	// most are those of removed and added lines, which the plan needs
	// again.
	parsed := map[int32]Step{}
	parseID := func(id int32) (Step, bool) {
		p := in.pos(id)
		var s Step
		var ok bool
		if int(p) < n {
			s, ok = old.parse(&po, int(p))
		} else {
			s, ok = new.parse(&pn, int(p)-n)
		}
		if ok {
			parsed[p] = s
		}
		return s, ok
	}
	old.rel.done, new.rel.done = 0, 0
	hardCanon := map[int32]string{}
	for id := range int32(nIDs) {
		if flags[id]&pairHard == 0 {
			continue
		}
		s, ok := parseID(id)
		if !ok {
			return nil, false
		}
		hardCanon[id] = strings.Clone(s.Canonical())
		in.mark(in.hash(stepKey(&s)), flags)
	}
	old.rel.done, new.rel.done = 0, 0
	canon := map[string]int32{}
	alias := map[int32]int32{}
	for id := range int32(nIDs) {
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
	hardCanon, canon, in = nil, nil, pairInterner{}
	if len(alias) > 0 {
		for _, ids := range [][]int32{a, b} {
			for i, id := range ids {
				if to, ok := alias[id]; ok {
					ids[i] = to
				}
			}
		}
	}
	flags = nil

	// The diff, and a step for each removed and added line.
	edits := diffIDs(a, b, nIDs)
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
	// The step of the line at position p of old then new: the one parsed
	// above, or parsed now.
	step := func(side *pairSide, pr *parser, p, i int) (Step, bool) {
		if s, ok := parsed[int32(p)]; ok {
			return s, true
		}
		return side.parse(pr, i)
	}
	for k, e := range edits {
		var ok bool
		if e.Kind == Delete {
			steps[k], ok = step(&old, &po, e.Old, e.Old)
			pi.removed = append(pi.removed, &steps[k])
		} else {
			steps[k], ok = step(&new, &pn, n+e.New, e.New)
			pi.added = append(pi.added, &steps[k])
			pi.addedAt = append(pi.addedAt, e.New)
		}
		if !ok {
			return nil, false
		}
	}
	parsed = nil

	// The unchanged lines of new that the plan may run again, parsed when
	// it asks for them: a CHECK (§5.5), an owned step (§5.4).
	bad := false
	// unchanged yields the unchanged lines of new that want takes, of
	// the lines of new numbered in lines, or of all if all is set.
	unchanged := func(lines []int32, all bool, want func(line string) bool, yield func(int, *Step) bool) {
		new.rel.done = 0
		k := 0
		for t := 0; all && t < len(new.spans) || t < len(lines); t++ {
			j := t
			if !all {
				j = int(lines[t])
			}
			if t&1023 == 0 {
				new.releaseBehind(j)
			}
			for k < len(pi.addedAt) && pi.addedAt[k] < j {
				k++
			}
			line := new.line(j)
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

// pairSide is one journal of PlanPair: the text, and the place, line
// number and key of each line that is neither blank nor a comment. It holds
// no pointers but the text's: the collector need not scan its slices of
// 100,000s of lines (scanning reads their pages before they are written,
// and a write to a page read first costs a flush of the TLBs of all cores).
type pairSide struct {
	seed  maphash.Seed
	text  string
	spans []lineSpan
	// jumps holds, for each step line after a blank or comment line, its
	// index and line number: the lines between two jumps are numbered
	// in a row.
	jumps []lineJump
	key   []uint64 // keyHash of each line, of old only

	rel    pairReleaser
	checks []int32 // the lines that may be CHECKs: they begin with CHECK
}

// parse parses line i with p, and releases the text well before it: the
// lines parsed in a row are in file order. The step holds a copy of the
// line, not the text: reading a released part of the text again maps it in
// again, and not only the page read (the kernel maps pages around a fault).
func (s *pairSide) parse(p *parser, i int) (Step, bool) {
	s.releaseBehind(i)
	line := s.line(i)
	if s.rel.fn != nil {
		line = strings.Clone(line)
	}
	return p.parseLine(s.lineNo(i), line)
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

// lineSpan is where a line is in its text: text[start:end].
type lineSpan struct{ start, end uint32 }

// lineJump is a step line whose line number is not the one after that of
// the step line before: its index and its line number.
type lineJump struct{ index, lineNo int32 }

// lineNo returns the line number of step line i.
func (s *pairSide) lineNo(i int) int {
	k := sort.Search(len(s.jumps), func(k int) bool { return int(s.jumps[k].index) > i })
	if k == 0 {
		return i + 1
	}
	j := s.jumps[k-1]
	return int(j.lineNo) + i - int(j.index)
}

// line returns step line i.
func (s *pairSide) line(i int) string {
	sp := s.spans[i]
	return s.text[sp.start:sp.end]
}

// releaseBehind releases the text before step line i, if there is one.
func (s *pairSide) releaseBehind(i int) {
	if s.rel.fn != nil && i >= 0 && i < len(s.spans) {
		s.rel.upTo(int(s.spans[i].start))
	}
}

// split finds the step lines of text, and their keys if keys is set;
// false if one is an INCLUDE (or may be: any line whose first word begins
// with INCLUDE), or if a blank or comment line has an error (a '\r',
// invalid UTF-8), which PlanPair would not see otherwise.
func (s *pairSide) split(keys bool) bool {
	text := s.text
	// Room for the lines as many as the first 64 KiB promise, and a
	// little more: counting them all would read the text once more.
	sample := text[:min(len(text), 1<<16)]
	n := 16
	if len(sample) > 0 {
		n += int(float64(len(text)) * 1.05 * float64(strings.Count(sample, "\n")+1) / float64(len(sample)))
	}
	s.spans = make([]lineSpan, 0, n)
	if keys {
		s.key = make([]uint64, 0, n)
	}
	lineNo, nextNo := int32(0), int32(1) // nextNo: the number of a step line after the last
	for start := 0; start < len(text); {
		lineNo++
		if lineNo&1023 == 0 {
			s.rel.upTo(start)
		}
		end := len(text)
		next := end
		if i := strings.IndexByte(text[start:], '\n'); i >= 0 {
			end = start + i
			next = end + 1
		}
		line := text[start:end]
		sp := lineSpan{uint32(start), uint32(end)}
		start = next
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
			s.checks = append(s.checks, int32(len(s.spans)))
		}
		if lineNo != nextNo {
			s.jumps = append(s.jumps, lineJump{int32(len(s.spans)), lineNo})
		}
		nextNo = lineNo + 1
		s.spans = append(s.spans, sp)
		if keys {
			s.key = append(s.key, keyHash(s.seed, line))
		}
	}
	return true
}

// keyHash returns the hash of the lineKey of line, its lowest bit clear,
// or if the line is hard (lineKey cannot tell its key) the hash of the
// line, its lowest bit set.
func keyHash(seed maphash.Seed, line string) uint64 {
	if key, ok := lineKey(line); ok {
		return maphash.String(seed, key) &^ 1
	}
	return maphash.String(seed, line) | 1
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

// pairInterner gives each line of PlanPair its id, the position of the first
// line of the same text (old then new), by the key of the line: it is an
// open-addressing table of the first text of each key, and a map of the
// other texts of keys that several texts share. All the texts of a shared
// key are marked pairCanon, and the hard ones (keyed by their whole text)
// pairHard: those are the texts PlanPair parses to tell whether they are
// the same step. Only the top half of a key's hash (the tag) is kept and
// compared; two keys of one tag only mark more texts.
type pairInterner struct {
	seed  maphash.Seed
	n     int // lines of old
	sides [2]*pairSide
	slots []ldSlot // tag, and the id of the first text + 1
	used  int
	// newPos holds the position in new of the first line of each text of
	// new only, by id - n.
	newPos []int32
	other  map[string]int32 // the other texts of shared keys, copied
}

// intern gives the lines of old and of new their ids (a and b), and the
// flags of each id. Each file is split on its own core; then one core
// enters the lines of old in the table while the other pairs the lines of
// new with the lines of old of the same text (pairLines); last, the lines
// of new left unpaired are looked up. Only those and the lines of old need
// a key: a paired line's id is its twin's. false if split finds a file
// PlanPair cannot do.
func (in *pairInterner) intern(old, new *pairSide) (a, b []int32, flags []uint8, ok bool) {
	oldSplit, newSplit, oldDone := make(chan bool, 1), make(chan bool, 1), make(chan bool, 1)
	go func() {
		ok := old.split(true)
		oldSplit <- ok
		if ok = <-newSplit && ok; !ok {
			oldDone <- false
			return
		}
		n, m := len(old.spans), len(new.spans)
		in.init(n, n, old, new)
		flags = writable(make([]uint8, n+m)) // by id; n + the texts of new only at most
		a = make([]int32, n)
		for i := range n {
			id := in.id(int32(i), old.key[i], flags)
			flags[id] |= pairInOld
			a[i] = id
		}
		old.key = nil
		oldDone <- true
	}()
	ok = new.split(false)
	newSplit <- ok
	if ok = <-oldSplit && ok; !ok {
		<-oldDone
		return nil, nil, nil, false
	}
	n, m := len(old.spans), len(new.spans)
	if n+m >= math.MaxInt32 {
		<-oldDone
		return nil, nil, nil, false
	}
	twin := pairLines(old, new)
	<-oldDone
	b = twin // each id in place of the twin it comes from
	// The lines left unpaired, and the lines of old of the same key, are
	// read again: scattered reads map in most pages of a text (the
	// kernel maps pages around a fault), so the parts behind are
	// released again.
	old.rel.done, new.rel.done = 0, 0
	behind := 0 // a twin of old behind the lines read
	for j, i := range twin {
		if j&1023 == 0 {
			new.releaseBehind(j)
			old.releaseBehind(behind - pairWindow)
		}
		var id int32
		if i >= 0 {
			id, behind = a[i], int(i)
		} else {
			id = in.id(int32(n+j), keyHash(in.seed, new.line(j)), flags)
		}
		flags[id] |= pairInNew
		b[j] = id
	}
	return a, b, flags, true
}

// pairWindow is how far from where it expects it pairLines looks for the
// twin of a line: past a run of that many removed lines, the lines of new
// are looked up in the table.
const pairWindow = 32

// pairLines returns, for each line of new, the position of a line of old
// of the same text, or -1 if it finds none. It expects the twin of a line
// after the twin of the line before, and looks a little around there: the
// lines of new are mostly those of old, in the same order. A line it does
// not pair is looked up in the table, so it need not find every twin.
func pairLines(old, new *pairSide) []int32 {
	n, m := len(old.spans), len(new.spans)
	twin := make([]int32, m)
	old.rel.done, new.rel.done = 0, 0
	g := 0 // where the twin of line j is expected
	for j := range m {
		if j&1023 == 0 {
			new.releaseBehind(j)
			old.releaseBehind(min(g, n-1) - pairWindow)
		}
		line := new.line(j)
		twin[j] = -1
		if g < n && old.line(g) == line {
			twin[j] = int32(g)
			g++
			continue
		}
		for d := 1; d <= pairWindow; d++ {
			if i := g + d; i < n && old.line(i) == line {
				twin[j], g = int32(i), i+1
				break
			}
			if i := g - d; i >= 0 && old.line(i) == line {
				twin[j], g = int32(i), i+1
				break
			}
		}
	}
	return twin
}

// init sizes the table for n distinct keys at a load of 1/2.
func (in *pairInterner) init(n, nOld int, old, new *pairSide) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	in.slots = writable(make([]ldSlot, size))
	in.n, in.sides = nOld, [2]*pairSide{old, new}
	in.other = map[string]int32{}
}

// writable writes zeros over s and returns it. A large new slice is
// memory the kernel has not given yet; the first read of a page maps the
// shared page of zeros, and the write after it (a table's entries are
// read before they are written) costs a second fault and a flush of the
// TLBs of every core the process runs on. Written first, each page costs
// one fault.
func writable[T any](s []T) []T {
	clear(s)
	return s
}

// ids returns how many ids the interner gave: they are below it.
func (in *pairInterner) ids() int { return in.n + len(in.newPos) }

// pos returns the position of the first line of the text of id.
func (in *pairInterner) pos(id int32) int32 {
	if int(id) < in.n {
		return id
	}
	return int32(in.n) + in.newPos[int(id)-in.n]
}

// text returns the text of id.
func (in *pairInterner) text(id int32) string { return in.line(in.pos(id)) }

// newID returns the id of a text first seen at position p.
func (in *pairInterner) newID(p int32) int32 {
	if int(p) < in.n {
		return p
	}
	in.newPos = append(in.newPos, p-int32(in.n))
	return int32(in.n + len(in.newPos) - 1)
}

func (in *pairInterner) hash(key string) uint64 { return maphash.String(in.seed, key) &^ 1 }

// line returns the line at position p.
func (in *pairInterner) line(p int32) string {
	if int(p) < in.n {
		return in.sides[0].line(int(p))
	}
	return in.sides[1].line(int(p) - in.n)
}

// slot is where the probe for tag starts.
func (in *pairInterner) slot(tag uint32) uint64 { return uint64(tag) & uint64(len(in.slots)-1) }

// id returns the id of the line at position p, whose key (pairSide.key) is
// h, and marks the texts it shares a key with. The id of a text is the
// position of its first line if that is in old, else the number of texts
// of new only before it, after n: the ids of the diff are dense.
func (in *pairInterner) id(p int32, h uint64, flags []uint8) int32 {
	line := in.line(p)
	tag := uint32(h >> 32)
	mask := uint64(len(in.slots) - 1)
	for i := in.slot(tag); ; i = (i + 1) & mask {
		sl := in.slots[i]
		if sl.id == 0 {
			id := in.newID(p)
			in.slots[i] = ldSlot{tag, uint32(id) + 1}
			if in.used++; 2*in.used > len(in.slots) {
				in.grow()
			}
			if h&1 != 0 {
				flags[id] |= pairHard | pairCanon
			}
			return id
		}
		if sl.tag != tag {
			continue
		}
		first := int32(sl.id - 1)
		if in.text(first) == line {
			return first
		}
		flags[first] |= pairCanon
		if id, ok := in.other[line]; ok {
			return id
		}
		// A copy: the map reads its keys again as it grows, which would
		// bring back the pages of released text.
		id := in.newID(p)
		in.other[strings.Clone(line)] = id
		flags[id] |= pairCanon
		if h&1 != 0 {
			flags[id] |= pairHard
		}
		return id
	}
}

// mark marks the first text of the key of hash h, if any (the others are
// marked already).
func (in *pairInterner) mark(h uint64, flags []uint8) {
	tag := uint32(h >> 32)
	mask := uint64(len(in.slots) - 1)
	for i := in.slot(tag); in.slots[i].id != 0; i = (i + 1) & mask {
		if in.slots[i].tag == tag {
			flags[in.slots[i].id-1] |= pairCanon
			return
		}
	}
}

// grow doubles the table. The tag, the top half of the hash, is what
// places an entry (slot), which works for tables of up to 2^32 slots.
func (in *pairInterner) grow() {
	old := in.slots
	in.slots = make([]ldSlot, 2*len(old))
	for _, sl := range old {
		if sl.id == 0 {
			continue
		}
		i := in.slot(sl.tag)
		for in.slots[i].id != 0 {
			i = (i + 1) & uint64(len(in.slots)-1)
		}
		in.slots[i] = sl
	}
}

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
