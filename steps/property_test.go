package steps_test

// The exactness property of spec §5: for the path kinds, the result of a
// move MUST equal one direct apply of NEW to the host as it was before cairn
// touched it, whatever sequence of journals came before; moving to the empty
// journal restores those objects as they were before the first apply.
//
// TestPropertyExactness builds random original roots (files, links and
// directories planted at the paths journals manage and elsewhere, with
// random content, modes and owners), then random sequences of valid
// journals over a small universe of paths, and after every move compares the
// tree, byte for byte, with a direct apply of the same journal to a fresh
// copy of the original root. A journal that fails when applied directly (a
// COPY, SYMLINK or RM over a planted directory with entries) must fail as a
// move too, and leave the tree exactly as it was.
//
// Planted files and directories also carry extended attributes (user. and
// trusted. ones, POSIX ACLs, a file capability, as far as the file system
// of the test takes them) and planted files old mtimes. No journal states
// those, and a COPY writes a new file without them, so a move is compared
// with the direct apply without them (TreeSnap.Journaled); but a move that
// fails, and the final move to the empty journal, must bring them back
// exactly, as the root's snapshots with mtimes (SnapTreeTimes) check.
//
// Reproduce a failure with the seed it prints:
//
//	CAIRN_PROPTEST_SEED=<seed> CAIRN_PROPTEST_N=1 go test ./steps/ -run PropertyExactness -v
//
// (or -proptest.seed=<seed> -proptest.n=1). The base seed is fixed, so
// every run tests the same sequences unless told otherwise.
//
// USERADD and GROUPADD have no driver in steps yet; when they do, the
// universe here should grow users and groups.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

var (
	propSeed = flag.Uint64("proptest.seed", 0, "base seed of TestPropertyExactness (0: the fixed default, or $CAIRN_PROPTEST_SEED)")
	propN    = flag.Int("proptest.n", 0, "number of sequences TestPropertyExactness runs (0: the default, or $CAIRN_PROPTEST_N)")
)

// propThroughLinks lets journals manage paths beneath a planted link to a
// directory that they do not manage (spec §8: links in intermediate
// components are followed). Off by default: the applier does not reach
// exactness there yet (an unchanged step beneath a link that a later journal
// replaces with a directory is not run again, and what it made through the
// link is never undone), so the mode only shows that gap.
var propThroughLinks = os.Getenv("CAIRN_PROPTEST_THROUGH_LINKS") == "1"

const (
	propDefaultSeed = 0x636169726e // "cairn"
	propDefaultN    = 500
	propShortN      = 100
)

// propUniverse is the paths the generated journals manage, parents first.
var propUniverse = []string{"/a", "/a/b", "/a/b/x", "/a/c", "/d", "/d/b", "/d/e", "/f", "/f/b"}

// Pools the generators draw from: repeated values make hashes, modes and
// owners coincide, so in-place updates and "already right" paths happen.
var (
	propDirModes  = []uint32{0o700, 0o750, 0o755, 0o1777, 0o2755, 0o555}
	propFileModes = []uint32{0o600, 0o644, 0o755, 0o4755, 0o2755, 0o444}
	// Owners and groups as a journal writes them: root, 0 (the same id,
	// another canonical form), numeric ids, and names from the root's
	// /etc/passwd and /etc/group.
	propOwners    = []string{"root", "root", "0", "1234", "alice"}
	propGroups    = []string{"root", "root", "0", "1234", "staff"}
	propPlantIDs  = []uint32{0, 0, 1234, 2001, 4321}
	propLinkDests = []string{"b", "../d", "/d", "/d/e", "/nonexistent", "x/../../y", ".", "/a", "with space", "k=v"}
)

// propContents is the content pool of COPY steps and planted files.
var propContents = func() [][]byte {
	big := make([]byte, 100<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	return [][]byte{{}, []byte("hello\n"), []byte("#!/bin/sh\necho hi\n"), big, []byte("planted\n")}
}()

// propSources maps a COPY source (relative to the source dir) to its index in
// propContents; two names share one content. "-" reads the blob dir.
var propSources = []struct {
	name    string
	content int
}{
	{"files/empty", 0}, {"files/hello", 1}, {"files/hello-again", 1}, {"files/script.sh", 2}, {"files/big.bin", 3}, {"-", -1},
}

// plant is one object of an original root.
type plant struct {
	path    string
	typ     string // steps.TypeFile, TypeDir, TypeSymlink
	mode    uint32
	uid     uint32
	gid     uint32
	content []byte
	target  string
	mtime   time.Time         // a file's; always set
	xattrs  map[string][]byte // a file's or directory's, set last
}

func (p plant) String() string {
	switch p.typ {
	case steps.TypeSymlink:
		return fmt.Sprintf("%s symlink -> %q %d:%d", p.path, p.target, p.uid, p.gid)
	case steps.TypeFile:
		return fmt.Sprintf("%s file %04o %d:%d %q mtime=%s%s", p.path, p.mode, p.uid, p.gid, truncate(p.content), p.mtime.Format(time.RFC3339Nano), xattrNames(p.xattrs))
	}
	return fmt.Sprintf("%s dir %04o %d:%d%s", p.path, p.mode, p.uid, p.gid, xattrNames(p.xattrs))
}

func xattrNames(x map[string][]byte) string {
	var names []string
	for name := range x {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ""
	}
	return " xattrs=" + strings.Join(names, ",")
}

// propXattrs are the attributes planted objects may carry: those that the
// file system of the test's trees takes (propProbeXattrs).
var propXattrs struct {
	user, trusted, acl, capability bool
}

// propACL returns a POSIX ACL as system.posix_acl_access and _default hold
// it (little-endian version 2, then tag, permissions and id per entry,
// sorted by tag): the owner, group and others of mode, the mask equal to
// the group's bits (so that setting it keeps the mode), and a named user.
func propACL(mode uint32, uid uint32, perm uint16) []byte {
	const undefined = 0xffffffff
	b := binary.LittleEndian.AppendUint32(nil, 2)
	add := func(tag, perm uint16, id uint32) {
		b = binary.LittleEndian.AppendUint16(b, tag)
		b = binary.LittleEndian.AppendUint16(b, perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	add(0x01, uint16(mode>>6&7), undefined) // ACL_USER_OBJ
	add(0x02, perm, uid)                    // ACL_USER
	add(0x04, uint16(mode>>3&7), undefined) // ACL_GROUP_OBJ
	add(0x10, uint16(mode>>3&7), undefined) // ACL_MASK
	add(0x20, uint16(mode&7), undefined)    // ACL_OTHER
	return b
}

// propCapability is security.capability for cap_net_raw+ep (struct
// vfs_cap_data, revision 2).
var propCapability = func() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x02000000|1) // revision 2, effective
	b = binary.LittleEndian.AppendUint32(b, 1<<13)           // permitted: CAP_NET_RAW
	return append(b, make([]byte, 12)...)                    // inheritable, and the high words
}()

// propProbeXattrs finds which attributes the file system of dir takes.
func propProbeXattrs(t *testing.T, dir string) {
	probe := func(name string, value []byte) bool {
		f, err := os.CreateTemp(dir, "probe-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		return unix.Fsetxattr(int(f.Fd()), name, value, 0) == nil
	}
	propXattrs.user = probe("user.cairn", []byte("probe"))
	propXattrs.trusted = probe("trusted.cairn", []byte("probe"))
	propXattrs.acl = probe("system.posix_acl_access", propACL(0o640, 1234, 4))
	propXattrs.capability = probe("security.capability", propCapability)
	t.Logf("planted attributes: user. %v, trusted. %v, ACLs %v, capabilities %v", propXattrs.user, propXattrs.trusted, propXattrs.acl, propXattrs.capability)
}

// genXattrs draws the extended attributes of a planted object, from rx.
func genXattrs(rx *rand.Rand, typ string, mode uint32) map[string][]byte {
	x := map[string][]byte{}
	if propXattrs.user && rx.IntN(3) == 0 {
		x["user.origin"] = fmt.Appendf(nil, "planted %d", rx.IntN(3))
	}
	if propXattrs.trusted && rx.IntN(6) == 0 {
		x["trusted.cairn-test"] = []byte{0, 1, 2, byte(rx.IntN(256))}
	}
	if propXattrs.acl && rx.IntN(4) == 0 {
		x["system.posix_acl_access"] = propACL(mode, 4321, uint16(1+rx.IntN(7)))
	}
	if typ == steps.TypeDir && propXattrs.acl && rx.IntN(4) == 0 {
		x["system.posix_acl_default"] = propACL(0o750, 1234, 5)
	}
	if typ == steps.TypeFile && propXattrs.capability && rx.IntN(6) == 0 {
		x["security.capability"] = propCapability
	}
	return x
}

func truncate(b []byte) string {
	if len(b) > 24 {
		return string(b[:24]) + "…"
	}
	return string(b)
}

// origin is an original root: the plants, parents first, and what the
// generators need to know of it.
type origin struct {
	plants   []plant
	typ      map[string]string // path -> type of what is planted there
	nonEmpty map[string]bool   // a planted directory with entries
	linkDir  map[string]bool   // a planted link that resolves to a directory
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// genOrigin plants a random original root; the mtimes and attributes are
// drawn from rx, so that r draws the same roots and journals as without
// them.
func genOrigin(r, rx *rand.Rand) *origin {
	o := &origin{typ: map[string]string{"/": steps.TypeDir}, nonEmpty: map[string]bool{}}
	add := func(p plant) {
		if p.typ == steps.TypeFile {
			p.mtime = time.Unix(1_500_000_000+rx.Int64N(100_000_000), rx.Int64N(1_000_000_000))
		}
		if p.typ != steps.TypeSymlink {
			p.xattrs = genXattrs(rx, p.typ, p.mode)
		}
		o.plants = append(o.plants, p)
		o.typ[p.path] = p.typ
		o.nonEmpty[path.Dir(p.path)] = true
	}
	owner := func() (uint32, uint32) { return pick(r, propPlantIDs), pick(r, propPlantIDs) }
	file := func(p string) plant {
		uid, gid := owner()
		c := pick(r, propContents)
		if r.IntN(4) == 0 {
			c = fmt.Appendf(nil, "planted at %s: %d\n", p, r.IntN(3))
		}
		return plant{path: p, typ: steps.TypeFile, mode: pick(r, propFileModes), uid: uid, gid: gid, content: c}
	}
	link := func(p string) plant {
		uid, gid := owner()
		return plant{path: p, typ: steps.TypeSymlink, target: pick(r, propLinkDests), uid: uid, gid: gid}
	}
	dir := func(p string) plant {
		uid, gid := owner()
		mode := pick(r, propDirModes)
		if r.IntN(5) == 0 {
			mode, gid = 0o2775, 1234 // a setgid directory: new entries inherit its group
		}
		return plant{path: p, typ: steps.TypeDir, mode: mode, uid: uid, gid: gid}
	}
	// The names journals may use.
	add(plant{path: "/etc", typ: steps.TypeDir, mode: 0o755})
	add(plant{path: "/etc/passwd", typ: steps.TypeFile, mode: 0o644, content: []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:2001:2001::/home/alice:/bin/sh\n")})
	add(plant{path: "/etc/group", typ: steps.TypeFile, mode: 0o644, content: []byte("root:x:0:\nstaff:x:2002:\n")})
	var dirs []string
	for _, p := range propUniverse {
		if o.typ[path.Dir(p)] != steps.TypeDir {
			continue
		}
		switch x := r.IntN(100); {
		case x < 35: // absent
		case x < 55:
			add(file(p))
		case x < 70:
			add(link(p))
		default:
			add(dir(p))
			dirs = append(dirs, p)
		}
	}
	// Entries no journal manages: in planted directories, and elsewhere.
	for _, d := range dirs {
		switch r.IntN(6) {
		case 0:
			add(file(d + "/keep"))
		case 1:
			add(dir(d + "/sub"))
			add(file(d + "/sub/z"))
		case 2:
			add(link(d + "/ln"))
		}
	}
	add(dir("/srv"))
	add(file("/srv/data"))
	if r.IntN(2) == 0 {
		add(link("/top"))
	}
	return o
}

// materialize makes the original root o in the empty directory root.
func (o *origin) materialize(root string) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for _, p := range o.plants {
		host := filepath.Join(root, filepath.FromSlash(p.path))
		var err error
		switch p.typ {
		case steps.TypeDir:
			err = os.Mkdir(host, 0o700)
		case steps.TypeFile:
			err = os.WriteFile(host, p.content, 0o600)
		case steps.TypeSymlink:
			err = os.Symlink(p.target, host)
		}
		if err == nil {
			err = os.Lchown(host, int(p.uid), int(p.gid))
		}
		if err == nil && p.typ != steps.TypeSymlink {
			err = syscall.Chmod(host, p.mode) // after chown, which clears set-id bits
		}
		for _, name := range slices.Sorted(maps.Keys(p.xattrs)) { // after chown, which drops a capability
			if err == nil {
				err = unix.Setxattr(host, name, p.xattrs[name], 0)
			}
		}
		if err == nil && p.typ == steps.TypeFile {
			err = os.Chtimes(host, time.Time{}, p.mtime)
		}
		if err != nil {
			return fmt.Errorf("plant %v: %w", p, err)
		}
	}
	return nil
}

// jstep is one generated step, in the canonical values a journal holds;
// its text is written anew, in some non-canonical spelling, each time.
type jstep struct {
	op     string
	path   string
	mode   uint32 // MKDIR, COPY; 0 for the default (written or left out)
	owner  string // MKDIR, COPY; "" for the default
	group  string
	src    int // COPY: index into propSources
	blob   int // COPY of "-": index into propContents
	target string
}

// content is the content of a COPY step.
func (s jstep) content() []byte {
	if c := propSources[s.src].content; c >= 0 {
		return propContents[c]
	}
	return propContents[s.blob]
}

// genStep makes a random step for p, or none.
func genStep(r *rand.Rand, o *origin, p string) (jstep, bool) {
	s := jstep{path: p}
	x := r.IntN(100)
	switch {
	case x < 30:
		return s, false
	case x < 55:
		s.op = journal.OpMkdir
	case x < 78:
		s.op = journal.OpCopy
	case x < 89:
		s.op = journal.OpSymlink
	default:
		s.op = journal.OpRm
	}
	// A COPY, SYMLINK or RM over a planted directory with entries fails,
	// as it should; keep such journals a minority.
	if s.op != journal.OpMkdir && o.nonEmpty[p] && r.IntN(4) != 0 {
		if r.IntN(2) == 0 {
			return s, false
		}
		s.op = journal.OpMkdir
	}
	switch s.op {
	case journal.OpMkdir:
		if r.IntN(3) != 0 {
			s.mode = pick(r, propDirModes)
		}
	case journal.OpCopy:
		s.src = r.IntN(len(propSources))
		s.blob = r.IntN(len(propContents))
		if r.IntN(3) != 0 {
			s.mode = pick(r, propFileModes)
		}
	case journal.OpSymlink:
		s.target = pick(r, propLinkDests)
	}
	if s.op == journal.OpMkdir || s.op == journal.OpCopy {
		if r.IntN(2) == 0 {
			s.owner = pick(r, propOwners)
		}
		if r.IntN(2) == 0 {
			s.group = pick(r, propGroups)
		}
	}
	return s, true
}

// allowed reports whether a journal whose steps are byPath may manage p: each
// ancestor is made by its MKDIR, or is unmanaged and a directory in the
// original root (§4 forbids paths beneath a COPY, SYMLINK or RM; a parent
// that exists nowhere makes the step fail).
func allowed(o *origin, byPath map[string]jstep, p string) bool {
	for a := path.Dir(p); a != "/"; a = path.Dir(a) {
		if s, ok := byPath[a]; ok {
			if s.op != journal.OpMkdir {
				return false
			}
		} else if o.typ[a] != steps.TypeDir && !(propThroughLinks && o.linkDir[a]) {
			return false
		}
	}
	return true
}

// order puts the steps of byPath in an order close to want (paths not in
// want go at random places) in which every MKDIR comes before the steps
// beneath it.
func order(r *rand.Rand, byPath map[string]jstep, want []string) []jstep {
	var pending []string
	for _, p := range want {
		if _, ok := byPath[p]; ok {
			pending = append(pending, p)
		}
	}
	for _, p := range propUniverse {
		if _, ok := byPath[p]; ok && !slices.Contains(pending, p) {
			pending = slices.Insert(pending, r.IntN(len(pending)+1), p)
		}
	}
	placed := map[string]bool{}
	var out []jstep
	for len(pending) > 0 {
		for i, p := range pending {
			if _, managed := byPath[path.Dir(p)]; managed && !placed[path.Dir(p)] {
				continue
			}
			out = append(out, byPath[p])
			placed[p] = true
			pending = slices.Delete(pending, i, i+1)
			break
		}
	}
	return out
}

// genJournal makes a random valid journal.
func genJournal(r *rand.Rand, o *origin) []jstep {
	byPath := map[string]jstep{}
	for _, p := range propUniverse {
		if !allowed(o, byPath, p) {
			continue
		}
		if s, ok := genStep(r, o, p); ok {
			byPath[p] = s
		}
	}
	return order(r, byPath, nil)
}

// mutate changes a few steps of prev: drops, adds, changes attributes or
// kind, and sometimes moves a step.
func mutate(r *rand.Rand, o *origin, prev []jstep) []jstep {
	byPath := map[string]jstep{}
	var want []string
	for _, s := range prev {
		byPath[s.path] = s
		want = append(want, s.path)
	}
	for n := 1 + r.IntN(3); n > 0; n-- {
		p := pick(r, propUniverse)
		s, had := byPath[p]
		switch {
		case had && r.IntN(3) == 0:
			delete(byPath, p)
		case had && r.IntN(2) == 0 && (s.op == journal.OpMkdir || s.op == journal.OpCopy):
			// Same kind, other attributes.
			switch r.IntN(3) {
			case 0:
				s.mode = pick(r, slices.Concat(propDirModes, propFileModes))
			case 1:
				s.owner, s.group = pick(r, propOwners), pick(r, propGroups)
			default:
				s.src, s.blob = r.IntN(len(propSources)), r.IntN(len(propContents))
			}
			byPath[p] = s
		default:
			if ns, ok := genStep(r, o, p); ok {
				byPath[p] = ns
			} else {
				delete(byPath, p)
			}
		}
	}
	if len(want) > 1 && r.IntN(4) == 0 {
		i := r.IntN(len(want))
		p := want[i]
		want = slices.Insert(slices.Delete(want, i, i+1), r.IntN(len(want)), p)
	}
	// Drop what the changes left invalid, parents first.
	for _, p := range propUniverse {
		if _, ok := byPath[p]; ok && !allowed(o, byPath, p) {
			delete(byPath, p)
		}
	}
	return order(r, byPath, want)
}

// word writes a positional word, sometimes quoted where it need not be.
func word(r *rand.Rand, w string, positional bool) string {
	bare := w != "" && !strings.ContainsAny(w, " \t\"#") && !(positional && strings.Contains(w, "="))
	if !bare || r.IntN(5) == 0 {
		return strconv.Quote(w)
	}
	return w
}

// modeText writes a mode in one of the spellings the parser accepts.
func modeText(r *rand.Rand, m uint32) string {
	switch r.IntN(3) {
	case 0:
		return strconv.FormatUint(uint64(m), 8)
	case 1:
		return fmt.Sprintf("0%04o", m)
	}
	return fmt.Sprintf("%04o", m)
}

// format writes a journal, spelling each step in a random non-canonical way
// (attribute order, defaults written out, quotes, mode digits, hash case,
// comments and blank lines), so that canonical forms are exercised: two
// spellings of one journal must plan nothing.
func format(r *rand.Rand, js []jstep) string {
	var b strings.Builder
	b.WriteString("# generated journal\n")
	space := func() string { return pick(r, []string{" ", " ", "  ", "\t"}) }
	for i, s := range js {
		if r.IntN(6) == 0 {
			b.WriteString(pick(r, []string{"\n", "   \n", "# a comment\n", "\t# an indented comment\n"}))
		}
		words := []string{}
		var attrs []string
		ownership := func(defMode uint32) {
			switch {
			case s.mode != 0:
				attrs = append(attrs, "mode="+modeText(r, s.mode))
			case r.IntN(3) == 0:
				attrs = append(attrs, "mode="+modeText(r, defMode))
			}
			if s.owner != "" {
				attrs = append(attrs, "owner="+word(r, s.owner, false))
			} else if r.IntN(4) == 0 {
				attrs = append(attrs, "owner=root")
			}
			if s.group != "" {
				attrs = append(attrs, "group="+word(r, s.group, false))
			} else if r.IntN(4) == 0 {
				attrs = append(attrs, "group=root")
			}
		}
		switch s.op {
		case journal.OpMkdir:
			words = append(words, word(r, s.path, true))
			ownership(0o755)
		case journal.OpCopy:
			words = append(words, word(r, propSources[s.src].name, true), word(r, s.path, true))
			sum := sha256.Sum256(s.content())
			h := hex.EncodeToString(sum[:])
			if r.IntN(3) == 0 {
				h = strings.ToUpper(h)
			}
			attrs = append(attrs, "sha256="+h)
			ownership(0o644)
		case journal.OpSymlink:
			words = append(words, word(r, s.target, true), word(r, s.path, true))
		case journal.OpRm:
			words = append(words, word(r, s.path, true))
		}
		r.Shuffle(len(attrs), func(i, j int) { attrs[i], attrs[j] = attrs[j], attrs[i] })
		if r.IntN(8) == 0 {
			b.WriteString(space())
		}
		b.WriteString(s.op)
		for _, w := range append(words, attrs...) {
			b.WriteString(space())
			b.WriteString(w)
		}
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, "%s# site.cairn:%d:3", space(), i+1)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// propSeeds returns the base seed and the number of sequences to run.
func propSeeds(t *testing.T) (uint64, int) {
	seed, n := uint64(propDefaultSeed), propDefaultN
	if testing.Short() {
		n = propShortN
	}
	if v := os.Getenv("CAIRN_PROPTEST_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			t.Fatalf("CAIRN_PROPTEST_SEED=%q: %v", v, err)
		}
		seed = s
	}
	if v := os.Getenv("CAIRN_PROPTEST_N"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			t.Fatalf("CAIRN_PROPTEST_N=%q: want a positive number", v)
		}
		n = k
	}
	if *propSeed != 0 {
		seed = *propSeed
	}
	if *propN > 0 {
		n = *propN
	}
	return seed, n
}

func TestPropertyExactness(t *testing.T) {
	propertyExactness(t)
}

// TestPropertyExactnessSmallBatches runs the same sequences with batches of
// two ops: most batches then run while the images of the next are taken,
// and fail while they are (execute's flights).
func TestPropertyExactnessSmallBatches(t *testing.T) {
	t.Cleanup(steps.SetMaxBatch(2))
	propertyExactness(t)
}

func propertyExactness(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the sequences set owners")
	}
	seed, n := propSeeds(t)
	base := propTempDir(t)
	propProbeXattrs(t, base)
	var stats propStats
	t.Cleanup(func() {
		t.Logf("base seed %d, %d sequences: %d moves (%d failed as the direct apply does), ops run: %d forward, %d inverse, %d update",
			seed, n, stats.moves.Load(), stats.failed.Load(), stats.forward.Load(), stats.inverse.Load(), stats.update.Load())
	})
	for i := range n {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			t.Parallel()
			dir, err := os.MkdirTemp(base, "seq-")
			if err != nil {
				t.Fatal(err)
			}
			seq := &sequence{t: t, seed: s, dir: dir, stats: &stats}
			seq.run()
			if !t.Failed() {
				os.RemoveAll(dir)
			}
		})
	}
}

// propStats counts what the sequences did, to show that they reach the
// interesting cases.
type propStats struct {
	moves, failed, forward, inverse, update atomic.Int64
}

func (s *propStats) add(p *journal.Plan, failed bool) {
	s.moves.Add(1)
	if failed {
		s.failed.Add(1)
		return
	}
	for _, op := range p.Ops {
		switch op.Action {
		case journal.Forward:
			s.forward.Add(1)
		case journal.Inverse:
			s.inverse.Add(1)
		case journal.Update:
			s.update.Add(1)
		}
	}
}

// propTempDir returns a directory for the sequences' trees, kept when the
// test fails: in /dev/shm when there is one (every move syncs its file
// system, which is cheap on tmpfs), else in the system's temporary
// directory.
func propTempDir(t *testing.T) string {
	parent := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "cairn-proptest-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// sequence is one run of random journals over one original root.
type sequence struct {
	t    *testing.T
	seed uint64
	dir  string
	r    *rand.Rand
	o    *origin
	orig steps.TreeSnap // the original root

	src, blobs string // COPY sources and the blob dir of "-"

	root   *rootfs.Root // the root moved from journal to journal
	rootP  string
	state  string
	logBuf syncBuffer

	history strings.Builder // what ran, for the failure report
	fresh   int
	applied []string // canonical steps of the applied journal
	stats   *propStats
}

// syncBuffer is a bytes.Buffer for a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fatalf ends the sequence with everything needed to debug it.
func (q *sequence) fatalf(format string, args ...any) {
	q.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nreproduce: CAIRN_PROPTEST_SEED=%d CAIRN_PROPTEST_N=1 go test ./steps/ -run PropertyExactness -v\n", fmt.Sprintf(format, args...), q.seed)
	b.WriteString("\noriginal root (planted, parents first):\n")
	for _, p := range q.o.plants {
		fmt.Fprintf(&b, "  %v\n", p)
	}
	b.WriteString("\nsequence so far:\n")
	b.WriteString(q.history.String())
	if l := q.logBuf.String(); l != "" {
		b.WriteString("\napplier log:\n" + l)
	}
	fmt.Fprintf(&b, "\ntrees kept in %s\n", q.dir)
	q.t.Fatal(b.String())
}

func (q *sequence) must(err error) {
	q.t.Helper()
	if err != nil {
		q.fatalf("setup: %v", err)
	}
}

func (q *sequence) run() {
	q.r = rand.New(rand.NewPCG(q.seed, 0x65786163746e6573))
	q.o = genOrigin(q.r, rand.New(rand.NewPCG(q.seed, 0x6174747273)))
	q.writeSources()
	q.rootP = filepath.Join(q.dir, "root")
	q.state = filepath.Join(q.dir, "state")
	q.must(os.Mkdir(q.rootP, 0o755))
	q.must(q.o.materialize(q.rootP))
	var err error
	q.orig, err = steps.SnapTreeTimes(q.rootP)
	q.must(err)
	q.root, err = rootfs.Open(q.rootP)
	q.must(err)
	q.o.linkDir = map[string]bool{}
	for _, p := range propUniverse {
		if q.o.typ[p] == steps.TypeSymlink {
			// Beneath a link to a directory, a name resolves (or is absent).
			_, err := q.root.Lstat(p + "/probe")
			q.o.linkDir[p] = errors.Is(err, fs.ErrNotExist)
		}
	}
	defer q.root.Close()

	var journals [][]jstep
	cur := []jstep(nil) // the applied journal
	for k := range 5 + q.r.IntN(3) {
		var js []jstep
		switch x := q.r.IntN(10); {
		case k > 0 && x < 5:
			js = mutate(q.r, q.o, cur)
		case k > 1 && x < 7:
			js = pick(q.r, journals) // back to an earlier journal
		default:
			js = genJournal(q.r, q.o)
		}
		journals = append(journals, js)
		if q.move(k+1, js) {
			cur = js
		}
	}
	// Back to nothing: the original root, planted files restored.
	q.move(0, nil)
	if d := steps.DiffTrees(q.orig, q.snap(q.rootP), 10); len(d) > 0 {
		q.fatalf("after the move to the empty journal the root differs from the original:\n  %s", strings.Join(d, "\n  "))
	}
}

// writeSources writes the COPY sources and the blob dir.
func (q *sequence) writeSources() {
	q.src = filepath.Join(q.dir, "src")
	q.blobs = filepath.Join(q.dir, "blobs")
	q.must(os.MkdirAll(filepath.Join(q.src, "files"), 0o755))
	q.must(os.MkdirAll(q.blobs, 0o755))
	for _, s := range propSources {
		if s.content >= 0 {
			q.must(os.WriteFile(filepath.Join(q.src, filepath.FromSlash(s.name)), propContents[s.content], 0o644))
		}
	}
	for _, c := range propContents {
		sum := sha256.Sum256(c)
		q.must(os.WriteFile(filepath.Join(q.blobs, hex.EncodeToString(sum[:])), c, 0o644))
	}
}

// snap takes the snapshot of a tree, with the mtimes of files.
func (q *sequence) snap(root string) steps.TreeSnap {
	q.t.Helper()
	s, err := steps.SnapTreeTimes(root)
	if err != nil {
		q.fatalf("snapshot %s: %v", root, err)
	}
	return s
}

// parse parses a journal text and checks it is valid.
func (q *sequence) parse(name, text string) []journal.Step {
	q.t.Helper()
	j, err := journal.Parse(name, []byte(text))
	if err != nil {
		q.fatalf("generated journal does not parse: %v\n%s", err, text)
	}
	if errs := journal.Check(j.Steps); errs.HasErrors() {
		q.fatalf("generated journal is not valid: %v\n%s", errs, text)
	}
	return j.Steps
}

// apply opens the state dir and applies steps; the caller closes the
// Applier it returns (nil when the state would not open).
func (q *sequence) apply(root *rootfs.Root, state string, name string, st []journal.Step, log *slog.Logger) (*steps.Result, *steps.Applier, error) {
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: state, Create: true, Log: log})
	if err != nil {
		return nil, nil, err
	}
	res, err := a.Apply(ctx, steps.Move{Journal: name, Steps: st, Source: os.DirFS(q.src), SourceName: q.src, Blobs: os.DirFS(q.blobs), BlobsName: q.blobs, AllowRemoval: true})
	return res, a, err
}

// direct applies steps once to a fresh copy of the original root, with a
// fresh state dir, and returns the tree it leaves.
func (q *sequence) direct(name, text string) (steps.TreeSnap, error) {
	q.fresh++
	dir := filepath.Join(q.dir, fmt.Sprintf("direct-%d", q.fresh))
	rootP := filepath.Join(dir, "root")
	q.must(os.MkdirAll(rootP, 0o755))
	defer os.RemoveAll(dir)
	q.must(q.o.materialize(rootP))
	if d := steps.DiffTrees(q.orig, q.snap(rootP), 5); len(d) > 0 {
		q.fatalf("setup: a fresh copy of the original root differs:\n  %s", strings.Join(d, "\n  "))
	}
	root, err := rootfs.Open(rootP)
	q.must(err)
	defer root.Close()
	_, a, err := q.apply(root, filepath.Join(dir, "state"), name, q.parse(name, text), nil)
	if a != nil {
		a.Close()
	}
	return q.snap(rootP), err
}

// move moves the root to journal js (k names it; 0 is the final empty
// journal) and checks the result against a direct apply. It reports whether
// the move succeeded.
func (q *sequence) move(k int, js []jstep) bool {
	q.t.Helper()
	name := fmt.Sprintf("j%d.journal", k)
	text := format(q.r, js)
	fmt.Fprintf(&q.history, "--- %s:\n%s", name, text)

	wantSnap, directErr := q.direct(name, text)
	before := q.snap(q.rootP)
	st := q.parse(name, text)
	log := slog.New(slog.NewTextHandler(&q.logBuf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Fprintf(&q.logBuf, "--- %s\n", name)
	res, a, err := q.apply(q.root, q.state, name, st, log)
	if a == nil {
		q.fatalf("%s: open the state: %v", name, err)
	}
	defer a.Close()
	got := q.snap(q.rootP)
	var plan *journal.Plan
	if res != nil {
		plan = res.Plan
	}
	q.stats.add(plan, err != nil)
	var applied []string
	for _, s := range a.Applied().Steps {
		applied = append(applied, s.Step)
	}

	if directErr != nil {
		fmt.Fprintf(&q.history, "    (direct apply fails: %v)\n", directErr)
		var se *steps.StepError
		if !errors.As(directErr, &se) {
			q.fatalf("%s: the direct apply fails with %T, want a failing step: %v", name, directErr, directErr)
		}
		if d := steps.DiffTrees(q.orig, wantSnap, 10); len(d) > 0 {
			q.fatalf("%s: the failed direct apply left the fresh root changed:\n  %s", name, strings.Join(d, "\n  "))
		}
		if err == nil {
			q.fatalf("%s: the direct apply fails (%v), but the move succeeds", name, directErr)
		}
		fmt.Fprintf(&q.history, "    (move fails: %v)\n", err)
		if !errors.As(err, &se) {
			q.fatalf("%s: the move fails with %T, want a failing step: %v", name, err, err)
		}
		if d := steps.DiffTrees(before, got, 10); len(d) > 0 {
			q.fatalf("%s: the failed move left the root changed:\n  %s", name, strings.Join(d, "\n  "))
		}
		if !slices.Equal(applied, q.applied) {
			q.fatalf("%s: after the failed move the state records\n%s\nwant the journal before it\n%s", name, strings.Join(applied, "\n"), strings.Join(q.applied, "\n"))
		}
		return false
	}
	if err != nil {
		q.fatalf("%s: the direct apply succeeds, but the move fails: %v", name, err)
	}
	if d := steps.DiffTrees(wantSnap.Journaled(), got.Journaled(), 10); len(d) > 0 {
		q.fatalf("%s: the moved root differs from a direct apply (want: direct, got: moved):\n  %s", name, strings.Join(d, "\n  "))
	}
	// Every step of the journal holds: no drift right after the move.
	for i := range st {
		c, ok := steps.LookupKind(st[i].Op).(steps.Checker)
		if !ok {
			continue
		}
		drift, err := c.Check(context.Background(), a.Env(), &st[i])
		if err != nil || drift != "" {
			q.fatalf("%s: right after the move, %s drifted: %q %v", name, st[i].Canonical(), drift, err)
		}
	}
	if want := journal.Canonicals(st); !slices.Equal(applied, want) {
		q.fatalf("%s: the state records\n%s\nwant\n%s", name, strings.Join(applied, "\n"), strings.Join(want, "\n"))
	}
	q.applied = applied
	a.Close()

	// The same journal, spelled otherwise, is the same journal: the move
	// plans and runs nothing.
	again := format(q.r, js)
	res, a2, err := q.apply(q.root, q.state, name, q.parse(name, again), log)
	if a2 != nil {
		a2.Close()
	}
	if err != nil {
		q.fatalf("%s: applying it again: %v", name, err)
	}
	if !res.Plan.Empty() || res.Ran != 0 {
		q.fatalf("%s: applying it again, spelled\n%s\nplans %d removed, %d added, runs %d ops", name, again, len(res.Plan.Removed), len(res.Plan.Added), res.Ran)
	}
	if d := steps.DiffTrees(got, q.snap(q.rootP), 10); len(d) > 0 {
		q.fatalf("%s: applying it again changed the root:\n  %s", name, strings.Join(d, "\n  "))
	}
	return true
}
