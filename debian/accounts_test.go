package debian

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the shadow tools change account files")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("needs the shadow tools (Debian's passwd package)")
	}
}

// uniqueName returns cairn-t-XXXX, unique enough for parallel runs.
func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	return "cairn-t-" + hex.EncodeToString(b)
}

// templateRoot makes a root holding a minimal /etc copied from
// testdata/accounts-etc (shadow files mode 0640, as Debian has them).
func templateRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"passwd", "group", "shadow", "gshadow"} {
		data, err := os.ReadFile(filepath.Join("testdata/accounts-etc", name))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.Contains(name, "shadow") {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, "etc", name), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readEtc(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "etc", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestAccountsUnderRoot creates, changes, restores and deletes users and
// groups under a --root holding a minimal /etc.
func TestAccountsUnderRoot(t *testing.T) {
	needRoot(t)
	root := templateRoot(t)
	a := NewAccounts(root)
	before := map[string]string{}
	for _, f := range []string{"passwd", "group", "shadow", "gshadow"} {
		before[f] = readEtc(t, root, f)
	}

	// A new group and a new user in it.
	if err := a.AddGroup(GroupSpec{Name: "web", GID: "1500"}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddUser(UserSpec{Name: "deploy", UID: "1600", Shell: "/bin/sh", Groups: []string{"web", "staff"}}); err != nil {
		t.Fatal(err)
	}
	u, err := a.User("deploy")
	if err != nil || u == nil {
		t.Fatalf("user deploy after useradd: %v, %v", u, err)
	}
	if u.UID != 1600 || u.Shell != "/bin/sh" || u.Home != "/home/deploy" || !slices.Equal(u.Groups, []string{"staff", "web"}) || u.Shadow == "" {
		t.Errorf("user deploy = %+v", u)
	}
	if st, err := os.Stat(filepath.Join(root, "home/deploy")); err != nil || !st.IsDir() {
		t.Errorf("home of deploy not made beneath the root: %v", err)
	}
	if g, err := a.Group("deploy"); err != nil || g == nil || g.GID != u.GID {
		t.Errorf("user group deploy = %+v, %v (user gid %d)", g, err, u.GID)
	}
	if g, err := a.Group("web"); err != nil || g == nil || g.GID != 1500 || !slices.Equal(g.Members, []string{"deploy"}) || g.GShadow == "" {
		t.Errorf("group web = %+v, %v", g, err)
	}

	// A home that changes moves along, and back.
	deploy := *u
	if err := os.Mkdir(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.ModifyUser(UserSpec{Name: "deploy", Home: "/srv/deploy"}); err != nil {
		t.Fatal(err)
	}
	if !isDir(filepath.Join(root, "srv/deploy")) || exists(filepath.Join(root, "home/deploy")) {
		t.Error("usermod --home did not move the home beneath the root")
	}
	if err := a.RestoreUser(deploy); err != nil {
		t.Fatal(err)
	}
	if !isDir(filepath.Join(root, "home/deploy")) || exists(filepath.Join(root, "srv/deploy")) {
		t.Error("the home did not move back")
	}
	if err := os.Remove(filepath.Join(root, "srv")); err != nil {
		t.Fatal(err)
	}

	// A pre-existing user changed, then restored byte for byte.
	old, err := a.User("olduser")
	if err != nil || old == nil {
		t.Fatalf("olduser: %v, %v", old, err)
	}
	if err := a.ModifyUser(UserSpec{Name: "olduser", UID: "1201", Shell: "/bin/sh", Home: "/srv/old", Groups: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	mod, _ := a.User("olduser")
	if mod.UID != 1201 || mod.Shell != "/bin/sh" || mod.Home != "/srv/old" || !slices.Equal(mod.Groups, []string{"web"}) {
		t.Errorf("olduser after usermod = %+v", mod)
	}
	// Spoil the shadow line as passwd(1) would.
	if err := a.withLock(func() error {
		return a.setLine("shadow", "olduser", "olduser:$6$new$x:20000:0:99999:7:::")
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.RestoreUser(*old); err != nil {
		t.Fatal(err)
	}
	back, _ := a.User("olduser")
	if back.Passwd != old.Passwd || back.Shadow != old.Shadow || !slices.Equal(back.Groups, old.Groups) {
		t.Errorf("olduser restored = %+v, want %+v", back, old)
	}

	// A pre-existing group's gid changed and restored; deploy's membership
	// is not the group's to restore.
	staff, _ := a.Group("staff")
	if err := a.ModifyGroup(GroupSpec{Name: "staff", GID: "51"}); err != nil {
		t.Fatal(err)
	}
	if g, _ := a.Group("staff"); g.GID != 51 {
		t.Errorf("staff gid = %d after groupmod, want 51", g.GID)
	}
	if err := a.RestoreGroup(*staff); err != nil {
		t.Fatal(err)
	}
	if g, _ := a.Group("staff"); g.Line != staff.Line || g.GShadow != staff.GShadow {
		t.Errorf("staff restored = %+v, want %+v", g, staff)
	}

	// Everything cairn made removed: the files are as they were.
	if err := a.DeleteUser("deploy", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "home/deploy")); !os.IsNotExist(err) {
		t.Errorf("home of deploy left after userdel --remove: %v", err)
	}
	for _, g := range []string{"deploy", "web"} {
		if err := a.DeleteGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	for f, want := range before {
		if got := readEtc(t, root, f); got != want {
			t.Errorf("/etc/%s after the round trip:\n%s\nwant:\n%s", f, got, want)
		}
	}
	for _, f := range []string{"shadow", "gshadow"} {
		if st, err := os.Stat(filepath.Join(root, "etc", f)); err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("/etc/%s mode after the round trip: %v, %v", f, st.Mode(), err)
		}
	}
	// A user gone altogether comes back from its image.
	if err := a.DeleteUser("olduser", false); err != nil {
		t.Fatal(err)
	}
	if err := a.RestoreUser(*old); err != nil {
		t.Fatal(err)
	}
	if back, _ := a.User("olduser"); back == nil || back.Passwd != old.Passwd || back.Shadow != old.Shadow || !slices.Equal(back.Groups, old.Groups) {
		t.Errorf("olduser recreated = %+v, want %+v", back, old)
	}
}

// TestAccountsErrors checks that bad input and a root without account
// files are clear errors that change nothing.
func TestAccountsErrors(t *testing.T) {
	needRoot(t)
	root := templateRoot(t)
	a := NewAccounts(root)
	before := readEtc(t, root, "passwd")
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"colon", func() error { return a.AddUser(UserSpec{Name: "bad:name"}) }, `invalid user or group name "bad:name"`},
		{"digits", func() error { return a.AddUser(UserSpec{Name: "12345"}) }, "only digits"},
		// More digits than a uint64 holds are digits all the same (and
		// Debian's useradd takes a name of digits).
		{"digits past uint64", func() error { return a.AddGroup(GroupSpec{Name: strings.Repeat("9", 25)}) }, "only digits"},
		{"dash", func() error { return a.AddGroup(GroupSpec{Name: "-x"}) }, "starts with -"},
		{"long", func() error { return a.AddUser(UserSpec{Name: strings.Repeat("a", 33)}) }, "longer than 32"},
		{"useradd refuses", func() error { return a.AddUser(UserSpec{Name: "olduser"}) }, "useradd: exit status 9: useradd: user 'olduser' already exists"},
		{"no such group", func() error { return a.AddUser(UserSpec{Name: "x1", Groups: []string{"nosuch"}}) }, "nosuch"},
		{"modify absent", func() error { return a.ModifyUser(UserSpec{Name: "nobody-here", Shell: "/bin/sh"}) }, "no such user"},
		{"no passwd", func() error { return NewAccounts(t.TempDir()).AddUser(UserSpec{Name: "x2"}) }, "has no /etc/passwd"},
		// Ids out of range never reach the shadow tools: 4294967295 is
		// (uid_t)-1, and larger ones are truncated by the kernel.
		{"uid -1", func() error { return a.AddUser(UserSpec{Name: "x3", UID: "4294967295"}) }, `user x3: uid: "4294967295" is not an id from 0 to 4294967294`},
		{"gid too big", func() error { return a.AddUser(UserSpec{Name: "x4", GID: "4294967296"}) }, `user x4: gid: "4294967296" is not an id`},
		{"groups id too big", func() error { return a.AddUser(UserSpec{Name: "x5", Groups: []string{"4294967295"}}) }, `user x5: groups: "4294967295" is not an id`},
		{"modify uid huge", func() error { return a.ModifyUser(UserSpec{Name: "olduser", UID: "99999999999999999999"}) }, `user olduser: uid: "99999999999999999999" is not an id`},
		{"group gid -1", func() error { return a.AddGroup(GroupSpec{Name: "x6", GID: "4294967295"}) }, `group x6: gid: "4294967295" is not an id`},
		{"modify group gid too big", func() error { return a.ModifyGroup(GroupSpec{Name: "x7", GID: "4294967296"}) }, `group x7: gid: "4294967296" is not an id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one that says %q", err, tt.want)
			}
			if got := readEtc(t, root, "passwd"); got != before {
				t.Errorf("/etc/passwd changed:\n%s", got)
			}
		})
	}

	// An entry whose id is out of range is an error, not an int that
	// would be truncated to 32 bits.
	bad := before + "ghost:x:4294967296:0::/:/bin/sh\n"
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := a.User("ghost"); err == nil || !strings.Contains(err.Error(), `user ghost: uid in `) {
		t.Errorf("User(ghost) = %+v, %v; want an error about its uid", u, err)
	}
}

// TestAccountsOnHost does the same on the host itself, with unique names
// that it removes at the end.
func TestAccountsOnHost(t *testing.T) {
	needRoot(t)
	a := NewAccounts("/")
	user, group := uniqueName(t), uniqueName(t)
	t.Cleanup(func() {
		exec.Command("userdel", "--remove", user).Run()
		exec.Command("groupdel", user).Run()
		exec.Command("groupdel", group).Run()
	})
	if err := a.AddGroup(GroupSpec{Name: group, System: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddUser(UserSpec{Name: user, Shell: "/bin/sh", Groups: []string{group}}); err != nil {
		t.Fatal(err)
	}
	u, err := a.User(user)
	if err != nil || u == nil || !slices.Equal(u.Groups, []string{group}) {
		t.Fatalf("user %s = %+v, %v", user, u, err)
	}
	out, err := exec.Command("id", "-nG", user).Output()
	if err != nil || !strings.Contains(string(out), group) {
		t.Errorf("id -nG %s = %q, %v: the system does not see the user", user, out, err)
	}
	if err := a.ModifyUser(UserSpec{Name: user, Shell: "/bin/bash", Groups: []string{}}); err != nil {
		t.Fatal(err)
	}
	if m, _ := a.User(user); m.Shell != "/bin/bash" || len(m.Groups) != 0 {
		t.Errorf("user after usermod = %+v", m)
	}
	if err := a.RestoreUser(*u); err != nil {
		t.Fatal(err)
	}
	if b, _ := a.User(user); b.Passwd != u.Passwd || b.Shadow != u.Shadow || !slices.Equal(b.Groups, u.Groups) {
		t.Errorf("user restored = %+v, want %+v", b, u)
	}
	if err := a.DeleteUser(user, true); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteGroup(group); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{user, group} {
		if g, _ := a.Group(name); g != nil {
			t.Errorf("group %s left: %+v", name, g)
		}
	}
	if x, _ := a.User(user); x != nil {
		t.Errorf("user %s left", user)
	}
	if _, err := os.Stat(u.Home); !os.IsNotExist(err) {
		t.Errorf("home %s left: %v", u.Home, err)
	}
}
