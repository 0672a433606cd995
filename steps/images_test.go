package steps_test

// What images capture and restore beyond type, mode, owner and content: a
// managed path whose inode other names share is replaced, never changed in
// place (hard links to files outside the root); extended attributes, ACLs,
// capabilities and mtimes come back with a rollback; sparse files stay
// sparse; and content edited by hand after cairn wrote it is kept in the
// state before a move replaces it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// imgHost is a root, a state directory and a source directory.
type imgHost struct {
	base, root, state, src string
	log                    bytes.Buffer
}

func newImgHost(t *testing.T) *imgHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: sets owners, capabilities and trusted attributes")
	}
	base := t.TempDir()
	h := &imgHost{base: base, root: filepath.Join(base, "root"), state: filepath.Join(base, "state"), src: filepath.Join(base, "src")}
	for _, d := range []string{h.root + "/etc", h.src} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// source writes a COPY source and returns its sha256.
func (h *imgHost) source(t *testing.T, name string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.src, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// apply moves the root to the journal of lines.
func (h *imgHost) apply(t *testing.T, repair bool, lines ...string) (*steps.Result, error) {
	t.Helper()
	j, err := journal.Parse("site.journal", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state, Create: true, Log: slog.New(slog.NewTextHandler(&h.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	return a.Apply(ctx, steps.Move{Journal: "site.journal", Steps: j.Steps, Source: os.DirFS(h.src), SourceName: h.src, Repair: repair, AllowRemoval: true})
}

func (h *imgHost) mustApply(t *testing.T, lines ...string) *steps.Result {
	t.Helper()
	res, err := h.apply(t, false, lines...)
	if err != nil {
		t.Fatalf("apply %q: %v", lines, err)
	}
	return res
}

// open opens the state, for the tests that read it.
func (h *imgHost) open(t *testing.T) *steps.Applier {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: h.state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func lstat(t *testing.T, name string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(name, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestHardLinkedPathReplaced: a file outside the root, hard-linked into it
// at a path a journal manages, with the content the journal wants but
// another mode and owner. Applying must give the managed path the wanted
// mode and owner on a new inode and leave the outside file (mode, owner,
// content, inode) exactly as it was; so must the rollback, and a drift
// repair. A link hard-linked from outside is replaced rather than chowned.
func TestHardLinkedPathReplaced(t *testing.T) {
	tests := []struct {
		name    string
		content string // the COPY's; the outside file holds "hello\n"
	}{
		{"same content: only mode and owner differ", "hello\n"},
		{"other content", "other\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newImgHost(t)
			outside := filepath.Join(h.base, "outside-secret")
			if err := os.WriteFile(outside, []byte("hello\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(outside, 1234, 1234); err != nil {
				t.Fatal(err)
			}
			managed := filepath.Join(h.root, "etc/app.conf")
			if err := os.Link(outside, managed); err != nil {
				t.Fatal(err)
			}
			outLink := filepath.Join(h.base, "outside-link")
			if err := os.Symlink("/etc/target", outLink); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(outLink, 1234, 1234); err != nil {
				t.Fatal(err)
			}
			managedLink := filepath.Join(h.root, "etc/link")
			if err := unix.Linkat(unix.AT_FDCWD, outLink, unix.AT_FDCWD, managedLink, 0); err != nil {
				t.Fatal(err)
			}
			ino := lstat(t, outside).Ino
			linkIno := lstat(t, outLink).Ino
			checkOutside := func(when string) {
				t.Helper()
				st := lstat(t, outside)
				if st.Mode&0o7777 != 0o600 || st.Uid != 1234 || st.Gid != 1234 || st.Ino != ino || readFile(t, outside) != "hello\n" {
					t.Errorf("%s: the file outside the root is mode %04o owner %d:%d inode %d content %q; want 0600 1234:1234 inode %d \"hello\\n\"",
						when, st.Mode&0o7777, st.Uid, st.Gid, st.Ino, readFile(t, outside), ino)
				}
				lst := lstat(t, outLink)
				if lst.Uid != 1234 || lst.Gid != 1234 || lst.Ino != linkIno {
					t.Errorf("%s: the link outside the root is owned by %d:%d, inode %d; want 1234:1234, inode %d", when, lst.Uid, lst.Gid, lst.Ino, linkIno)
				}
			}
			sum := h.source(t, "app.conf", []byte(tt.content))
			j := []string{
				"COPY app.conf /etc/app.conf sha256=" + sum + " mode=0644",
				"SYMLINK /etc/target /etc/link",
			}
			h.mustApply(t, j...)
			checkOutside("after the apply")
			st := lstat(t, managed)
			if st.Mode&0o7777 != 0o644 || st.Uid != 0 || st.Gid != 0 || st.Ino == ino || st.Nlink != 1 || readFile(t, managed) != tt.content {
				t.Errorf("managed path: mode %04o owner %d:%d inode %d (outside: %d) links %d content %q; want 0644 0:0, a new inode, %q",
					st.Mode&0o7777, st.Uid, st.Gid, st.Ino, ino, st.Nlink, readFile(t, managed), tt.content)
			}
			if lst := lstat(t, managedLink); lst.Uid != 0 || lst.Ino == linkIno {
				t.Errorf("managed link: owner %d, inode %d (outside: %d); want 0, a new inode", lst.Uid, lst.Ino, linkIno)
			}

			// Drift repair: the managed path, made a hard link again by hand.
			if err := os.Remove(managed); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(outside, managed); err != nil {
				t.Fatal(err)
			}
			if _, err := h.apply(t, true, j...); err != nil {
				t.Fatal(err)
			}
			checkOutside("after a drift repair")

			// The rollback restores the original image: the content, mode
			// and owner of the hard-linked file, as a file of its own (the
			// link to the outside inode cannot be made again).
			h.mustApply(t)
			checkOutside("after the rollback")
			st = lstat(t, managed)
			if st.Mode&0o7777 != 0o600 || st.Uid != 1234 || st.Gid != 1234 || readFile(t, managed) != "hello\n" {
				t.Errorf("rolled back: mode %04o owner %d:%d content %q; want 0600 1234:1234 \"hello\\n\"", st.Mode&0o7777, st.Uid, st.Gid, readFile(t, managed))
			}
			if lst := lstat(t, managedLink); lst.Uid != 1234 || lst.Gid != 1234 {
				t.Errorf("rolled-back link: owner %d:%d, want 1234:1234", lst.Uid, lst.Gid)
			}
		})
	}
}

// needTool skips the test when a program is missing.
func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("needs %s (packages attr, acl, libcap2-bin)", name)
		}
	}
}

// run runs a program and returns its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// needUserXattrs skips the test when the file system of dir keeps no user
// attributes.
func needUserXattrs(t *testing.T, dir string) {
	t.Helper()
	probe := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	if err := unix.Setxattr(probe, "user.probe", []byte("1"), 0); err != nil {
		t.Skipf("the file system of %s keeps no user attributes (%v)", dir, err)
	}
}

// TestRollbackKeepsAttributes: a file with a capability, an ACL, user and
// trusted attributes and an old mtime, replaced by a COPY, and a directory
// with access and default ACLs removed by RM; the empty journal brings both
// back as they were, as getcap, getfacl and getfattr show.
func TestRollbackKeepsAttributes(t *testing.T) {
	h := newImgHost(t)
	needTool(t, "setcap", "getcap", "setfacl", "getfacl", "setfattr", "getfattr")
	needUserXattrs(t, h.root)
	ping := filepath.Join(h.root, "etc/ping")
	share := filepath.Join(h.root, "etc/share")
	if err := os.WriteFile(ping, []byte("an old ping\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(share, 0o2770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(share, 0, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(share, 0o2770|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	run(t, "setfacl", "-m", "u:1234:r", ping)
	run(t, "setfattr", "-n", "user.origin", "-v", "debian", ping)
	run(t, "setfattr", "-n", "trusted.note", "-v", "0x00ff", ping)
	run(t, "setcap", "cap_net_raw+ep", ping) // last: chown and writes drop it
	run(t, "setfacl", "-m", "u:1234:rwx,d:u:1234:rx,d:g::rx", share)
	run(t, "setfattr", "-n", "user.share", "-v", "team", share)
	mtime := time.Date(2019, 5, 1, 12, 30, 0, 123456789, time.UTC)
	if err := os.Chtimes(ping, time.Time{}, mtime); err != nil {
		t.Fatal(err)
	}
	show := func(name string) string {
		return run(t, "getfattr", "-d", "-m", "-", "--absolute-names", name) + run(t, "getfacl", "-n", "--absolute-names", name) + run(t, "getcap", name)
	}
	wantPing, wantShare := show(ping), show(share)
	if !strings.Contains(wantPing, "cap_net_raw=ep") || !strings.Contains(wantShare, "default:user:1234:r-x") {
		t.Fatalf("setup: attributes not set:\n%s\n%s", wantPing, wantShare)
	}
	wantStat, wantShareStat := lstat(t, ping), lstat(t, share)

	sum := h.source(t, "ping", []byte("a new ping\n"))
	h.mustApply(t, "COPY ping /etc/ping sha256="+sum+" mode=0755", "RM /etc/share")
	if got := run(t, "getcap", ping); got != "" {
		t.Errorf("after the COPY, getcap says %q: want the new file without the capability", got)
	}
	if _, err := os.Lstat(share); !os.IsNotExist(err) {
		t.Fatalf("after RM, %s: %v", share, err)
	}

	h.mustApply(t)
	if got := show(ping); got != wantPing {
		t.Errorf("rolled-back file:\n%s\nwant\n%s", got, wantPing)
	}
	if got := run(t, "getcap", ping); !strings.Contains(got, "cap_net_raw=ep") {
		t.Errorf("getcap of the rolled-back file: %q, want cap_net_raw=ep", got)
	}
	if got := show(share); got != wantShare {
		t.Errorf("rolled-back directory:\n%s\nwant\n%s", got, wantShare)
	}
	st := lstat(t, ping)
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(mtime) {
		t.Errorf("rolled-back mtime %s, want %s", got.UTC(), mtime)
	}
	if st.Mode != wantStat.Mode || st.Uid != wantStat.Uid || st.Gid != wantStat.Gid {
		t.Errorf("rolled-back file: mode %o owner %d:%d, want %o %d:%d", st.Mode, st.Uid, st.Gid, wantStat.Mode, wantStat.Uid, wantStat.Gid)
	}
	if sst := lstat(t, share); sst.Mode != wantShareStat.Mode || sst.Gid != wantShareStat.Gid {
		t.Errorf("rolled-back directory: mode %o group %d, want %o %d", sst.Mode, sst.Gid, wantShareStat.Mode, wantShareStat.Gid)
	}
}

// TestImageJSONCompatible: an applied.json written before images kept
// attributes and mtimes still reads, and restoring its images leaves the
// attributes of what is there as they are (nil Xattrs: not recorded).
func TestImageJSONCompatible(t *testing.T) {
	var img steps.Image
	if err := json.Unmarshal([]byte(`{"type":"dir","mode":493}`), &img); err != nil {
		t.Fatal(err)
	}
	if img.Xattrs != nil || !img.Mtime.IsZero() {
		t.Errorf("an old image reads as %+v: want no attributes and no mtime recorded", img)
	}
	data, err := json.Marshal(steps.Image{Type: steps.TypeFile, Mode: 0o644, Blob: "ab", Xattrs: map[string][]byte{}})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"type":"file","mode":420,"blob":"ab","xattrs":{}}` {
		t.Errorf("an image without attributes marshals as %s", data)
	}
	var back steps.Image
	if err := json.Unmarshal(data, &back); err != nil || back.Xattrs == nil {
		t.Errorf("an image that recorded no attributes reads back with Xattrs %v (%v): want empty, not nil", back.Xattrs, err)
	}

	// Restore an old dir image over a directory with a user attribute.
	h := newImgHost(t)
	needUserXattrs(t, h.root)
	dir := filepath.Join(h.root, "etc/keep")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(dir, "user.mine", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s, err := journal.ParseStep(journal.Pos{}, "MKDIR /etc/keep")
	if err != nil {
		t.Fatal(err)
	}
	im := steps.LookupKind("MKDIR").(steps.Imager)
	if err := im.Restore(context.Background(), &steps.Env{Root: root}, &s, img); err != nil {
		t.Fatal(err)
	}
	if v, err := root.Xattrs("/etc/keep"); err != nil || string(v["user.mine"]) != "x" {
		t.Errorf("after restoring an old image the attributes are %v (%v): want them left", v, err)
	}
	if st := lstat(t, dir); st.Mode&0o7777 != 0o755 {
		t.Errorf("mode %04o, want 0755", st.Mode&0o7777)
	}
}

// sparseFile makes a file of size bytes with a few 4 KiB blocks of data and
// holes elsewhere, and returns its content's sha256.
func sparseFile(t *testing.T, name string, size int64) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := bytes.Repeat([]byte("data"), 1024)
	for _, off := range []int64{0, size / 2, size - 4096} {
		if _, err := f.WriteAt(block, off); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	sum, err := steps.HashReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// allocated returns the bytes the file system allocated to name.
func allocated(t *testing.T, name string) int64 {
	t.Helper()
	return lstat(t, name).Blocks * 512
}

// TestSparseFilesStaySparse: a 100 MiB sparse file with three data blocks,
// replaced by a sparse COPY and rolled back, keeps its holes at every
// stage, and so do the blobs that hold both; the content is unchanged.
func TestSparseFilesStaySparse(t *testing.T) {
	h := newImgHost(t)
	const size = 100 << 20
	const small = 1 << 20 // far less than 100 MiB: holes kept
	orig := filepath.Join(h.root, "etc/disk.img")
	origSum := sparseFile(t, orig, size)
	if a := allocated(t, orig); a > small {
		t.Skipf("the file system of %s makes no holes (%d bytes allocated)", orig, a)
	}
	newSum := sparseFile(t, filepath.Join(h.src, "disk.img"), size+8192)
	h.mustApply(t, "COPY disk.img /etc/disk.img sha256="+newSum)
	if a := allocated(t, orig); a > small {
		t.Errorf("the file COPY wrote has %d bytes allocated, want less than %d", a, small)
	}
	h.mustApply(t)
	if a := allocated(t, orig); a > small {
		t.Errorf("the rolled-back file has %d bytes allocated, want less than %d", a, small)
	}
	if got := lstat(t, orig).Size; got != size {
		t.Errorf("the rolled-back file has %d bytes, want %d", got, size)
	}
	f, err := os.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sum, err := steps.HashReader(f); err != nil || sum != origSum {
		t.Errorf("the rolled-back file hashes to %s (%v), want %s", sum, err, origSum)
	}
	var blobs int64
	filepath.Walk(filepath.Join(h.state, "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			blobs += allocated(t, p)
		}
		return nil
	})
	if blobs > 2*small {
		t.Errorf("the blob store has %d bytes allocated, want the two sparse blobs to take less than %d", blobs, 2*small)
	}
}

// TestCopySparseContent writes contents with and without zero blocks, of
// sizes around the block and buffer sizes, and checks that the files read
// back the same.
func TestCopySparseContent(t *testing.T) {
	h := newImgHost(t)
	block := bytes.Repeat([]byte{0xa5}, 4096)
	zero := make([]byte, 4096)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	contents := map[string][]byte{
		"empty":          {},
		"tiny":           []byte("x"),
		"one zero block": zero,
		"zeros":          make([]byte, 200<<10),
		"zero tail":      cat(block, zero, zero),
		"short tail":     cat(zero, block, []byte("tail")),
		"zero odd tail":  cat(block, zero, make([]byte, 100)),
		"buffer edge":    cat(bytes.Repeat(zero, 15), block, zero, block),
		"data":           bytes.Repeat([]byte("0123456789abcdef"), 10000),
	}
	var lines []string
	files := map[string]string{} // name -> file
	for name, data := range contents {
		file := fmt.Sprintf("f%d", len(files))
		files[name] = file
		lines = append(lines, fmt.Sprintf("COPY %s /etc/%s sha256=%s", file, file, h.source(t, file, data)))
	}
	h.mustApply(t, lines...)
	for name, file := range files {
		if got, err := os.ReadFile(filepath.Join(h.root, "etc", file)); err != nil || !bytes.Equal(got, contents[name]) {
			t.Errorf("%s: the written file differs (%d bytes, want %d; %v)", name, len(got), len(contents[name]), err)
		}
	}
}
