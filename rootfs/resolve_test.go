package rootfs

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// trickyTree is a root full of links in intermediate components.
func trickyTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	build(t, root,
		"d:real/sub",
		"f:real/file=in-root",
		"l:real/sub/esc->../../../../../../real", // ".." clamped at the root
		"l:real/sub/back->../..",                 // the root itself
		"l:real/sub/abs->/real/sub",              // absolute: again from the root
		"l:rel->real",
		"l:abs->/real",
		"l:up->../../../real",
		"l:dotup->./real/../real/sub/..",
		"l:slash->/",
		"l:dotdot->..",
		"l:trailing->real/",
		"l:chain1->chain2",
		"l:chain2->/chain3",
		"l:chain3->rel",
		"l:loopA->loopB",
		"l:loopB->loopA",
		"l:self->/self",
		"f:notdir=x",
		"l:linkToFile->/real/file",
		"l:dangling->/nonexistent",
		"d:var",
		"l:var/run->/run",
		"d:run",
		"f:run/x=run",
		"l:proc->/proc",
		"l:l00->l01", // 41 links to real: ELOOP
	)
	// l01 -> l02 -> ... -> l40 -> real: exactly 40 links, the kernel's limit.
	for i := 1; i <= 40; i++ {
		target := fmt.Sprintf("l%02d", i+1)
		if i == 40 {
			target = "real"
		}
		build(t, root, fmt.Sprintf("l:l%02d->%s", i, target))
	}
	return root
}

// TestResolveTable: Lstat of an object path through links in its
// intermediate components finds the in-root object, or the right errno.
func TestResolveTable(t *testing.T) {
	tests := []struct {
		p     string
		want  string // host path beneath the root, or ""
		errno syscall.Errno
	}{
		{"/real/file", "real/file", 0},
		{"/rel/file", "real/file", 0},
		{"/abs/file", "real/file", 0},
		{"/up/file", "real/file", 0},
		{"/dotup/file", "real/file", 0},
		{"/slash/real/file", "real/file", 0},
		{"/dotdot/real/file", "real/file", 0},
		{"/trailing/file", "real/file", 0},
		{"/chain1/file", "real/file", 0},
		{"/real/sub/esc/file", "real/file", 0},
		{"/real/sub/back/real/file", "real/file", 0},
		{"/real/sub/abs/esc", "real/sub/esc", 0},
		{"/rel/sub/back/rel/sub/abs/back/abs/file", "real/file", 0},
		{"/l01/file", "real/file", 0},
		{"/var/run/x", "run/x", 0},
		// The last component is never followed.
		{"/rel", "rel", 0},
		{"/linkToFile", "linkToFile", 0},
		{"/dangling", "dangling", 0},
		{"/real/sub/esc", "real/sub/esc", 0},
		{"/loopA", "loopA", 0},
		// Errors.
		{"/l00/file", "", syscall.ELOOP},
		{"/loopA/x", "", syscall.ELOOP},
		{"/self/x", "", syscall.ELOOP},
		{"/proc/self", "", syscall.ELOOP}, // /proc -> /proc beneath the root
		{"/notdir/x", "", syscall.ENOTDIR},
		{"/linkToFile/x", "", syscall.ENOTDIR},
		{"/real/file/x", "", syscall.ENOTDIR},
		{"/dangling/x", "", syscall.ENOENT},
		{"/missing/x", "", syscall.ENOENT},
		{"/real/missing", "", syscall.ENOENT},
	}
	eachResolver(t, func(t *testing.T, userspace bool) {
		root := trickyTree(t)
		r := openRoot(t, root, userspace)
		for _, tt := range tests {
			info, err := r.Lstat(tt.p)
			if tt.errno != 0 {
				if errnoOf(err) != tt.errno {
					t.Errorf("Lstat(%s) = %v, want %v", tt.p, err, tt.errno)
				}
				continue
			}
			if err != nil {
				t.Errorf("Lstat(%s): %v", tt.p, err)
				continue
			}
			dev, ino := hostIno(t, filepath.Join(root, tt.want))
			if info.Dev != dev || info.Ino != ino {
				t.Errorf("Lstat(%s) is not ROOT/%s", tt.p, tt.want)
			}
		}
	})
}

// TestResolversAgree: the kernel's RESOLVE_IN_ROOT walk, resolve with
// openat2 and the user-space resolver open the same directory, or fail with
// the same errno, for every path of the table, clean or not.
func TestResolversAgree(t *testing.T) {
	root := trickyTree(t)
	r := openRoot(t, root, false)
	rels := []string{
		"real", "real/sub", "rel", "abs", "up", "dotup", "slash", "dotdot", "trailing",
		"chain1", "chain3", "real/sub/esc", "real/sub/back", "real/sub/abs", "var/run",
		"l01", "l00", "l40", "loopA", "self", "proc", "proc/self", "notdir", "linkToFile",
		"dangling", "missing", "real/file", "real/missing/x",
		".", "..", "../..", "../../real", "real/../rel/./sub", "rel/..", "abs/../../..",
		"real//sub", "real/sub/", "real/sub/back/real/sub/back/..", "slash/slash/slash/real",
		"up/sub/esc/sub/abs/../sub/back", "trailing/sub/", "var/run/../run",
	}
	type result struct {
		dev, ino uint64
		errno    syscall.Errno
	}
	resolveWith := func(rel string, userspace bool) result {
		r.userspace.Store(userspace)
		fd, owned, err := r.resolve(rel)
		if err != nil {
			return result{errno: errnoOf(err)}
		}
		if owned {
			defer unix.Close(fd)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return result{dev: st.Dev, ino: st.Ino}
	}
	// The kernel's own RESOLVE_IN_ROOT walk, links followed: resolve
	// leaves paths with links to the user-space walk, so this is what
	// that walk must agree with (the tree's links are root's, which the
	// rule of unsafe links never refuses).
	kernel := func(rel string) result {
		how := unix.OpenHow{Flags: parentHow.Flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := unix.Openat2(r.fd, rel, &how)
		if err != nil {
			return result{errno: errnoOf(err)}
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return result{dev: st.Dev, ino: st.Ino}
	}
	for _, rel := range rels {
		k, o, u := kernel(rel), resolveWith(rel, false), resolveWith(rel, true)
		if k != u || o != u {
			t.Errorf("resolve(%q): kernel %+v, openat2 %+v, userspace %+v", rel, k, o, u)
		}
	}
	// And the kernel agrees with the expectations of the table.
	rootDev, rootIno := hostIno(t, root)
	for _, rel := range []string{".", "..", "../..", "slash", "dotdot", "real/sub/back", "rel/.."} {
		if got := resolveWith(rel, false); got.dev != rootDev || got.ino != rootIno {
			t.Errorf("resolve(%q) is not the root: %+v", rel, got)
		}
	}
}
