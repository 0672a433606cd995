package steps

// A snapshot of a tree, for tests that compare roots: exported so that the
// tests of package steps_test (the exactness property test) use it too.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/rootfs"
)

// TreeNode is what a tree snapshot records of one path: everything a step
// of the path family manages or restores, and, from SnapTreeTimes, the
// mtime of files.
type TreeNode struct {
	Type   string // "file", "dir", "symlink", or another file type
	Mode   uint32 // permission, set-id and sticky bits (0 for links)
	UID    uint32
	GID    uint32
	Sum    string // sha256 of a file's content
	Target string // a link's target
	Xattrs string // a file's or directory's extended attributes, ACLs included: name=hex, sorted
	Mtime  int64  // a file's mtime in ns since 1970 (SnapTreeTimes only)
}

func (n TreeNode) String() string {
	s := fmt.Sprintf("%s uid=%d gid=%d", n.Type, n.UID, n.GID)
	switch n.Type {
	case "symlink":
		s += fmt.Sprintf(" -> %q", n.Target)
	case "file":
		s += fmt.Sprintf(" mode=%04o sha256=%.12s", n.Mode, n.Sum)
	default:
		s += fmt.Sprintf(" mode=%04o", n.Mode)
	}
	if n.Xattrs != "" {
		s += " xattrs=" + n.Xattrs
	}
	if n.Mtime != 0 {
		s += " mtime=" + time.Unix(0, n.Mtime).UTC().Format(time.RFC3339Nano)
	}
	return s
}

// Journaled returns the snapshot without what no journal states, the
// extended attributes and mtimes: a COPY writes a new file, which has
// neither the attributes nor the mtime of the one it replaces.
func (s TreeSnap) Journaled() TreeSnap {
	out := make(TreeSnap, len(s))
	for p, n := range s {
		n.Xattrs, n.Mtime = "", 0
		out[p] = n
	}
	return out
}

// TreeSnap maps every path beneath a root ("/" for the root itself, else
// "/a/b") to its node.
type TreeSnap map[string]TreeNode

// SnapTree walks root with lstat (links are recorded, never followed) and
// records every path beneath it, the root included, without mtimes.
func SnapTree(root string) (TreeSnap, error) { return snapTree(root, false) }

// SnapTreeTimes is SnapTree with the mtime of every file: a restore brings
// it back, a COPY does not.
func SnapTreeTimes(root string) (TreeSnap, error) { return snapTree(root, true) }

func snapTree(root string, times bool) (TreeSnap, error) {
	snap := TreeSnap{}
	err := filepath.WalkDir(root, func(host string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, host)
		if err != nil {
			return err
		}
		p := "/"
		if rel != "." {
			p = "/" + filepath.ToSlash(rel)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(host, &st); err != nil {
			return err
		}
		n := TreeNode{UID: st.Uid, GID: st.Gid, Mode: st.Mode & 0o7777}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			n.Type = "dir"
			if n.Xattrs, err = snapXattrs(host); err != nil {
				return err
			}
		case syscall.S_IFREG:
			n.Type = "file"
			data, err := os.ReadFile(host)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			n.Sum = hex.EncodeToString(sum[:])
			if n.Xattrs, err = snapXattrs(host); err != nil {
				return err
			}
			if times {
				n.Mtime = st.Mtim.Nano()
			}
		case syscall.S_IFLNK:
			n.Type, n.Mode = "symlink", 0
			if n.Target, err = os.Readlink(host); err != nil {
				return err
			}
		default:
			n.Type = fmt.Sprintf("type%o", st.Mode&syscall.S_IFMT)
		}
		snap[p] = n
		return nil
	})
	return snap, err
}

// snapXattrs lists the extended attributes of a file or directory.
func snapXattrs(host string) (string, error) {
	f, err := os.Open(host)
	if err != nil {
		return "", err
	}
	defer f.Close()
	x, err := rootfs.FileXattrs(f)
	if err != nil || len(x) == 0 {
		return "", err
	}
	names := make([]string, 0, len(x))
	for name := range x {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		names[i] = name + "=" + hex.EncodeToString(x[name])
	}
	return strings.Join(names, ","), nil
}

// DiffTrees names how got differs from want, path by path in sorted order,
// at most max findings (0: all).
func DiffTrees(want, got TreeSnap, max int) []string {
	paths := make([]string, 0, len(want)+len(got))
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []string
	for _, p := range paths {
		w, inW := want[p]
		g, inG := got[p]
		switch {
		case !inG:
			out = append(out, fmt.Sprintf("%s: missing, want %v", p, w))
		case !inW:
			out = append(out, fmt.Sprintf("%s: unexpected %v", p, g))
		case w != g:
			out = append(out, fmt.Sprintf("%s: got %v, want %v", p, g, w))
		default:
			continue
		}
		if max > 0 && len(out) == max {
			break
		}
	}
	return out
}

// String lists the snapshot, one path a line, sorted.
func (s TreeSnap) String() string {
	paths := make([]string, 0, len(s))
	for p := range s {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "  %s: %v\n", p, s[p])
	}
	return b.String()
}
