package journal

import (
	"hash/maphash"
	"strconv"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// The line diff of two journals (§5.2): the first stage of the plan and the
// output of `cairn journal diff`.
//
// The lines are interned into int32 ids once; everything after that works on
// ids. The common prefix and suffix are stripped; then the lines that occur
// exactly once in each side anchor the diff (patience diff: the longest
// increasing subsequence of their positions, by patience sorting, in
// O(n log n)); the gaps between anchors are diffed the same way, re-anchoring
// on lines that are unique within the gap; a gap with no unique common line
// but with some common line goes to go-diff (Myers, no time limit), with one
// rune per line. Journal lines are unique by identity, so nearly all the work
// is the anchoring.

// EditKind is the kind of an Edit.
type EditKind uint8

// The kinds of Edit.
const (
	Equal  EditKind = iota // the line is kept: Old and New are both set
	Delete                 // the line of old is removed: New is -1
	Insert                 // the line of new is added: Old is -1
)

// String returns "equal", "delete" or "insert".
func (k EditKind) String() string {
	switch k {
	case Equal:
		return "equal"
	case Delete:
		return "delete"
	case Insert:
		return "insert"
	}
	return "EditKind(" + strconv.Itoa(int(k)) + ")"
}

// Edit is one step of an edit script that turns one list of lines into
// another.
type Edit struct {
	Kind EditKind
	// Old is the index of the line in the old list (Equal, Delete), else -1.
	Old int
	// New is the index of the line in the new list (Equal, Insert), else -1.
	New int
}

// DiffLines returns an edit script that turns old into new, for journal steps
// in canonical form (§5.2).
//
// The script is deterministic and in order: walking it visits the indices of
// old in ascending order and those of new in ascending order, each index
// exactly once (an old index as Equal or Delete, a new index as Equal or
// Insert), and the two lines of an Equal are equal strings. Inside each run of
// changes the Deletes come before the Inserts. A line that moved shows as a
// Delete and an Insert. The script is not always the shortest one (patience
// diff prefers to keep the lines that occur once on each side), but it is
// when no line repeats within old or within new.
//
// DiffLines returns nil when both lists are empty. The lists must hold fewer
// than 2^31 lines between them.
func DiffLines(old, new []string) []Edit {
	n, m := len(old), len(new)
	if n == 0 && m == 0 {
		return nil
	}
	// Common prefix and suffix, on the strings: no need to intern them.
	pre, suf := commonEnds(old, new)

	var d lineDiffer
	d.init(old[pre:n-suf], new[pre:m-suf])
	d.diff(0, int32(len(d.a)), 0, int32(len(d.b)))
	return d.script(pre, suf)
}

// diffIDs is DiffLines on lines already interned: a and b hold ids below
// nIDs, equal exactly where the lines are equal; any such ids give the
// script DiffLines gives for the lines. It returns only the Deletes and
// Inserts of that script, in its order.
func diffIDs(a, b []int32, nIDs int) []Edit {
	n, m := len(a), len(b)
	pre, suf := commonEnds(a, b)
	var d lineDiffer
	d.a, d.b = a[pre:n-suf], b[pre:m-suf]
	d.size(nIDs)
	d.diff(0, int32(len(d.a)), 0, int32(len(d.b)))
	var edits []Edit
	d.walk(func(i, j int32) {
		for ; i < j; i++ {
			edits = append(edits, Edit{Delete, pre + int(i), -1})
		}
	}, func(i, j int32) {
		for ; i < j; i++ {
			edits = append(edits, Edit{Insert, -1, pre + int(i)})
		}
	})
	return edits
}

// commonEnds returns the length of the common prefix of a and b, and of
// their common suffix in what is left.
func commonEnds[T comparable](a, b []T) (pre, suf int) {
	n, m := len(a), len(b)
	for pre < n && pre < m && a[pre] == b[pre] {
		pre++
	}
	for suf < n-pre && suf < m-pre && a[n-1-suf] == b[m-1-suf] {
		suf++
	}
	return pre, suf
}

// walk calls del and ins with the ranges of d.a and d.b that are not
// paired, in order: each run of unpaired lines of a before the run of b
// that shares its gap.
func (d *lineDiffer) walk(del, ins func(from, to int32)) {
	i0, j0 := int32(0), int32(0)
	for i, j := range d.match {
		if j >= 0 {
			del(i0, int32(i))
			ins(j0, j)
			i0, j0 = int32(i)+1, j+1
		}
	}
	del(i0, int32(len(d.a)))
	ins(j0, int32(len(d.b)))
}

// ldCount is what lineDiffer knows of a line in the gap it works on; all
// zero outside.
type ldCount struct {
	a, b int32 // occurrences in a and in b
	posB int32 // the position in b of the last occurrence
	loc  int32 // the rune of the line + 1 in gdiff
}

// ldPair is a pair of positions, in a and in b.
type ldPair struct{ a, b int32 }

// lineDiffer holds the state of one DiffLines.
type lineDiffer struct {
	a, b  []int32 // the interned lines of old and new (without prefix and suffix)
	match []int32 // match[i]: the index in b paired with a[i], or -1

	tab []ldCount // by id

	// cand is a stack: each gap pushes its anchors above those of the
	// enclosing gaps and pops them when done.
	cand  []ldPair
	tails []int32 // scratch of lis
	prev  []int32 // scratch of lis

	ra, rb []rune  // scratch of gdiff
	ia, ib []int32 // scratch of gdiff
}

// init interns the lines and sizes the tables.
func (d *lineDiffer) init(old, new []string) {
	buf := make([]int32, len(old)+len(new))
	d.a, d.b = buf[:len(old):len(old)], buf[len(old):]
	in := ldInterner{old: old, new: new}
	in.init(max(len(old), len(new)))
	// Interleaved, so that a line of new usually finds its twin of old in a
	// slot still in the cache.
	for i := range max(len(old), len(new)) {
		if i < len(old) {
			d.a[i] = in.id(int32(i))
		}
		if i < len(new) {
			d.b[i] = in.id(int32(len(old) + i))
		}
	}
	d.size(len(old) + len(new))
}

// size makes the tables for d.a and d.b, whose ids are below nIDs.
func (d *lineDiffer) size(nIDs int) {
	d.tab = make([]ldCount, nIDs)
	d.match = make([]int32, len(d.a))
	// Enough for the anchors of the whole and a few gaps.
	c := min(len(d.a), len(d.b)) + 64
	d.cand = make([]ldPair, 0, c)
	scratch := make([]int32, 2*c)
	d.tails, d.prev = scratch[:0:c], scratch[c:]
	for i := range d.match {
		d.match[i] = -1
	}
}

// ldInterner gives each line of old and new an id: the position of the first
// occurrence of the line in old followed by new. It is an open-addressing hash
// table of positions, which is faster than a map[string]int32 for this (one
// lookup a line, no deletes, about the size known in advance).
type ldInterner struct {
	old, new []string
	seed     maphash.Seed
	slots    []ldSlot
	used     int
}

// ldSlot is a slot of ldInterner: the top bits of the hash of the line and its
// id + 1, or zero if free.
type ldSlot struct{ tag, id uint32 }

// init sizes the table for n distinct lines at a load of 1/2.
func (in *ldInterner) init(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	in.seed = maphash.MakeSeed()
	in.slots = make([]ldSlot, size)
}

// line returns the line at position p.
func (in *ldInterner) line(p int32) string {
	if int(p) < len(in.old) {
		return in.old[p]
	}
	return in.new[int(p)-len(in.old)]
}

// id returns the id of the line at position p.
func (in *ldInterner) id(p int32) int32 {
	s := in.line(p)
	h := maphash.String(in.seed, s)
	tag := uint32(h >> 32)
	mask := uint64(len(in.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := in.slots[i]
		if sl.id == 0 {
			in.slots[i] = ldSlot{tag, uint32(p) + 1}
			if in.used++; 2*in.used > len(in.slots) {
				in.grow()
			}
			return p
		}
		if sl.tag == tag && in.line(int32(sl.id-1)) == s {
			return int32(sl.id - 1)
		}
	}
}

// grow doubles the table.
func (in *ldInterner) grow() {
	old := in.slots
	in.slots = make([]ldSlot, 2*len(old))
	mask := uint64(len(in.slots) - 1)
	for _, sl := range old {
		if sl.id == 0 {
			continue
		}
		i := maphash.String(in.seed, in.line(int32(sl.id-1))) & mask
		for in.slots[i].id != 0 {
			i = (i + 1) & mask
		}
		in.slots[i] = sl
	}
}

// diff pairs the lines of a[a0:a1] with those of b[b0:b1].
func (d *lineDiffer) diff(a0, a1, b0, b1 int32) {
	a, b, match := d.a, d.b, d.match
	for {
		for a0 < a1 && b0 < b1 && a[a0] == b[b0] {
			match[a0] = b0
			a0++
			b0++
		}
		for a0 < a1 && b0 < b1 && a[a1-1] == b[b1-1] {
			a1--
			b1--
			match[a1] = b1
		}
		if a0 == a1 || b0 == b1 {
			return
		}

		// Count the lines of the gap and collect those unique on both
		// sides, in the order of a.
		tab := d.tab
		for _, id := range a[a0:a1] {
			tab[id].a++
		}
		for j := b0; j < b1; j++ {
			c := &tab[b[j]]
			c.b++
			c.posB = j
		}
		base := len(d.cand)
		common := false
		for i := a0; i < a1; i++ {
			if c := &tab[a[i]]; c.b > 0 {
				common = true
				if c.b == 1 && c.a == 1 {
					d.cand = append(d.cand, ldPair{i, c.posB})
				}
			}
		}
		if common && len(d.cand) == base {
			d.gdiff(a0, a1, b0, b1) // uses the counts
		}
		for _, id := range a[a0:a1] {
			tab[id] = ldCount{}
		}
		for _, id := range b[b0:b1] {
			tab[id] = ldCount{}
		}
		if len(d.cand) == base {
			return // no common line, or done by gdiff
		}

		// Anchor on the longest run of unique lines in the same order and
		// diff the gaps between the anchors; the last gap by looping.
		k := d.lis(base)
		d.cand = d.cand[:base+k]
		for t := base; t < base+k; t++ {
			p := d.cand[t]
			d.diff(a0, p.a, b0, p.b)
			match[p.a] = p.b
			a0, b0 = p.a+1, p.b+1
		}
		d.cand = d.cand[:base]
	}
}

// lis finds the longest subsequence of d.cand[base:] (ascending in a) that is
// also ascending in b, moves it to the front of d.cand[base:] and returns its
// length. The b positions are distinct, so the result is well defined up to
// the choice patience sorting makes, which is deterministic.
func (d *lineDiffer) lis(base int) int {
	c := d.cand[base:]
	if cap(d.prev) < len(c) {
		d.prev = make([]int32, len(c))
	}
	prev := d.prev[:len(c)]
	tails := d.tails[:0] // tails[k]: index in c of the least b ending a run of k+1
	for t, p := range c {
		lo, hi := 0, len(tails)
		if lo < hi && c[tails[hi-1]].b < p.b {
			lo = hi // extends the longest run, as most anchors of a small change do
		}
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if c[tails[mid]].b < p.b {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo > 0 {
			prev[t] = tails[lo-1]
		} else {
			prev[t] = -1
		}
		if lo == len(tails) {
			tails = append(tails, int32(t))
		} else {
			tails[lo] = int32(t)
		}
	}
	k := len(tails)
	for pos, t := k-1, tails[k-1]; pos >= 0; pos-- {
		tails[pos] = t
		t = prev[t]
	}
	// tails is now ascending with tails[pos] >= pos: moving in place is safe.
	for pos, t := range tails {
		c[pos] = c[t]
	}
	d.tails = tails
	return k
}

// ldMaxRunes is the number of runes gdiff can map lines to: every code point
// but the surrogates, which do not survive a trip through a string.
const ldMaxRunes = utf8.MaxRune + 1 - 0x800

// gdiff pairs the lines of a gap with no line unique on both sides with
// go-diff (Myers, no time limit), one rune per line. The lines that occur on
// one side only cannot be paired, so they are left out of the runes; d.tab
// holds the counts of the gap.
func (d *lineDiffer) gdiff(a0, a1, b0, b1 int32) {
	next := int32(0)
	toRune := func(id int32) rune {
		l := d.tab[id].loc
		if l == 0 {
			next++
			l = next
			d.tab[id].loc = l
		}
		r := rune(l - 1)
		if r >= 0xD800 {
			r += 0x800
		}
		return r
	}
	ra, rb, ia, ib := d.ra[:0], d.rb[:0], d.ia[:0], d.ib[:0]
	for i := a0; i < a1; i++ {
		if id := d.a[i]; d.tab[id].b > 0 {
			ra = append(ra, toRune(id))
			ia = append(ia, i)
		}
	}
	for j := b0; j < b1; j++ {
		if id := d.b[j]; d.tab[id].a > 0 {
			rb = append(rb, toRune(id))
			ib = append(ib, j)
		}
	}
	d.ra, d.rb, d.ia, d.ib = ra, rb, ia, ib
	if int(next) > ldMaxRunes {
		// Only a gap of millions of lines, none unique, gets here: leave it
		// unpaired rather than fail.
		return
	}

	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0
	x, y := 0, 0
	for _, df := range dmp.DiffMainRunes(ra, rb, false) {
		k := utf8.RuneCountInString(df.Text)
		switch df.Type {
		case diffmatchpatch.DiffEqual:
			for range k {
				if ra[x] == rb[y] {
					d.match[ia[x]] = ib[y]
				}
				x++
				y++
			}
		case diffmatchpatch.DiffDelete:
			x += k
		case diffmatchpatch.DiffInsert:
			y += k
		}
	}
}

// script writes the edit script from the pairs, with pre lines of common
// prefix and suf of common suffix around them.
func (d *lineDiffer) script(pre, suf int) []Edit {
	na, nb := len(d.a), len(d.b)
	paired := 0
	for _, j := range d.match {
		if j >= 0 {
			paired++
		}
	}
	edits := make([]Edit, 0, pre+suf+na+nb-paired)
	for i := range pre {
		edits = append(edits, Edit{Equal, i, i})
	}
	i0, j0 := 0, 0
	flush := func(i1, j1 int) {
		for i := i0; i < i1; i++ {
			edits = append(edits, Edit{Delete, pre + i, -1})
		}
		for j := j0; j < j1; j++ {
			edits = append(edits, Edit{Insert, -1, pre + j})
		}
	}
	for i, j := range d.match {
		if j >= 0 {
			flush(i, int(j))
			edits = append(edits, Edit{Equal, pre + i, pre + int(j)})
			i0, j0 = i+1, int(j)+1
		}
	}
	flush(na, nb)
	for t := range suf {
		edits = append(edits, Edit{Equal, pre + na + t, pre + nb + t})
	}
	return edits
}
