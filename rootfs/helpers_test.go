package rootfs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// eachResolver runs f once with openat2 and once with the user-space
// resolver; both must pass the same tests.
func eachResolver(t *testing.T, f func(t *testing.T, userspace bool)) {
	t.Helper()
	for _, us := range []bool{false, true} {
		name := "openat2"
		if us {
			name = "userspace"
		}
		t.Run(name, func(t *testing.T) { f(t, us) })
	}
}

// openRoot opens dir with the chosen resolver, closed at the end of t.
func openRoot(t testing.TB, dir string, userspace bool) *Root {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if !userspace && r.userspace.Load() {
		t.Skip("kernel has no openat2")
	}
	r.userspace.Store(userspace)
	return r
}

// build makes entries beneath dir, in order: "d:PATH" a directory (and
// its parents), "f:PATH=DATA" a file, "l:PATH->TARGET" a link, "p:PATH" a
// FIFO. It writes through host paths, so a spec must not route one entry
// through a link made by another.
func build(t testing.TB, dir string, spec ...string) {
	t.Helper()
	for _, s := range spec {
		kind, rest, _ := strings.Cut(s, ":")
		var err error
		switch kind {
		case "d":
			err = os.MkdirAll(filepath.Join(dir, rest), 0o755)
		case "f":
			p, data, _ := strings.Cut(rest, "=")
			err = os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644)
		case "l":
			p, target, _ := strings.Cut(rest, "->")
			err = os.Symlink(target, filepath.Join(dir, p))
		case "p":
			err = syscall.Mkfifo(filepath.Join(dir, rest), 0o644)
		default:
			err = fmt.Errorf("bad spec %q", s)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes every object beneath base, skipping the directory
// skip: type, mode, owner, size, mtime, ctime (which any chmod, chown,
// write, rename or link count change moves), content hash or link target.
func snapshot(t testing.TB, base, skip string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d mtime=%d.%d ctime=%d.%d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" sha256=%x", sha256.Sum256(data))
		case syscall.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " -> " + target
		}
		m[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffSnapshots(before, after map[string]string) []string {
	var diffs []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			diffs = append(diffs, "removed "+p)
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed %s:\n\t%s\n\t%s", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "added "+p)
		}
	}
	return diffs
}

// hostIno returns the device and inode of the host path p (not followed).
func hostIno(t testing.TB, p string) (uint64, uint64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev, st.Ino
}

func readAll(r *Root, p string) (string, error) {
	f, err := r.OpenFile(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// writeFile writes data to p the way the applier does a COPY.
func writeFile(r *Root, p, data string, perm uint32) error {
	f, err := r.CreateTemp(p, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err == nil {
		err = r.CommitTemp(p)
	}
	if err != nil {
		r.RemoveTemp(p)
	}
	return err
}

// errnoOf returns the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
