package blobstore

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// blobTable maps the hashes of packed blobs to where they are. Its records
// are those of the index file, read in place from a read-only mapping of
// it, and those added in memory since; an open-addressing table of record
// numbers finds them. So loading an index of 100,000 blobs touches about
// 1 MiB of new memory, which is what a load costs (a Go map of them touches
// 10 MiB, tens of milliseconds of page faults on a virtual machine).
//
// A slot holds a tag (bits of the key above the record number's) and the
// record number + 1, so that a probe rarely reads a key. The hash is seeded
// per table: contents crafted to collide cannot pile up in one run of slots.
// Not safe for concurrent use.
type blobTable struct {
	recs    []byte // the index file's records (mapped)
	nfile   uint32 // records numbered below nfile are in recs
	keys    []blobKey
	locs    []blobLoc // the records added in memory; pack 0: forgotten
	slots   []uint32
	recBits uint // a slot's low bits: the record number + 1
	seed    uint64
	live    int
}

// newBlobTable makes a table over recs, whole index records (none yet
// entered: see addFile), with room for extra records added in memory.
func newBlobTable(recs []byte, extra int) *blobTable {
	t := &blobTable{recs: recs, nfile: uint32(len(recs) / recSize), seed: rand.Uint64()}
	t.makeSlots(int(t.nfile) + extra)
	return t
}

// makeSlots makes room for n records, at most half of the slots.
func (t *blobTable) makeSlots(n int) {
	size := 64
	for size < 2*n {
		size <<= 1
	}
	t.slots = make([]uint32, size)
	t.recBits = uint(bits.Len(uint(size / 2)))
}

func (t *blobTable) key(r uint32) *blobKey {
	if r < t.nfile {
		return (*blobKey)(t.recs[int(r)*recSize+20:])
	}
	return &t.keys[r-t.nfile]
}

func (t *blobTable) loc(r uint32) blobLoc {
	if r < t.nfile {
		rec := t.recs[int(r)*recSize:]
		return blobLoc{
			pack: binary.LittleEndian.Uint32(rec[4:]),
			off:  int64(binary.LittleEndian.Uint64(rec[8:])),
			size: binary.LittleEndian.Uint32(rec[16:]),
		}
	}
	return t.locs[r-t.nfile]
}

// hash returns k's first slot and its tag.
func (t *blobTable) hash(k *blobKey) (uint32, uint32) {
	const mul = 0x9e3779b97f4a7c15
	shift := 64 - uint(bits.Len(uint(len(t.slots)-1)))
	first := (binary.LittleEndian.Uint64(k[:8]) ^ t.seed) * mul >> shift
	var tag uint32
	if t.recBits < 32 {
		tag = uint32((binary.LittleEndian.Uint64(k[8:16])^t.seed)*mul>>(32+t.recBits)) << t.recBits
	}
	return uint32(first), tag
}

// find returns k's record number, or -1, the slot that holds it or where
// it goes, and its tag.
func (t *blobTable) find(k *blobKey) (int64, int, uint32) {
	mask := uint32(len(t.slots) - 1)
	recMask := uint32(1)<<t.recBits - 1
	i, tag := t.hash(k)
	for {
		s := t.slots[i]
		if s == 0 {
			return -1, int(i), tag
		}
		if s&^recMask == tag {
			if r := s&recMask - 1; *t.key(r) == *k {
				return int64(r), int(i), tag
			}
		}
		i = (i + 1) & mask
	}
}

func (t *blobTable) get(k blobKey) (blobLoc, bool) {
	r, _, _ := t.find(&k)
	if r < 0 {
		return blobLoc{}, false
	}
	loc := t.loc(uint32(r))
	return loc, loc.pack != 0
}

// enter makes record r the one for its key.
func (t *blobTable) enter(r uint32) {
	if int(t.nfile)+len(t.keys) > len(t.slots)/2 {
		t.grow() // a record number must fit below the tag
	}
	k := t.key(r)
	old, slot, tag := t.find(k)
	if old >= 0 && t.loc(uint32(old)).pack != 0 {
		t.live--
	}
	if t.loc(r).pack != 0 {
		t.live++
	}
	t.slots[slot] = tag | (r + 1)
}

// addFile enters record r of the index file.
func (t *blobTable) addFile(r uint32) { t.enter(r) }

// set records in memory where k is; pack 0 forgets k.
func (t *blobTable) set(k blobKey, loc blobLoc) {
	if r, _, _ := t.find(&k); r >= int64(t.nfile) {
		if t.locs[r-int64(t.nfile)].pack != 0 {
			t.live--
		}
		if loc.pack != 0 {
			t.live++
		}
		t.locs[r-int64(t.nfile)] = loc
		return
	}
	t.keys = append(t.keys, k)
	t.locs = append(t.locs, loc)
	t.enter(t.nfile + uint32(len(t.keys)-1))
}

// del forgets k.
func (t *blobTable) del(k blobKey) {
	if _, ok := t.get(k); ok {
		t.set(k, blobLoc{})
	}
}

// reserve makes room for n more records in memory: the slots doubled
// until they hold them at most half full, and the capacity of keys and locs
// grown once, so that adding them copies nothing.
func (t *blobTable) reserve(n int) {
	for int(t.nfile)+len(t.keys)+n > len(t.slots)/2 {
		t.grow()
	}
	t.keys = slices.Grow(t.keys, n)
	t.locs = slices.Grow(t.locs, n)
}

// grow doubles the slots and enters again the records they held.
func (t *blobTable) grow() {
	old, oldMask := t.slots, uint32(1)<<t.recBits-1
	t.makeSlots(len(old))
	mask := uint32(len(t.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		r := s&oldMask - 1
		i, tag := t.hash(t.key(r))
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = tag | (r + 1)
	}
}

// each calls fn for every blob the table holds.
func (t *blobTable) each(fn func(k blobKey, loc blobLoc)) {
	recMask := uint32(1)<<t.recBits - 1
	for _, s := range t.slots {
		if s == 0 {
			continue
		}
		r := s&recMask - 1
		if loc := t.loc(r); loc.pack != 0 {
			fn(*t.key(r), loc)
		}
	}
}
