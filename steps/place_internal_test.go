package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"golang.org/x/sys/unix"
)

// placeEnv makes a root with /data and /victim (holding f and sub/f) and
// an Env whose blob store holds "new\n"; it returns the env, the root's
// host path and the content's sha256.
func placeEnv(t *testing.T) (*Env, string, string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"data/sub", "victim/sub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"victim/f", "victim/sub/f"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("victim's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	blobs, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("new\n"))
	hexsum := hex.EncodeToString(sum[:])
	if _, err := blobs.Put(strings.NewReader("new\n"), hexsum); err != nil {
		t.Fatal(err)
	}
	return &Env{Root: root, Blobs: blobs}, dir, hexsum
}

// swapData turns /data into a link to victim, or back.
func swapData(t *testing.T, dir string, toLink bool) {
	t.Helper()
	data := filepath.Join(dir, "data")
	if toLink {
		if err := os.Rename(data, data+".real"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("victim", data); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(data+".real", data); err != nil {
		t.Fatal(err)
	}
}

func victimIntact(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"victim/f", "victim/sub/f"} {
		if got, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(got) != "victim's\n" {
			t.Fatalf("%s changed: %q, %v", f, got, err)
		}
	}
}

// TestPlaceForwardAndUndo: an op whose directory was swapped for a link
// after its image was taken refuses, touching nothing (and needing no
// undo); so does its undo. With the directory back, both act in it.
func TestPlaceForwardAndUndo(t *testing.T) {
	ctx := context.Background()
	for _, p := range []string{"/data/f", "/data/sub/f"} {
		t.Run(p, func(t *testing.T) {
			env, dir, sum := placeEnv(t)
			s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, "COPY - "+p+" sha256="+sum)
			if err != nil {
				t.Fatal(err)
			}
			img, err := captureIn(env, &s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if img.Place == nil || !img.Absent {
				t.Fatalf("image %+v: want absent, with a place", img)
			}
			swapData(t, dir, true)
			err = runPlaced(ctx, env, copyKind{}, &s, journal.Forward, &img, Image{})
			if !touchedNothing(err) || !strings.Contains(err.Error(), "refusing to act") {
				t.Fatalf("forward through the swapped link: %v, want a refusal that touched nothing", err)
			}
			victimIntact(t, dir)
			swapData(t, dir, false)
			if err := runPlaced(ctx, env, copyKind{}, &s, journal.Forward, &img, Image{}); err != nil {
				t.Fatal(err)
			}
			swapData(t, dir, true)
			err = restorePlaced(env, p, img, newUndoPass(false))
			if err == nil || !strings.Contains(err.Error(), "nothing was touched") {
				t.Fatalf("undo through the swapped link: %v, want a refusal", err)
			}
			victimIntact(t, dir)
			if _, err := os.Stat(filepath.Join(dir, "data.real", p[len("/data"):])); err != nil {
				t.Fatalf("cairn's file is gone from the real directory: %v", err)
			}
			swapData(t, dir, false)
			if err := restorePlaced(env, p, img, newUndoPass(false)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
				t.Fatalf("the undo did not remove %s: %v", p, err)
			}
		})
	}
}

// TestPlaceView: within a move, a directory that led to one place leads
// there still: a capture through a link swapped in since is refused, for
// the directory itself and for paths beneath it not seen yet.
func TestPlaceView(t *testing.T) {
	env, dir, sum := placeEnv(t)
	v := newView()
	capture := func(p string) error {
		s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, "COPY - "+p+" sha256="+sum)
		if err != nil {
			t.Fatal(err)
		}
		_, err = captureIn(env, &s, v)
		return err
	}
	if err := capture("/data/a"); err != nil {
		t.Fatal(err)
	}
	swapData(t, dir, true)
	for _, p := range []string{"/data/b", "/data/sub/f", "/data/new/x"} {
		err := capture(p)
		if err == nil || !strings.Contains(err.Error(), "this move found the directory") {
			t.Errorf("capture of %s through the swapped link: %v, want a refusal", p, err)
		}
	}
	swapData(t, dir, false)
	for _, p := range []string{"/data/b", "/data/sub/f", "/data/new/x"} {
		if err := capture(p); err != nil {
			t.Errorf("capture of %s: %v", p, err)
		}
	}
	// A reset (a command ran) forgets what the move saw.
	v.reset()
	swapData(t, dir, true)
	if err := capture("/data/b"); err != nil {
		t.Errorf("capture after a reset: %v", err)
	}
}

// TestPlaceViewMissing: an image of an object in the directory the last
// image found missing has that image's Place while the directory is
// missing still (asked through the directory it held), and is taken
// afresh once something is there; ops that ran (forgetMissing) let the held
// directory go.
func TestPlaceViewMissing(t *testing.T) {
	env, dir, sum := placeEnv(t)
	v := newView()
	capture := func(p string) Image {
		t.Helper()
		img, err := captureIn(env, mustStep(t, "COPY - "+p+" sha256="+sum), v)
		if err != nil {
			t.Fatalf("capture of %s: %v", p, err)
		}
		return img
	}
	first := capture("/data/new/x")
	if !first.Absent || first.Place == nil || first.Place.Dir != "/data" {
		t.Fatalf("image of /data/new/x: %+v, want absent in /data", first)
	}
	if v.missing == nil || v.missing.dir != "/data/new" || v.missing.first != "new" {
		t.Fatalf("the view holds %+v, want /data/new missing below /data", v.missing)
	}
	if img := capture("/data/new/y"); !img.Absent || *img.Place != *first.Place {
		t.Errorf("second image in the missing directory: %+v, want the first one's Place %+v", img, *first.Place)
	}
	// Another process makes the directory and a file in it: the next
	// image sees the file.
	if err := os.Mkdir(filepath.Join(dir, "data/new"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data/new/z"), []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if img := capture("/data/new/z"); img.Absent || img.Type != TypeFile || img.Place == nil || img.Place.Dir != "/data/new" {
		t.Errorf("image of a file made meanwhile: %+v, want the file, found in /data/new", img)
	}
	capture("/data/other/x")
	if v.missing == nil {
		t.Fatal("no missing directory held after an image in /data/other")
	}
	v.forgetMissing()
	if v.missing != nil {
		t.Errorf("after ops ran the view still holds %+v", v.missing)
	}
}

// TestPlaceOtherBoot: device numbers are compared within the boot that
// recorded them only.
func TestPlaceOtherBoot(t *testing.T) {
	env, _, _ := placeEnv(t)
	_, place, err := locateNew(env, "/data/f", "write", nil)
	if err != nil {
		t.Fatal(err)
	}
	place.Dev++
	if _, err := openPlace(env, "/data/f", place, newUndoPass(false), "restore"); err == nil {
		t.Error("another device number was accepted within one boot")
	}
	l, err := openPlace(env, "/data/f", place, newUndoPass(true), "restore")
	if err != nil {
		t.Errorf("after a reboot, the same inode on another device number was refused: %v", err)
	}
	l.close()
	place.Ino++
	if _, err := openPlace(env, "/data/f", place, newUndoPass(true), "restore"); err == nil {
		t.Error("after a reboot, another inode was accepted")
	}
}

// dirEvents watches the host directory dir for names made in it (created,
// or renamed into it) and for changes to the files named in it, and returns
// a function that stops and says which, in order: "create NAME", "rename
// NAME", "modify NAME" (written), "attrib NAME" (owner, mode, attributes,
// times) or "close NAME" (closed after writing). The kernel names a file
// made without a name (O_TMPFILE) "#INODE" until it is linked.
func dirEvents(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	verbs := []struct {
		mask uint32
		verb string
	}{
		{unix.IN_CREATE, "create"},
		{unix.IN_MOVED_TO, "rename"},
		{unix.IN_MODIFY, "modify"},
		{unix.IN_ATTRIB, "attrib"},
		{unix.IN_CLOSE_WRITE, "close"},
	}
	var mask uint32
	for _, v := range verbs {
		mask |= v.mask
	}
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return func() []string {
		defer unix.Close(fd)
		var got []string
		buf := make([]byte, 64<<10)
		n, err := unix.Read(fd, buf)
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			for _, v := range verbs {
				if ev.Mask&v.mask != 0 {
					got = append(got, v.verb+" "+name)
				}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		return got
	}
}

// eventVerb is the verb of a dirEvents event.
func eventVerb(event string) string {
	verb, _, _ := strings.Cut(event, " ")
	return verb
}

// verbsOf is the verbs of dirEvents events.
func verbsOf(events []string) []string {
	verbs := make([]string, len(events))
	for i, e := range events {
		verbs[i] = eventVerb(e)
	}
	return verbs
}

// TestCreateFileWhereAbsent: a COPY whose undo image says nothing was at
// its path writes the new file without a name and then links it there (no
// temporary name, no rename): its name appears once the file is whole, with
// its content, owner and mode, and nothing changes it after. A killed op's
// unnamed file leaves nothing; a linked one, whole, is removed by the
// undo. Where something was put at the name after the image was taken (a
// hard link to another file, a link), it is replaced by a rename as
// before, never written through.
func TestCreateFileWhereAbsent(t *testing.T) {
	ctx := context.Background()
	env, dir, sum := placeEnv(t)
	step := func(p string) journal.Step {
		s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, "COPY - "+p+" sha256="+sum+" mode=0640 owner=1000 group=1000")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ownerOf := func(p string) string {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid)
	}

	s := step("/data/new")
	img, err := captureIn(env, &s, nil)
	if err != nil || !img.Absent {
		t.Fatalf("image %+v, %v: want absent", img, err)
	}
	events := dirEvents(t, filepath.Join(dir, "data"))
	if err := runPlaced(ctx, env, copyKind{}, &s, journal.Forward, &img, Image{}); err != nil {
		t.Fatal(err)
	}
	got := events()
	named := slices.DeleteFunc(slices.Clone(got), func(e string) bool { return strings.Contains(e, " #") })
	if !slices.Equal(named, []string{"create new"}) {
		t.Errorf("events in /data: %q; of names: %q, want only the file itself, created", got, named)
	}
	if i := slices.Index(got, "create new"); i < 0 || !slices.Contains(verbsOf(got[:i]), "modify") || !slices.Contains(verbsOf(got[:i]), "attrib") ||
		slices.Contains(verbsOf(got[i:]), "modify") || slices.Contains(verbsOf(got[i:]), "attrib") {
		t.Errorf("events in /data: %q, want the file written and its mode set before its name appears, and not after", got)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "data/new")); err != nil || string(got) != "new\n" {
		t.Errorf("/data/new: %q, %v", got, err)
	}
	if got := ownerOf("data/new"); got != "100640 1000:1000" {
		t.Errorf("/data/new: mode and owner %s, want 100640 1000:1000", got)
	}

	// The op's undo removes the file, which is whole once it has a name.
	if err := restorePlaced(env, "/data/new", img, newUndoPass(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "data/new")); !os.IsNotExist(err) {
		t.Errorf("the undo left /data/new: %v", err)
	}
	// An op killed before the link leaves nothing, and its undo finds
	// nothing to do.
	before, _ := os.ReadDir(filepath.Join(dir, "data"))
	d, err := env.Root.OpenDir("/data")
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.CreateUnnamed("new", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("ne")
	f.Close()
	d.Close()
	if err := restorePlaced(env, "/data/new", img, newUndoPass(false)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadDir(filepath.Join(dir, "data")); len(after) != len(before) {
		t.Errorf("a file cut short before its link left /data with %v, want %v", after, before)
	}

	// Something put at the name since the image was taken is replaced.
	for name, put := range map[string]func(string) error{
		"hardlink": func(p string) error { return os.Link(filepath.Join(dir, "victim/f"), p) },
		"symlink":  func(p string) error { return os.Symlink("../victim/f", p) },
	} {
		s := step("/data/" + name)
		img, err := captureIn(env, &s, nil)
		if err != nil || !img.Absent {
			t.Fatalf("%s: image %+v, %v: want absent", name, img, err)
		}
		if err := put(filepath.Join(dir, "data", name)); err != nil {
			t.Fatal(err)
		}
		events := dirEvents(t, filepath.Join(dir, "data"))
		if err := runPlaced(ctx, env, copyKind{}, &s, journal.Forward, &img, Image{}); err != nil {
			t.Fatal(err)
		}
		got := slices.DeleteFunc(events(), func(e string) bool { v := eventVerb(e); return v != "create" && v != "rename" })
		if !slices.Equal(got, []string{"create " + filepath.Base(rootfs.TempPath("/data/"+name)), "rename " + name}) {
			t.Errorf("%s: names made in /data: %q, want the temporary file renamed over it", name, got)
		}
		victimIntact(t, dir)
		if got, err := os.ReadFile(filepath.Join(dir, "data", name)); err != nil || string(got) != "new\n" {
			t.Errorf("/data/%s: %q, %v", name, got, err)
		}
		if got := ownerOf("data/" + name); got != "100640 1000:1000" {
			t.Errorf("/data/%s: mode and owner %s, want 100640 1000:1000", name, got)
		}
	}
}

// TestCreateFileFails: where the file cannot be written at its name (a
// full file system), the name is left as it was and the COPY fails with
// the error of the usual way, through a temporary file, word for word.
func TestCreateFileFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "full")
	mountTmpfs(t, dir, 64<<10)
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	filler.Write(make([]byte, 1<<20)) // to ENOSPC
	filler.Close()
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	blobs, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("new\n", 2048)
	sum := sha256.Sum256([]byte(content))
	hexsum := hex.EncodeToString(sum[:])
	if _, err := blobs.Put(strings.NewReader(content), hexsum); err != nil {
		t.Fatal(err)
	}
	env := &Env{Root: root, Blobs: blobs}
	s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, "COPY - /new sha256="+hexsum)
	if err != nil {
		t.Fatal(err)
	}
	img, err := captureIn(env, &s, nil)
	if err != nil || !img.Absent {
		t.Fatalf("image %+v, %v: want absent", img, err)
	}
	placed := runPlaced(context.Background(), env, copyKind{}, &s, journal.Forward, &img, Image{})
	usual := forwardFresh(context.Background(), env, copyKind{}, &s)
	if placed == nil || usual == nil || placed.Error() != usual.Error() {
		t.Errorf("on a full file system: %v; the usual way: %v; want the same error", placed, usual)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "filler" {
		t.Errorf("left on the full file system: %v", entries)
	}
}

// TestPlaceSwapBetweenOps: a directory swapped for a link after one COPY
// into it ran is refused to the next COPYs into it: each op finds its
// directory from the root, never through what an earlier op found.
func TestPlaceSwapBetweenOps(t *testing.T) {
	ctx := context.Background()
	env, dir, sum := placeEnv(t)
	steps := make([]journal.Step, 3)
	imgs := make([]Image, 3)
	for i := range steps {
		s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, fmt.Sprintf("COPY - /data/sub/f%d sha256=%s", i, sum))
		if err != nil {
			t.Fatal(err)
		}
		steps[i] = s
		if imgs[i], err = captureIn(env, &steps[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := runPlaced(ctx, env, copyKind{}, &steps[0], journal.Forward, &imgs[0], Image{}); err != nil {
		t.Fatal(err)
	}
	swapData(t, dir, true)
	for i := 1; i < len(steps); i++ {
		err := runPlaced(ctx, env, copyKind{}, &steps[i], journal.Forward, &imgs[i], Image{})
		if !touchedNothing(err) || !strings.Contains(err.Error(), "refusing to act") {
			t.Errorf("op %d through the swapped directory: %v, want a refusal that touched nothing", i, err)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "data.real/sub")); err != nil || len(ents) != 1 {
		t.Errorf("the directory moved away holds %d entries (%v), want the first op's file only", len(ents), err)
	}
	victimIntact(t, dir)
}

// TestTempFileWritersOnly: a file replaced through a temporary file in a
// set-group-ID directory is not readable by the directory's group while it
// is written, whatever its final mode: the temporary file is 0600 until it
// is whole and has its owner.
func TestTempFileWritersOnly(t *testing.T) {
	env, dir, _ := placeEnv(t)
	sub := filepath.Join(dir, "data/sub")
	if err := os.Chown(sub, 0, 50); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(sub, 0o2775); err != nil { // os.Chmod takes no 0o2000
		t.Fatal(err)
	}
	// A file at the path makes the COPY take the temporary file's way.
	if err := os.WriteFile(filepath.Join(sub, "key"), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("secret\n", 8<<20) // 56 MB: long enough a write to be seen
	sum := sha256.Sum256([]byte(content))
	hexsum := hex.EncodeToString(sum[:])
	if _, err := env.Blobs.Put(strings.NewReader(content), hexsum); err != nil {
		t.Fatal(err)
	}
	s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, "COPY - /data/sub/key mode=0640 owner=root group=root sha256="+hexsum)
	if err != nil {
		t.Fatal(err)
	}
	img, err := captureIn(env, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(sub, filepath.Base(rootfs.TempPath("/data/sub/key")))
	// looks counts the times the temporary file was seen while written;
	// bad says how it was seen open to another group.
	type watched struct {
		looks int
		bad   []string
	}
	stop := make(chan struct{})
	seen := make(chan watched)
	go func() {
		var w watched
		for {
			select {
			case <-stop:
				seen <- w
				return
			default:
			}
			var st syscall.Stat_t
			if syscall.Lstat(tmp, &st) != nil {
				continue
			}
			w.looks++
			if st.Gid != 0 && st.Mode&0o077 != 0 {
				w.bad = append(w.bad, fmt.Sprintf("group %d mode %o", st.Gid, st.Mode&0o7777))
			}
		}
	}()
	err = runPlaced(context.Background(), env, copyKind{}, &s, journal.Forward, &img, Image{})
	close(stop)
	w := <-seen
	if err != nil {
		t.Fatal(err)
	}
	if w.looks == 0 {
		t.Skip("the temporary file was never seen while written")
	}
	if len(w.bad) > 0 {
		t.Errorf("the temporary file was open to another group while written (%d of %d looks): %q", len(w.bad), w.looks, w.bad[:min(3, len(w.bad))])
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(sub, "key"), &st); err != nil || st.Gid != 0 || st.Mode&0o7777 != 0o640 {
		t.Errorf("key: group %d mode %o (%v), want root's group and 0640", st.Gid, st.Mode&0o7777, err)
	}
}
