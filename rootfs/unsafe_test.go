package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Owners of the unsafe-path tree.
const (
	alice = 1000
	bob   = 1001
)

// unsafeTree is a root with users' homes full of links: links that their
// owners could have planted into root's directories or another user's, and
// links among a user's own directories. Owners are set with lchown, so the
// test needs root.
func unsafeTree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tree holds objects of several owners")
	}
	root := t.TempDir()
	build(t, root,
		"d:root/.ssh", "f:root/.ssh/authorized_keys=root's keys",
		"d:etc", "d:tmp",
		"d:home/alice/releases/v2", "d:home/alice/sub", "d:home/alice/rootowned",
		"d:home/bob/www",
		"d:srv",
		"l:home/alice/.ssh->/root/.ssh",                  // absolute, into root's
		"l:home/alice/up->../../root/.ssh",               // relative, climbing into root's
		"l:home/alice/current->releases/v2",              // her own, relative
		"l:home/alice/abs->/home/alice/releases",         // her own, absolute
		"l:home/alice/via->/root/../home/alice/releases", // her own, through root's
		"l:home/alice/rootlink->/etc",                    // made by root, in her directory
		"l:home/alice/sub/inner->/etc",                   // reached through another of hers
		"l:home/alice/outer->sub/inner",                  //
		"l:home/alice/bobs->/home/bob/www",               // to another user's
		"l:home/alice/mine->/home/alice/rootowned",       // to a directory of root's in her home
		"l:home/alice/bobsown->/home/alice/sub",          // bob's link in her directory
		"l:tmp/evil->/etc",                               // her link in root's /tmp
		"l:tmp/hers->/home/alice/sub",                    // her link in /tmp to her own
		"l:srv/www->/home/alice/releases",                // root's link into her home
		"l:srv/deep->/home/alice/.ssh",                   // root's link to her bad link
	)
	own := func(p string, uid int) {
		if err := os.Lchown(filepath.Join(root, p), uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"home/alice", "home/alice/releases", "home/alice/releases/v2", "home/alice/sub",
		"home/alice/.ssh", "home/alice/up", "home/alice/current", "home/alice/abs", "home/alice/via",
		"home/alice/sub/inner", "home/alice/outer", "home/alice/bobs", "home/alice/mine",
		"tmp/evil", "tmp/hers"} {
		own(p, alice)
	}
	for _, p := range []string{"home/bob", "home/bob/www", "home/alice/bobsown"} {
		own(p, bob)
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestUnsafeLinks: a link that a user other than root could have planted
// is followed only to a directory of that user, by both resolvers, for
// every operation; a refusal names the link and the owners.
func TestUnsafeLinks(t *testing.T) {
	tests := []struct {
		p    string
		link string // the link refused, "" if the path is safe
		msg  string // the start of the refusal, after "unsafe path: "
	}{
		{"/home/alice/.ssh/authorized_keys", "/home/alice/.ssh", "/home/alice/.ssh is a link in a directory owned by uid 1000 to a directory owned by uid 0; refusing to follow it"},
		{"/home/alice/up/authorized_keys", "/home/alice/up", "/home/alice/up is a link in a directory owned by uid 1000 to a directory owned by uid 0"},
		{"/home/alice/rootlink/passwd", "/home/alice/rootlink", "/home/alice/rootlink is a link in a directory owned by uid 1000 to a directory owned by uid 0"},
		{"/home/alice/outer/passwd", "/home/alice/sub/inner", "/home/alice/sub/inner is a link in a directory owned by uid 1000 to a directory owned by uid 0"},
		{"/home/alice/bobs/index.html", "/home/alice/bobs", "/home/alice/bobs is a link in a directory owned by uid 1000 to a directory owned by uid 1001"},
		{"/home/alice/mine/x", "/home/alice/mine", "/home/alice/mine is a link in a directory owned by uid 1000 to a directory owned by uid 0"},
		{"/home/alice/bobsown/x", "/home/alice/bobsown", "/home/alice/bobsown is a link owned by uid 1001 in a directory owned by uid 1000 to a directory owned by uid 1000"},
		{"/tmp/evil/passwd", "/tmp/evil", "/tmp/evil is a link owned by uid 1000 to a directory owned by uid 0"},
		{"/srv/deep/authorized_keys", "/home/alice/.ssh", "/home/alice/.ssh is a link in a directory owned by uid 1000 to a directory owned by uid 0"},
		// Safe: a user's links among her own directories, root's links.
		{"/home/alice/current/x", "", ""},
		{"/home/alice/abs/v2/x", "", ""},
		{"/home/alice/via/v2/x", "", ""},
		{"/tmp/hers/x", "", ""},
		{"/srv/www/v2/x", "", ""},
		// The last component is never followed, so never refused.
		{"/home/alice/.ssh", "", ""},
		{"/tmp/evil", "", ""},
	}
	eachResolver(t, func(t *testing.T, userspace bool) {
		root := unsafeTree(t)
		r := openRoot(t, root, userspace)
		before := snapshot(t, root, "")
		for _, tt := range tests {
			_, err := r.Lstat(tt.p)
			if tt.link == "" {
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("Lstat(%s) = %v, want it followed", tt.p, err)
				}
				continue
			}
			var ue *UnsafePathError
			if !errors.As(err, &ue) {
				t.Errorf("Lstat(%s) = %v, want an UnsafePathError", tt.p, err)
				continue
			}
			if ue.Link != tt.link {
				t.Errorf("Lstat(%s) refuses %s, want %s", tt.p, ue.Link, tt.link)
			}
			if want := "lstat " + tt.p + ": unsafe path: " + tt.msg; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Lstat(%s) = %q\nwant %q...", tt.p, err, want)
			}
			// Every operation refuses it, and changes nothing.
			if err := writeFile(r, tt.p, "pwned", 0o644); !errors.As(err, &ue) {
				t.Errorf("write %s = %v, want an UnsafePathError", tt.p, err)
			}
			if err := r.Remove(tt.p); !errors.As(err, &ue) {
				t.Errorf("Remove(%s) = %v, want an UnsafePathError", tt.p, err)
			}
			if err := r.Mkdir(tt.p, 0o755); !errors.As(err, &ue) {
				t.Errorf("Mkdir(%s) = %v, want an UnsafePathError", tt.p, err)
			}
			if _, err := r.OpenDir(filepath.Dir(tt.p)); !errors.As(err, &ue) {
				t.Errorf("OpenDir(%s) = %v, want an UnsafePathError", filepath.Dir(tt.p), err)
			}
		}
		if d := diffSnapshots(before, snapshot(t, root, "")); d != nil {
			t.Errorf("refused operations changed the tree:\n%s", strings.Join(d, "\n"))
		}
		// The safe paths are usable.
		if err := writeFile(r, "/home/alice/current/x", "hers", 0o644); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "home/alice/releases/v2/x")); string(got) != "hers" {
			t.Errorf("write through her own link: %q", got)
		}
	})
}

// TestUnsafeLinkNames: the message names the users when told how.
func TestUnsafeLinkNames(t *testing.T) {
	e := &UnsafePathError{Link: "/home/alice/.ssh", DirUID: alice, TargetUID: 0, UserName: func(uid uint32) string {
		return map[uint32]string{0: "root", alice: "alice"}[uid]
	}}
	want := "unsafe path: /home/alice/.ssh is a link in a directory owned by uid 1000 (alice) to a directory owned by uid 0; refusing to follow it"
	if e.Error() != want {
		t.Errorf("got  %q\nwant %q", e.Error(), want)
	}
}

// TestProcLinksRefused: links on procfs are not followed by either
// resolver (openat2 refuses magic links; the user-space walk refuses every
// link there), so /proc/self/cwd cannot lead anywhere.
func TestProcLinksRefused(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		r := openRoot(t, "/", userspace)
		for _, p := range []string{"/proc/self/cwd/x", "/proc/self/root/etc/passwd", "/proc/self/fd/0/x"} {
			if _, err := r.Lstat(p); errnoOf(err) != syscall.ELOOP {
				t.Errorf("Lstat(%s) = %v, want ELOOP", p, err)
			}
		}
	})
}
