package steps_test

// Crash-safety tests of the journal applier (spec §6): the real cairn binary
// is killed with SIGKILL at random moments of a move of several hundred ops,
// and the next command that opens the state must leave the host exactly at
// the old journal or exactly at the new one, with nothing temporary left.
//
// CAIRN_CRASH_TRIALS sets the number of random kills (make crashtest runs
// 2000); -short runs fewer.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/steps"
)

// ---------------------------------------------------------------------------
// The cairn binary, built once per test process.

var crashBin struct {
	once sync.Once
	path string
	err  error
}

// crashCairn returns the path of a cairn binary built from this tree. It is
// built once, into a directory named after this process; directories that
// earlier test processes left are removed.
func crashCairn(t testing.TB) string {
	t.Helper()
	crashBin.once.Do(func() {
		tmp := os.TempDir()
		if old, _ := filepath.Glob(filepath.Join(tmp, "cairn-steps-test-*")); len(old) > 0 {
			for _, d := range old {
				pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "cairn-steps-test-"))
				if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
					os.RemoveAll(d)
				}
			}
		}
		dir := filepath.Join(tmp, fmt.Sprintf("cairn-steps-test-%d", os.Getpid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			crashBin.err = err
			return
		}
		bin := filepath.Join(dir, "cairn")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/cairn-cm/cairn/cmd/cairn").CombinedOutput()
		if err != nil {
			crashBin.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		crashBin.path = bin
	})
	if crashBin.err != nil {
		t.Fatal(crashBin.err)
	}
	return crashBin.path
}

// crashResult is what one run of the binary did.
type crashResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// crashRun runs cairn with args and returns its exit code and output.
func crashRun(t testing.TB, args ...string) crashResult {
	t.Helper()
	cmd := exec.Command(crashCairn(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := crashResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		res.code = ee.ExitCode()
	default:
		t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return res
}

// crashMust runs cairn and fails the test unless it exits with want.
func crashMust(t testing.TB, want int, args ...string) crashResult {
	t.Helper()
	r := crashRun(t, args...)
	if r.code != want {
		t.Fatalf("cairn %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// ---------------------------------------------------------------------------
// Tree snapshots.

// crashTree is the tree snapshot of treesnap_test.go, which the crash
// tests share with the property test.
type crashTree = steps.TreeSnap

// crashSnapshot records every path beneath root (links recorded, never
// followed).
func crashSnapshot(t testing.TB, root string) crashTree {
	t.Helper()
	tree, err := steps.SnapTree(root)
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return tree
}

// crashDiff names how got differs from want, in path order, at most max
// findings (0: all).
func crashDiff(want, got crashTree, max int) []string { return steps.DiffTrees(want, got, max) }

// crashIsTemp reports whether a base name is a temporary file of cairn's:
// rootfs's ".NAME.cairn-tmp" and ".cairn-HEX.tmp", atomicfile's
// ".NAME.tmp-*", the blob store's ".blob.tmp-*".
func crashIsTemp(name string) bool {
	return strings.HasSuffix(name, ".cairn-tmp") ||
		(strings.HasPrefix(name, ".cairn-") && strings.HasSuffix(name, ".tmp")) ||
		strings.HasPrefix(name, ".blob.tmp-") ||
		atomicfile.IsTemp(name)
}

// crashTemps lists the temporary files beneath dir.
func crashTemps(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(host string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if crashIsTemp(d.Name()) {
			out = append(out, host)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// ---------------------------------------------------------------------------
// Host trees made before cairn touches them.

// crashPre is one object of a host tree as it is before cairn.
type crashPre struct {
	Path     string
	Type     string // "file", "dir", "symlink"
	Mode     uint32
	UID, GID int
	Content  []byte
	Target   string
}

// crashBuild makes the objects beneath root, parents before children; the
// modes of directories are set last, so that a read-only one does not stop
// its children.
func crashBuild(t testing.TB, root string, pre []crashPre) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	check := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	for _, o := range pre {
		host := filepath.Join(root, filepath.FromSlash(o.Path))
		switch o.Type {
		case "dir":
			check(os.Mkdir(host, 0o700))
		case "file":
			check(os.WriteFile(host, o.Content, 0o600))
			check(syscall.Lchown(host, o.UID, o.GID))
			check(syscall.Chmod(host, o.Mode))
		case "symlink":
			check(os.Symlink(o.Target, host))
			check(syscall.Lchown(host, o.UID, o.GID))
		default:
			t.Fatalf("crashBuild: type %q", o.Type)
		}
	}
	for i := len(pre) - 1; i >= 0; i-- {
		if o := pre[i]; o.Type == "dir" {
			host := filepath.Join(root, filepath.FromSlash(o.Path))
			check(syscall.Lchown(host, o.UID, o.GID))
			check(syscall.Chmod(host, o.Mode))
		}
	}
}

// ---------------------------------------------------------------------------
// The scenario: a host tree, an OLD journal of a few hundred steps, and a
// NEW one that the move from OLD reaches in at least 500 ops.

// Slot classes: the objects a journal may manage.
const (
	slotPreDir   = iota // a directory that exists before cairn: MKDIR or nothing
	slotPreChild        // an object in one: a file, link or empty directory
	slotSrvDir          // /srv/dN: made by MKDIR, or a link, or nothing
	slotSrvChild        // an object in /srv/dN, managed only while that is a MKDIR
	slotLoose           // /srv/xN: anything, nothing beneath it
)

type crashSlot struct {
	path   string
	class  int
	parent int // the slot of the parent directory, for slotSrvChild
}

type crashSource struct {
	src string // "files/cNN" or "-"
	sum string
}

// crashGen makes journals for one scenario.
type crashGen struct {
	rng   *rand.Rand
	slots []crashSlot
	srcs  []crashSource
	line  int // source line counter for the trailing comments
}

var (
	crashOwners    = []string{"root", "root", "alice", "1002", "bob"}
	crashGroups    = []string{"root", "root", "staff", "50", "alice"}
	crashFileModes = []string{"0644", "0644", "0600", "0640", "0755", "4755", "0444"}
	crashDirModes  = []string{"0755", "0755", "0750", "0700", "2775", "1777"}
	crashTargets   = []string{"/pre/d0", "../pre/d1", "target-a", "target-b", "/nonexistent/x", "../../etc/passwd", "."}
	crashIDs       = [][2]int{{0, 0}, {1001, 1001}, {1002, 50}, {0, 50}}
)

func (g *crashGen) pick(list []string) string { return list[g.rng.Intn(len(list))] }

func (g *crashGen) comment() string {
	g.line++
	if g.line%7 == 0 {
		return fmt.Sprintf(" # site.cairn:%d:1 > modules/m%d/main.cairn:%d:3", g.line, g.line%5, g.line%40+1)
	}
	return fmt.Sprintf(" # site.cairn:%d:3", g.line)
}

func (g *crashGen) copyStep(p string) string {
	s := g.srcs[g.rng.Intn(len(g.srcs))]
	src := s.src
	if src != "-" {
		src = strconv.Quote(src)
	}
	return fmt.Sprintf("COPY %s %s sha256=%s mode=%s owner=%s group=%s", src, p, s.sum, g.pick(crashFileModes), g.pick(crashOwners), g.pick(crashGroups))
}

func (g *crashGen) mkdirStep(p string) string {
	return fmt.Sprintf("MKDIR %s mode=%s owner=%s group=%s", p, g.pick(crashDirModes), g.pick(crashOwners), g.pick(crashGroups))
}

func (g *crashGen) symlinkStep(p string) string {
	return fmt.Sprintf("SYMLINK %s %s", strconv.Quote(g.pick(crashTargets)), p)
}

// tweak changes the mode, owner and group of a COPY or MKDIR step and keeps
// the rest; other steps it keeps as they are.
func (g *crashGen) tweak(line string) string {
	f := strings.Fields(line)
	switch f[0] {
	case "COPY":
		return fmt.Sprintf("COPY %s %s %s mode=%s owner=%s group=%s", f[1], f[2], f[3], g.pick(crashFileModes), g.pick(crashOwners), g.pick(crashGroups))
	case "MKDIR":
		return g.mkdirStep(f[1])
	}
	return line
}

// choose picks the step of a slot (or "" for unmanaged) given the step of its
// parent slot in the same journal.
func (g *crashGen) choose(sl crashSlot, parent string) string {
	r := g.rng.Intn(100)
	switch sl.class {
	case slotPreDir:
		if r < 55 {
			return ""
		}
		return g.mkdirStep(sl.path)
	case slotPreChild:
		switch {
		case r < 25:
			return ""
		case r < 60:
			return g.copyStep(sl.path)
		case r < 75:
			return g.symlinkStep(sl.path)
		case r < 88:
			return "RM " + sl.path
		default:
			return g.mkdirStep(sl.path)
		}
	case slotSrvDir:
		switch {
		case r < 8:
			return ""
		case r < 85:
			return g.mkdirStep(sl.path)
		default:
			return g.symlinkStep(sl.path)
		}
	case slotSrvChild:
		if !strings.HasPrefix(parent, "MKDIR ") {
			return ""
		}
		switch {
		case r < 18:
			return ""
		case r < 68:
			return g.copyStep(sl.path)
		case r < 83:
			return g.symlinkStep(sl.path)
		case r < 95:
			return g.mkdirStep(sl.path)
		default:
			return "RM " + sl.path
		}
	default: // slotLoose
		switch {
		case r < 15:
			return ""
		case r < 45:
			return g.copyStep(sl.path)
		case r < 65:
			return g.symlinkStep(sl.path)
		case r < 85:
			return g.mkdirStep(sl.path)
		default:
			return "RM " + sl.path
		}
	}
}

// crashScenario is one host tree with an OLD and a NEW journal and what
// applying each directly gives.
type crashScenario struct {
	seed             int64
	dir              string // the journals, their sources and blobs
	pre              []crashPre
	oldJ, newJ       string
	refOld, refNew   crashTree // the tree after a direct apply of OLD, of NEW
	showOld, showNew string    // journal show after each
	ops              int       // ops of the move OLD→NEW
	dur              time.Duration
	template         crashImage // a host with OLD applied, to copy
}

// crashExecLine is an EXEC step that makes a marker file beneath the root
// and whose undo removes it.
func crashExecLine(name string) string {
	mark := `"$CAIRN_ROOT/var/exec/` + name + `"`
	return fmt.Sprintf("EXEC %s undo=%s", strconv.Quote("echo ran > "+mark), strconv.Quote("rm -f "+mark))
}

// newCrashScenario writes the journals of a scenario into dir.
func newCrashScenario(t testing.TB, dir string, seed int64) *crashScenario {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	sc := &crashScenario{seed: seed, dir: dir}
	g := &crashGen{rng: rng}

	// The content pool of COPY: files of the source tree and blobs of
	// COPY -, a few of them large.
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".cairn", "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 48 {
		size := rng.Intn(3000)
		if i%16 == 5 {
			size = 200 << 10
		}
		data := make([]byte, size)
		rng.Read(data)
		sum := sha256.Sum256(data)
		s := crashSource{src: fmt.Sprintf("files/c%02d", i), sum: hex.EncodeToString(sum[:])}
		file := filepath.Join(dir, filepath.FromSlash(s.src))
		if i%4 == 0 {
			s.src = "-"
			file = filepath.Join(dir, ".cairn", "blobs", s.sum)
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		g.srcs = append(g.srcs, s)
	}

	// The host before cairn.
	content := func() []byte {
		data := make([]byte, rng.Intn(2000))
		rng.Read(data)
		return data
	}
	ids := func() (int, int) { id := crashIDs[rng.Intn(len(crashIDs))]; return id[0], id[1] }
	dirMode := func() uint32 { return []uint32{0o755, 0o750, 0o700, 0o2775}[rng.Intn(4)] }
	fileMode := func() uint32 { return []uint32{0o644, 0o600, 0o640, 0o755, 0o4755}[rng.Intn(5)] }
	add := func(o crashPre) { sc.pre = append(sc.pre, o) }
	add(crashPre{Path: "/etc", Type: "dir", Mode: 0o755})
	add(crashPre{Path: "/etc/passwd", Type: "file", Mode: 0o644, Content: []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\nbob:x:1002:50::/home/bob:/bin/sh\n")})
	add(crashPre{Path: "/etc/group", Type: "file", Mode: 0o644, Content: []byte("root:x:0:\nstaff:x:50:bob\nalice:x:1001:\n")})
	add(crashPre{Path: "/var", Type: "dir", Mode: 0o755})
	add(crashPre{Path: "/var/exec", Type: "dir", Mode: 0o755})
	add(crashPre{Path: "/srv", Type: "dir", Mode: 0o755})
	add(crashPre{Path: "/srv/unmanaged", Type: "file", Mode: 0o644, Content: []byte("not cairn's\n")})
	add(crashPre{Path: "/pre", Type: "dir", Mode: 0o755})
	for d := range 10 {
		dp := fmt.Sprintf("/pre/d%d", d)
		uid, gid := ids()
		add(crashPre{Path: dp, Type: "dir", Mode: dirMode(), UID: uid, GID: gid})
		g.slots = append(g.slots, crashSlot{path: dp, class: slotPreDir})
		add(crashPre{Path: dp + "/keep", Type: "file", Mode: 0o644, Content: content()})
		for f := range 8 {
			uid, gid := ids()
			add(crashPre{Path: fmt.Sprintf("%s/f%d", dp, f), Type: "file", Mode: fileMode(), UID: uid, GID: gid, Content: content()})
		}
		for l := range 2 {
			uid, gid := ids()
			add(crashPre{Path: fmt.Sprintf("%s/l%d", dp, l), Type: "symlink", UID: uid, GID: gid, Target: fmt.Sprintf("pre-target-%d", rng.Intn(100))})
		}
		for e := range 2 {
			uid, gid := ids()
			add(crashPre{Path: fmt.Sprintf("%s/e%d", dp, e), Type: "dir", Mode: dirMode(), UID: uid, GID: gid})
		}
		for _, n := range []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "l0", "l1", "e0", "e1", "n0"} {
			g.slots = append(g.slots, crashSlot{path: dp + "/" + n, class: slotPreChild})
		}
	}
	for d := range 16 {
		dp := fmt.Sprintf("/srv/d%02d", d)
		parent := len(g.slots)
		g.slots = append(g.slots, crashSlot{path: dp, class: slotSrvDir})
		for c := range 36 {
			g.slots = append(g.slots, crashSlot{path: fmt.Sprintf("%s/c%02d", dp, c), class: slotSrvChild, parent: parent})
		}
	}
	for x := range 12 {
		g.slots = append(g.slots, crashSlot{path: fmt.Sprintf("/srv/x%02d", x), class: slotLoose})
	}

	// OLD, then NEW as a mutation of it: most slots change.
	oldSteps := make([]string, len(g.slots))
	for i, sl := range g.slots {
		oldSteps[i] = g.choose(sl, oldSteps[sl.parent])
	}
	newSteps := make([]string, len(g.slots))
	for i, sl := range g.slots {
		keep := oldSteps[i]
		if sl.class == slotSrvChild && !strings.HasPrefix(newSteps[sl.parent], "MKDIR ") {
			keep = ""
		}
		if sl.class == slotSrvChild && !strings.HasPrefix(oldSteps[sl.parent], "MKDIR ") && strings.HasPrefix(newSteps[sl.parent], "MKDIR ") {
			// A link turned into a directory: its children are new.
			newSteps[i] = g.choose(sl, newSteps[sl.parent])
			continue
		}
		switch r := rng.Intn(100); {
		case r < 12:
			newSteps[i] = keep
		case r < 24 && keep != "":
			newSteps[i] = g.tweak(keep)
		default:
			newSteps[i] = g.choose(sl, newSteps[sl.parent])
		}
	}
	write := func(name string, lines []string, extra map[int][]string) string {
		var b strings.Builder
		b.WriteString("# generated by crash_test.go, seed " + strconv.FormatInt(seed, 10) + "\n")
		for i, l := range lines {
			for _, e := range extra[i] {
				b.WriteString(e + g.comment() + "\n")
			}
			if l != "" {
				b.WriteString(l + g.comment() + "\n")
			}
		}
		for _, e := range extra[len(lines)] {
			b.WriteString(e + g.comment() + "\n")
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	n := len(g.slots)
	sc.oldJ = write("old.journal", oldSteps, map[int][]string{
		n / 2: {crashExecLine("old-a")},
	})
	sc.newJ = write("new.journal", newSteps, map[int][]string{
		n / 3:     {crashExecLine("new-a")},
		2 * n / 3: {"CHECK file /etc/passwd timeout=5s interval=10ms"},
		n:         {crashExecLine("new-b"), "CHECK command true timeout=5s interval=10ms"},
	})
	sc.checkPlan(t)
	return sc
}

// checkPlan makes sure the move OLD→NEW is the move the test wants: at least
// 500 ops, with inverses, updates and forwards of every sort.
func (sc *crashScenario) checkPlan(t testing.TB) {
	t.Helper()
	oldJ, err := journal.LoadFile(sc.oldJ)
	if err != nil {
		t.Fatal(err)
	}
	newJ, err := journal.LoadFile(sc.newJ)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []*journal.Journal{oldJ, newJ} {
		if errs := journal.Check(j.Steps); errs.HasErrors() {
			t.Fatalf("generated journal %s: %v", j.File, errs)
		}
	}
	p := journal.MakePlan(oldJ.Steps, newJ.Steps)
	seen := map[string]int{}
	for _, op := range p.Ops {
		if op.Noop {
			continue
		}
		sc.ops++
		s := op.Step
		seen[op.Action.String()]++
		switch {
		case op.Action == journal.Inverse && s.Op == journal.OpMkdir && strings.HasPrefix(s.Path(), "/srv/d"):
			seen["removed dir"]++
		case op.Action == journal.Update && s.Op == journal.OpCopy && op.Prev.Op == journal.OpCopy:
			if op.Prev.Get("sha256") != s.Get("sha256") {
				seen["new content"]++
			}
			if op.Prev.Get("mode") != s.Get("mode") {
				seen["new mode"]++
			}
		case op.Action == journal.Forward && s.Op == journal.OpSymlink:
			seen["new link"]++
		case op.Action != journal.Inverse && s.Op == journal.OpRm && strings.HasPrefix(s.Path(), "/pre/") && !strings.Contains(s.Path(), "/n"):
			seen["rm pre-existing"]++
		case op.Action == journal.Update && op.Prev.Op != s.Op:
			seen["new type"]++
		}
	}
	for _, k := range []string{"inverse", "update", "forward", "removed dir", "new content", "new mode", "new link", "rm pre-existing", "new type"} {
		if seen[k] == 0 {
			t.Fatalf("scenario %d: the move has no op of sort %q (%v)", sc.seed, k, seen)
		}
	}
	if sc.ops < 500 {
		t.Fatalf("scenario %d: the move has %d ops, want at least 500 (%v)", sc.seed, sc.ops, seen)
	}
	t.Logf("scenario %d: OLD %d steps, NEW %d steps, move %d ops %v", sc.seed, len(oldJ.Steps), len(newJ.Steps), sc.ops, seen)
}

// crashHost is one host tree with its own state directory.
type crashHost struct {
	root, state string
}

func (sc *crashScenario) newHost(t testing.TB, dir string) crashHost {
	t.Helper()
	h := crashHost{root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
	crashBuild(t, h.root, sc.pre)
	return h
}

// crashImage is a host held in memory, to make copies of.
type crashImage struct {
	root, state []crashPre
	stateMode   uint32
}

// crashRead reads every object beneath dir into memory.
func crashRead(t testing.TB, dir string) []crashPre {
	t.Helper()
	var pre []crashPre
	err := filepath.WalkDir(dir, func(host string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, host)
		if rel == "." {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(host, &st); err != nil {
			return err
		}
		o := crashPre{Path: "/" + filepath.ToSlash(rel), Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid)}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			o.Type = "dir"
		case syscall.S_IFREG:
			o.Type = "file"
			o.Content, err = os.ReadFile(host)
		case syscall.S_IFLNK:
			o.Type = "symlink"
			o.Target, err = os.Readlink(host)
		default:
			err = fmt.Errorf("%s: cannot copy type %o", host, st.Mode&syscall.S_IFMT)
		}
		pre = append(pre, o)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pre
}

// image reads the host into memory.
func (h crashHost) image(t testing.TB) crashImage {
	t.Helper()
	fi, err := os.Lstat(h.state)
	if err != nil {
		t.Fatal(err)
	}
	return crashImage{root: crashRead(t, h.root), state: crashRead(t, h.state), stateMode: uint32(fi.Mode().Perm())}
}

// makeHost makes a copy of the image at dir: every object with its type,
// mode, owner, content and link target, and the state directory, which it
// tells its new root.
func (im crashImage) makeHost(t testing.TB, dir string) crashHost {
	t.Helper()
	h := crashHost{root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
	crashBuild(t, h.root, im.root)
	crashBuild(t, h.state, im.state)
	if err := os.Chmod(h.state, os.FileMode(im.stateMode)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.state, "root"), []byte(h.root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h crashHost) args(cmd ...string) []string {
	return append(cmd, "--root", h.root, "--state", h.state)
}

// prepare makes the references and measures how long a move takes.
func (sc *crashScenario) prepare(t *testing.T, dir string) {
	t.Helper()
	sc.refs(t, dir)
	sc.calibrate(t, dir)
}

// refs makes the references: the trees and listings of direct applies of
// OLD and of NEW, and the template, a host with OLD applied.
func (sc *crashScenario) refs(t testing.TB, dir string) {
	t.Helper()
	for _, ref := range []struct {
		journal string
		tree    *crashTree
		show    *string
		host    *crashImage
	}{{sc.oldJ, &sc.refOld, &sc.showOld, &sc.template}, {sc.newJ, &sc.refNew, &sc.showNew, nil}} {
		h := sc.newHost(t, filepath.Join(dir, "ref-"+filepath.Base(ref.journal)))
		crashMust(t, 0, h.args("journal", "apply", ref.journal)...)
		*ref.tree = crashSnapshot(t, h.root)
		*ref.show = crashMust(t, 0, h.args("journal", "show")...).stdout
		// The host matches what was applied: no drift.
		crashMust(t, 0, h.args("journal", "drift")...)
		if tmp := crashTemps(t, h.state); len(tmp) > 0 {
			t.Fatalf("temporary files left after a clean apply: %v", tmp)
		}
		if ref.host != nil {
			*ref.host = h.image(t)
		}
	}
	// A copy of the template is the host after OLD.
	c := sc.template.makeHost(t, filepath.Join(dir, "template-copy"))
	if d := crashDiff(sc.refOld, crashSnapshot(t, c.root), 10); len(d) > 0 {
		t.Fatalf("a copy of the template is not the host after OLD:\n%s", strings.Join(d, "\n"))
	}
	if show := crashMust(t, 0, c.args("journal", "show")...).stdout; show != sc.showOld {
		t.Fatalf("journal show on a copy of the template differs from after OLD")
	}
	if sc.showOld == sc.showNew {
		t.Fatal("journal show prints the same for OLD and NEW")
	}
}

// calibrate checks that the move itself, uninterrupted, reaches what a
// direct apply of NEW gives (§5 exactness), and measures how long it takes
// with as many moves at once as the trials run.
func (sc *crashScenario) calibrate(t *testing.T, dir string) {
	t.Helper()
	workers := crashWorkers()
	durs := make([]time.Duration, 2*workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(durs); k += workers {
				t.Run(fmt.Sprintf("seed%d/calibrate%d", sc.seed, k), func(t *testing.T) {
					h := sc.template.makeHost(t, filepath.Join(dir, fmt.Sprintf("calibrate-%d", k)))
					r := crashMust(t, 0, h.args("journal", "apply", sc.newJ)...)
					durs[k] = r.took
					if d := crashDiff(sc.refNew, crashSnapshot(t, h.root), 20); len(d) > 0 {
						t.Fatalf("the move OLD→NEW does not reach a direct apply of NEW:\n%s", strings.Join(d, "\n"))
					}
					if show := crashMust(t, 0, h.args("journal", "show")...); show.stdout != sc.showNew {
						t.Fatalf("journal show after the move differs from after a direct apply of NEW")
					}
					crashMust(t, 0, h.args("journal", "drift")...)
					os.RemoveAll(filepath.Dir(h.root))
				})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	sc.dur = durs[len(durs)/2]
}

// ---------------------------------------------------------------------------
// Killing a move.

// crashOutcome classifies where a kill landed.
type crashOutcome int

const (
	crashBefore      crashOutcome = iota // no intent log yet: nothing had changed
	crashDuringPlan                      // an intent log with no op recorded (images being taken)
	crashDuringOps                       // ops recorded, not committed
	crashAfterCommit                     // NEW committed, the intent log still there
	crashFinished                        // the move had finished
	crashOutcomes
)

func (o crashOutcome) String() string {
	return [...]string{"before the move", "during: intent log begun, no op recorded", "during: ops recorded", "after the commit point", "after the move ended"}[o]
}

// crashApplied reads the generation of the applied journal in a state dir.
func crashApplied(t testing.TB, state string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, "applied.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var a steps.Applied
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("applied.json: %v", err)
	}
	return a.Generation
}

// crashStart starts cairn with args in a process group of its own, so that a
// kill reaches the commands it runs too, as a crash would.
func crashStart(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(crashCairn(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// crashKill kills the process group of cmd with SIGKILL and reaps it; it
// reports whether the process was still running (else it must have exited
// 0).
func crashKill(t testing.TB, cmd *exec.Cmd) bool {
	t.Helper()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true
	}
	if err != nil {
		t.Fatalf("the move ended on its own with %v:\n%s", err, cmd.Stdout)
	}
	return false
}

// crashKillExecs kills what a killed cairn left running for root, and
// waits until none of it is left: an EXEC's command (and its undo) runs in
// a process group of its own (docs/state.md), so it outlives the kill of
// cairn's group, where it would not outlive the crash of the host that a
// trial stands for, and could act after the recovery it raced.
func crashKillExecs(t testing.TB, root string) {
	t.Helper()
	var marks [][]byte
	for _, r := range []string{root, crashRealPath(root)} {
		marks = append(marks, []byte("\x00CAIRN_ROOT="+r+"\x00"))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		left := 0
		procs, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			pid, err := strconv.Atoi(p.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
			if err != nil { // gone, or a zombie's
				continue
			}
			env = append(append([]byte{0}, env...), 0)
			for _, m := range marks {
				if bytes.Contains(env, m) {
					left++
					syscall.Kill(pid, syscall.SIGKILL)
					break
				}
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of EXEC steps beneath %s outlive SIGKILL for 10 s", left, root)
		}
	}
}

// crashRealPath is p with its links resolved, or p.
func crashRealPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// crashTrialStats counts where kills landed.
type crashTrialStats struct {
	mu      sync.Mutex
	n       [crashOutcomes]int
	mixed   int // kills that left the tree neither OLD nor NEW before recovery
	torn    int // intent logs whose last record was torn
	retried int // trials that applied NEW again after the recovery
	fresh   int // trials that applied OLD themselves
	rekill  int // trials whose first recovery was killed too
}

// crashTrial applies OLD to a fresh host, starts the move to NEW, kills it
// after delay, and checks what the next command that opens the state makes
// of it.
// With fresh, OLD is applied to a new host tree; else the host is a copy of
// the scenario's template, where OLD was applied.
//
// With killRecovery, the first command that recovers is killed too, after
// that long, and the next one must finish the recovery.
func (sc *crashScenario) crashTrial(t testing.TB, dir string, delay, killRecovery time.Duration, fresh, retry bool, stats *crashTrialStats) {
	t.Helper()
	var h crashHost
	if fresh {
		h = sc.newHost(t, dir)
		crashMust(t, 0, h.args("journal", "apply", sc.oldJ)...)
		if d := crashDiff(sc.refOld, crashSnapshot(t, h.root), 10); len(d) > 0 {
			t.Fatalf("applying OLD is not deterministic:\n%s", strings.Join(d, "\n"))
		}
	} else {
		h = sc.template.makeHost(t, dir)
	}
	gen := crashApplied(t, h.state)

	cmd := crashStart(t, h.args("journal", "apply", sc.newJ)...)
	time.Sleep(delay)
	killed := crashKill(t, cmd)
	crashKillExecs(t, h.root)

	// Where did the kill land?
	intent, err := os.ReadFile(filepath.Join(h.state, "intent.log"))
	hasIntent := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	committed := crashApplied(t, h.state) > gen
	var out crashOutcome
	switch {
	case !killed:
		out = crashFinished
	case committed && hasIntent:
		out = crashAfterCommit
	case committed:
		out = crashFinished
	case !hasIntent:
		out = crashBefore
	case bytes.Count(intent, []byte(`"t":"op"`)) == 0:
		out = crashDuringPlan
	default:
		out = crashDuringOps
	}
	if out == crashFinished && hasIntent {
		t.Fatalf("the move ended but left its intent log")
	}
	before := crashSnapshot(t, h.root)
	mixed := len(crashDiff(sc.refOld, before, 1)) > 0 && len(crashDiff(sc.refNew, before, 1)) > 0
	if mixed && out != crashDuringOps && out != crashAfterCommit {
		t.Fatalf("killed %s (%v), yet the tree is neither OLD nor NEW", out, delay)
	}
	torn := len(intent) > 0 && intent[len(intent)-1] != '\n'

	// A recovery killed half way is finished by the next command.
	recoveryKilled := false
	if killRecovery > 0 && hasIntent {
		cmd := crashStart(t, h.args("journal", "show")...)
		time.Sleep(killRecovery)
		recoveryKilled = crashKill(t, cmd)
		crashKillExecs(t, h.root)
	}

	// The next command that opens the state recovers, then does its work.
	show := crashRun(t, h.args("journal", "show")...)
	if show.code != 0 {
		t.Fatalf("killed %s (%v): journal show exit %d:\n%s", out, delay, show.code, show.stderr)
	}
	if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("killed %s (%v): the intent log is still there after recovery (%v)", out, delay, err)
	}
	after := crashSnapshot(t, h.root)
	var wantTree crashTree
	var which string
	switch show.stdout {
	case sc.showOld:
		wantTree, which = sc.refOld, "OLD"
		if committed {
			t.Fatalf("killed %s (%v): NEW was committed, yet journal show prints OLD", out, delay)
		}
	case sc.showNew:
		wantTree, which = sc.refNew, "NEW"
		if !committed {
			t.Fatalf("killed %s (%v): NEW was not committed, yet journal show prints it", out, delay)
		}
	default:
		t.Fatalf("killed %s (%v): journal show prints neither OLD nor NEW:\n%.2000s", out, delay, show.stdout)
	}
	if d := crashDiff(wantTree, after, 30); len(d) > 0 {
		t.Fatalf("killed %s (%v; %s recorded as applied): the tree after recovery is not %s:\n%s\nstderr of journal show:\n%s",
			out, delay, which, which, strings.Join(d, "\n"), show.stderr)
	}
	if tmp := append(crashTemps(t, h.root), crashTemps(t, h.state)...); len(tmp) > 0 {
		t.Fatalf("killed %s (%v): temporary files left after recovery: %v", out, delay, tmp)
	}
	if out == crashDuringOps && killRecovery == 0 && !strings.Contains(show.stderr, "recovered an interrupted move") {
		t.Errorf("killed %s (%v): journal show did not say that it recovered the move:\n%s", out, delay, show.stderr)
	}

	// The state is usable again: the move to NEW now completes.
	if retry {
		crashMust(t, 0, h.args("journal", "apply", sc.newJ)...)
		if d := crashDiff(sc.refNew, crashSnapshot(t, h.root), 20); len(d) > 0 {
			t.Fatalf("killed %s (%v): applying NEW after the recovery does not reach NEW:\n%s", out, delay, strings.Join(d, "\n"))
		}
	}

	stats.mu.Lock()
	stats.n[out]++
	if mixed {
		stats.mixed++
	}
	if torn {
		stats.torn++
	}
	if retry {
		stats.retried++
	}
	if fresh {
		stats.fresh++
	}
	if recoveryKilled {
		stats.rekill++
	}
	stats.mu.Unlock()
	os.RemoveAll(dir)
}

// crashWorkers is how many moves the trials run at once.
func crashWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }

// crashTrials is how many random kills to make.
func crashTrials(t *testing.T) int {
	if s := os.Getenv("CAIRN_CRASH_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CAIRN_CRASH_TRIALS=%q: want a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 40
	}
	return 200
}

// crashBaseDir returns a directory for host trees: $CAIRN_CRASH_DIR, or
// one in /dev/shm where that is a tmpfs (a kill -9 leaves the page cache
// intact, so the file system does not matter to these tests, and a tmpfs
// makes fsync free), else the test's temporary directory.
func crashBaseDir(t *testing.T) string {
	t.Helper()
	parent := os.Getenv("CAIRN_CRASH_DIR")
	if parent == "" {
		var fs syscall.Statfs_t
		const tmpfsMagic = 0x01021994
		if syscall.Statfs("/dev/shm", &fs) == nil && fs.Type == tmpfsMagic && syscall.Access("/dev/shm", 2) == nil {
			parent = "/dev/shm"
		}
	}
	if parent == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "cairn-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func crashNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the trees hold objects of several owners")
	}
}

// TestCrashRandomKill kills moves of 500+ ops at random moments, before,
// during and after the move, and checks recovery (spec §6).
func TestCrashRandomKill(t *testing.T) {
	crashNeedRoot(t)
	trials := crashTrials(t)
	base := crashBaseDir(t)
	seeds := []int64{1, 2, 3}
	scs := make([]*crashScenario, len(seeds))
	for i, seed := range seeds {
		dir := filepath.Join(base, fmt.Sprintf("scenario-%d", seed))
		scs[i] = newCrashScenario(t, dir, seed)
		scs[i].prepare(t, dir)
		t.Logf("scenario %d: a move takes %v", seed, scs[i].dur)
	}

	var stats crashTrialStats
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	type trial struct {
		sc     *crashScenario
		delay  time.Duration
		rekill time.Duration
		fresh  bool
		retry  bool
	}
	work := make(chan trial)
	var wg sync.WaitGroup
	var failed sync.Once
	stop := make(chan struct{})
	for w := range crashWorkers() {
		wg.Go(func() {
			for i := 0; ; i++ {
				tr, ok := <-work
				if !ok {
					return
				}
				dir := filepath.Join(base, fmt.Sprintf("trial-%d-%d", w, i))
				ok = t.Run(fmt.Sprintf("seed%d/delay%v", tr.sc.seed, tr.delay.Round(time.Millisecond)), func(t *testing.T) {
					tr.sc.crashTrial(t, dir, tr.delay, tr.rekill, tr.fresh, tr.retry, &stats)
				})
				if !ok {
					failed.Do(func() { close(stop) })
				}
			}
		})
	}
	start := time.Now()
feed:
	for i := range trials {
		sc := scs[i%len(scs)]
		tr := trial{sc: sc, delay: time.Duration(rng.Int63n(int64(sc.dur)*12/10 + 1)), fresh: i%16 == 1, retry: i%16 == 0}
		if i%4 == 3 {
			// A recovery undoes at most a move's ops, and a command starts
			// in a few milliseconds.
			tr.rekill = time.Duration(1 + rng.Int63n(int64(sc.dur)/2))
		}
		select {
		case work <- tr:
		case <-stop:
			break feed
		}
	}
	close(work)
	wg.Wait()
	var summary []string
	ran := 0
	for o := range crashOutcomes {
		summary = append(summary, fmt.Sprintf("%s: %d", o, stats.n[o]))
		ran += stats.n[o]
	}
	msg := fmt.Sprintf("%d trials in %v; %s; %d killed with the tree half moved; %d torn last intent records; %d applied OLD themselves; %d applied NEW again after recovery; %d killed the first recovery too",
		ran, time.Since(start).Round(time.Millisecond), strings.Join(summary, ", "), stats.mixed, stats.torn, stats.fresh, stats.retried, stats.rekill)
	t.Log(msg)
	if os.Getenv("CAIRN_CRASH_TRIALS") != "" {
		// make crashtest reports where the kills landed without -v.
		fmt.Println("TestCrashRandomKill:", msg)
	}
	if !t.Failed() && trials >= 100 {
		// With delays spread over 1.2 times a move, every phase is hit.
		for _, o := range []crashOutcome{crashBefore, crashDuringOps, crashFinished} {
			if stats.n[o] == 0 {
				t.Errorf("no kill landed %s", o)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// A kill at a known point: an EXEC in the middle of the move blocks until it
// is killed, so the ops before it have run and the intent log holds them.

// crashBlocked is a host killed in the middle of a move.
type crashBlocked struct {
	sc      *crashScenario
	refOld  crashTree
	showOld string
	killed  crashImage // the host as the kill left it, to make copies of
	// host is the killed host itself. Recovery must run there: the undo
	// images in its intent log name directories by device and inode
	// number, which a copy made with makeHost does not keep, so that
	// recovery on a copy refuses (exit 3).
	host crashHost
	log  string // where the blocking EXEC writes what ran
}

// crashKillAtExec applies OLD of a scenario, starts the move to a NEW with a
// blocking EXEC halfway, and kills the move once the EXEC runs.
func crashKillAtExec(t *testing.T) *crashBlocked {
	t.Helper()
	crashNeedRoot(t)
	base := crashBaseDir(t)
	sc := newCrashScenario(t, filepath.Join(base, "scenario"), 11)
	b := &crashBlocked{sc: sc, log: filepath.Join(base, "exec.log")}
	mark := filepath.Join(base, "exec.mark")

	// NEW with an EXEC halfway that says it runs, then blocks.
	data, err := os.ReadFile(sc.newJ)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	half := len(lines) / 2
	block := fmt.Sprintf("EXEC %s undo=%s # site.cairn:999:3",
		strconv.Quote(fmt.Sprintf("echo ran >> %s; touch %s; sleep 60", b.log, mark)),
		strconv.Quote("echo undone >> "+b.log))
	lines = append(lines[:half], append([]string{block}, lines[half:]...)...)
	blocked := filepath.Join(sc.dir, "blocked.journal")
	if err := os.WriteFile(blocked, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}

	h := sc.newHost(t, filepath.Join(base, "host"))
	crashMust(t, 0, h.args("journal", "apply", sc.oldJ)...)
	b.refOld = crashSnapshot(t, h.root)
	b.showOld = crashMust(t, 0, h.args("journal", "show")...).stdout

	cmd := crashStart(t, h.args("journal", "apply", blocked)...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			crashKill(t, cmd)
			t.Fatalf("the blocking EXEC did not run within a minute:\n%s", cmd.Stdout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !crashKill(t, cmd) {
		t.Fatal("the move ended although its EXEC blocks")
	}
	if d := crashDiff(b.refOld, crashSnapshot(t, h.root), 1); len(d) == 0 {
		t.Fatal("killed at the EXEC halfway, yet the tree is still OLD: no op ran before it")
	}
	if _, err := os.Stat(filepath.Join(h.state, "intent.log")); err != nil {
		t.Fatalf("killed in the middle of the move, yet no intent log: %v", err)
	}
	b.killed = h.image(t)
	b.host = h
	return b
}

// crashIntentLine makes a record of the intent log (intent.go): the CRC-32C
// of the JSON in eight hex digits, a space, the JSON, a newline.
func crashIntentLine(t testing.TB, rec any) []byte {
	t.Helper()
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	sum := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	return append(fmt.Appendf(nil, "%08x %s", sum, body), '\n')
}

// crashHarmfulRecord is an intent record, number seq of a batch that ends
// with it, that, if recovery undid it, would remove /srv/unmanaged, a file
// no journal manages.
func crashHarmfulRecord(t testing.TB, seq int64) []byte {
	return crashIntentLine(t, map[string]any{
		"seq": seq, "end": seq,
		"t": "op", "i": 100000, "action": "forward", "step": "RM /srv/unmanaged", "at": "x.journal:1:1",
		"undo": map[string]any{"absent": true},
	})
}

// crashNextSeq returns the number the next record of an intent log would
// have.
func crashNextSeq(t testing.TB, name string) int64 {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var rec struct{ Seq int64 }
	if err := json.Unmarshal(lines[len(lines)-1][9:], &rec); err != nil || rec.Seq == 0 {
		t.Fatalf("the last record of %s has no number (%v)", name, err)
	}
	return rec.Seq + 1
}

// TestCrashKillDuringExec kills a move while an EXEC halfway runs: the next
// command undoes every op recorded, the EXEC included, and the host is OLD.
func TestCrashKillDuringExec(t *testing.T) {
	b := crashKillAtExec(t)
	h := b.host
	show := crashMust(t, 0, h.args("journal", "show")...)
	if show.stdout != b.showOld {
		t.Fatalf("journal show after recovery does not print OLD:\n%.2000s", show.stdout)
	}
	if d := crashDiff(b.refOld, crashSnapshot(t, h.root), 30); len(d) > 0 {
		t.Fatalf("after recovery the tree is not OLD:\n%s", strings.Join(d, "\n"))
	}
	if tmp := append(crashTemps(t, h.root), crashTemps(t, h.state)...); len(tmp) > 0 {
		t.Fatalf("temporary files left after recovery: %v", tmp)
	}
	if !strings.Contains(show.stderr, "recovered an interrupted move") {
		t.Errorf("journal show did not say that it recovered a move:\n%s", show.stderr)
	}
	// The EXEC was killed while it ran: recovery runs its undo.
	if got, _ := os.ReadFile(b.log); string(got) != "ran\nundone\n" {
		t.Errorf("the blocking EXEC's log reads %q, want it ran, then its undo", got)
	}
	// Recovery happens once.
	again := crashMust(t, 0, h.args("journal", "show")...)
	if strings.Contains(again.stderr, "recovered") {
		t.Errorf("a second command recovered again:\n%s", again.stderr)
	}
}

// TestCrashTornIntentRecord: a torn last record of the intent log, as a
// power loss leaves it, is ignored; recovery undoes the rest.
func TestCrashTornIntentRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(harmful []byte) []byte
	}{
		{"half a record", func(h []byte) []byte { return h[:len(h)/2] }},
		{"a record without its newline", func(h []byte) []byte { return h[:len(h)-1] }},
		{"a record with a bad checksum", func(h []byte) []byte {
			bad := append([]byte{}, h...)
			bad[0] ^= 1 // still hex: '0'..'9' and 'a'..'f' flip within hex digits but the sum differs
			if bad[0] < '0' || (bad[0] > '9' && bad[0] < 'a') || bad[0] > 'f' {
				bad[0] = h[0] ^ 2
			}
			return bad
		}},
		{"zeros", func([]byte) []byte { return make([]byte, 700) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The killed host itself: a copy would have other inode
			// numbers, which recovery refuses (place.go).
			b := crashKillAtExec(t)
			h := b.host
			log := filepath.Join(h.state, "intent.log")
			harmful := crashHarmfulRecord(t, crashNextSeq(t, log))
			f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tc.tail(harmful)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			show := crashRun(t, h.args("journal", "show")...)
			if show.code != 0 {
				t.Fatalf("journal show: exit %d, want 0 (a torn last record is ignored):\n%s", show.code, show.stderr)
			}
			if show.stdout != b.showOld {
				t.Fatalf("journal show after recovery does not print OLD:\n%.2000s", show.stdout)
			}
			if d := crashDiff(b.refOld, crashSnapshot(t, h.root), 30); len(d) > 0 {
				t.Fatalf("after recovery the tree is not OLD:\n%s", strings.Join(d, "\n"))
			}
			if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the intent log is still there after recovery (%v)", err)
			}
		})
	}
}

// TestCrashCorruptIntentRecord: a bad record that whole records of a later
// batch follow makes the intent log corrupt: exit 3 naming the file and
// line and saying what to do, and nothing changes, for every command, until
// the log is removed.
func TestCrashCorruptIntentRecord(t *testing.T) {
	b := crashKillAtExec(t)
	for _, tc := range []struct {
		name    string
		corrupt func(lines [][]byte) [][]byte
		line    int // the line the error names
	}{
		{"a flipped byte in the second record", func(l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"t":"op"`), []byte(`"t":"oq"`), 1)
			return l
		}, 2},
		{"a bad checksum in the third record", func(l [][]byte) [][]byte {
			l[2] = append([]byte("00000000"), l[2][8:]...)
			return l
		}, 3},
		{"a torn record before a whole one", func(l [][]byte) [][]byte {
			l[3] = l[3][:len(l[3])/2]
			return l
		}, 4},
		{"an undecodable record with a good checksum", func(l [][]byte) [][]byte {
			body := []byte(`{"t":"op","i":"not a number"}`)
			sum := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
			l[1] = fmt.Appendf(nil, "%08x %s", sum, body)
			return l
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := b.killed.makeHost(t, filepath.Join(crashBaseDir(t), "host"))
			name := filepath.Join(h.state, "intent.log")
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
			if len(lines) < 5 {
				t.Fatalf("the intent log holds %d records, want at least 5", len(lines))
			}
			data = append(bytes.Join(tc.corrupt(lines), []byte("\n")), '\n')
			if err := os.WriteFile(name, data, 0o600); err != nil {
				t.Fatal(err)
			}
			tree := crashSnapshot(t, h.root)
			state := crashSnapshot(t, h.state)
			for _, cmd := range [][]string{{"journal", "show"}, {"journal", "drift"}, {"journal", "apply", b.sc.oldJ}} {
				r := crashRun(t, h.args(cmd...)...)
				if r.code != 3 {
					t.Fatalf("cairn %s: exit %d, want 3:\n%s", cmd[1], r.code, r.stderr)
				}
				for _, want := range []string{fmt.Sprintf("%s:%d: corrupt intent log", name, tc.line), "remove the file"} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("cairn %s: the error does not say %q:\n%s", cmd[1], want, r.stderr)
					}
				}
				if d := crashDiff(tree, crashSnapshot(t, h.root), 10); len(d) > 0 {
					t.Fatalf("cairn %s changed the host:\n%s", cmd[1], strings.Join(d, "\n"))
				}
				after := crashSnapshot(t, h.state)
				delete(after, "/lock") // holds the pid of whoever holds the lock
				want := maps.Clone(state)
				delete(want, "/lock")
				if d := crashDiff(want, after, 10); len(d) > 0 {
					t.Fatalf("cairn %s changed the state directory:\n%s", cmd[1], strings.Join(d, "\n"))
				}
			}
			// The operator removes the log: the state is open again, OLD
			// still applied.
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
			if show := crashMust(t, 0, h.args("journal", "show")...); show.stdout != b.showOld {
				t.Errorf("journal show once the log is removed does not print OLD:\n%.2000s", show.stdout)
			}
		})
	}
}

// TestCrashKillDuringIngest kills a move while it copies a COPY source into
// the blob store, before the intent log exists: the host is untouched, and
// the next command leaves no temporary blob behind. The source is a large
// sparse file, so that the copy lasts long enough to be caught at it (its
// sha256 is never reached: the move is killed first).
func TestCrashKillDuringIngest(t *testing.T) {
	f := newFailFixture(t)
	h, before, showBefore := f.host(t, "ingest")
	slow := filepath.Join(f.dir, "files", "slow")
	if err := os.WriteFile(slow, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(slow, 8<<30); err != nil {
		t.Fatal(err)
	}
	newJ, _ := f.newJournal(t, "new-slow.journal", "COPY files/slow /srv/slow sha256="+strings.Repeat("ab", 32))

	cmd := crashStart(t, h.args("journal", "apply", newJ)...)
	deadline := time.Now().Add(30 * time.Second)
	for len(crashTemps(t, filepath.Join(h.state, "blobs"))) == 0 {
		if time.Now().After(deadline) {
			crashKill(t, cmd)
			t.Fatal("no temporary blob while cairn copies a source into the store")
		}
		time.Sleep(time.Millisecond)
	}
	if !crashKill(t, cmd) {
		t.Fatal("the move ended while it still copied its COPY source")
	}
	if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an intent log before the inputs were checked (%v)", err)
	}

	show := crashMust(t, 0, h.args("journal", "show")...)
	if show.stdout != showBefore {
		t.Errorf("journal show does not print OLD:\n%s", show.stdout)
	}
	if d := crashDiff(before, crashSnapshot(t, h.root), 20); len(d) > 0 {
		t.Errorf("a move killed while checking its inputs changed the host:\n%s", strings.Join(d, "\n"))
	}
	if tmp := crashTemps(t, h.state); len(tmp) > 0 {
		t.Errorf("temporary files left in the state directory after the next command: %v", tmp)
	}
}

// TestCrashKillAtSyscall stops a move at a chosen system call, with strace's
// fault injection (a long delay on entry), and kills it there: the moments
// that random kills rarely hit, such as the commit itself.
func TestCrashKillAtSyscall(t *testing.T) {
	crashNeedRoot(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("needs strace")
	}
	if out, err := exec.Command(strace, "-f", "--seccomp-bpf", "-e", "trace=fsync", "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here: %v\n%s", err, out)
	}
	base := crashBaseDir(t)
	sc := newCrashScenario(t, filepath.Join(base, "scenario"), 21)
	sc.refs(t, sc.dir)
	for _, tc := range []struct {
		name  string
		file  string // the state file the call acts on
		calls string // the system calls to stop at
		nth   int    // stop at the nth of them
		temp  bool   // a temporary applied.json is there when it stops
		tree  string // the tree when it stops: OLD, NEW or mixed
		new   bool   // recovery keeps NEW
		noLog bool   // no intent log yet when it stops
	}{
		// The first batch is synced in a temporary file, then renamed to
		// intent.log: an intent log is never there without its first ops.
		{"first ops recorded, the log not yet in place", "intent.log", "rename,renameat,renameat2", 1, false, "OLD", false, true},
		{"a batch ran, the next recorded", "intent.log", "fsync", 2, false, "mixed", false, false},
		{"every op ran, the commit under way", "applied.json", "rename,renameat,renameat2", 1, true, "NEW", false, false},
		{"committed, the intent log not yet gone", "intent.log", "unlink,unlinkat", 1, false, "NEW", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sc.template.makeHost(t, filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-")))
			trace := filepath.Join(filepath.Dir(h.root), "strace.out")
			args := append([]string{"-f", "--seccomp-bpf", "-o", trace, "-P", filepath.Join(h.state, tc.file),
				"-e", "trace=" + tc.calls, "-e", fmt.Sprintf("inject=%s:delay_enter=60s:when=%d", tc.calls, tc.nth),
				crashCairn(t)}, h.args("journal", "apply", sc.newJ)...)
			cmd := exec.Command(strace, args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			names := strings.Split(tc.calls, ",")
			deadline := time.Now().Add(60 * time.Second)
			for {
				data, _ := os.ReadFile(trace)
				n := 0
				for _, line := range strings.Split(string(data), "\n") {
					for _, c := range names {
						if strings.Contains(line, " "+c+"(") {
							n++
						}
					}
				}
				if n >= tc.nth {
					break
				}
				if time.Now().After(deadline) {
					crashKill(t, cmd)
					t.Fatalf("the move did not reach %s #%d within a minute:\n%s\n%s", tc.calls, tc.nth, data, out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			if !crashKill(t, cmd) {
				t.Fatalf("the move ended before the kill:\n%s", out.String())
			}
			temps, _ := filepath.Glob(filepath.Join(h.state, ".applied.json.tmp-*"))
			if tc.temp != (len(temps) > 0) {
				t.Errorf("a temporary applied.json: %v, want %v", temps, tc.temp)
			}
			if got := crashApplied(t, h.state) > 1; got != tc.new {
				t.Fatalf("NEW committed at the kill: %v, want %v", got, tc.new)
			}
			tree := crashSnapshot(t, h.root)
			isOld, isNew := len(crashDiff(sc.refOld, tree, 1)) == 0, len(crashDiff(sc.refNew, tree, 1)) == 0
			if got := map[[2]bool]string{{true, false}: "OLD", {false, true}: "NEW", {false, false}: "mixed"}[[2]bool{isOld, isNew}]; got != tc.tree {
				t.Errorf("the tree at the kill is %s, want %s", got, tc.tree)
			}
			if _, err := os.Stat(filepath.Join(h.state, "intent.log")); tc.noLog != errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("an intent log at the kill: %v, want %v", err == nil, !tc.noLog)
			}

			show := crashMust(t, 0, h.args("journal", "show")...)
			want, wantShow, which := sc.refOld, sc.showOld, "OLD"
			if tc.new {
				want, wantShow, which = sc.refNew, sc.showNew, "NEW"
			}
			if show.stdout != wantShow {
				t.Fatalf("journal show after recovery does not print %s:\n%.2000s", which, show.stdout)
			}
			if d := crashDiff(want, crashSnapshot(t, h.root), 30); len(d) > 0 {
				t.Fatalf("after recovery the tree is not %s:\n%s", which, strings.Join(d, "\n"))
			}
			if tmp := append(crashTemps(t, h.root), crashTemps(t, h.state)...); len(tmp) > 0 {
				t.Fatalf("temporary files left after recovery: %v", tmp)
			}
			if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the intent log is still there after recovery (%v)", err)
			}
		})
	}
}
