package steps_test

// USERADD and GROUPADD through the real applier and the real shadow tools
// (debian's driver), under a --root holding a minimal /etc and on the host
// itself: creation, changes of a user that was there before restored byte
// for byte, homes removed only when cairn made them, a failed move undone.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// testAccounts adapts debian's driver as internal/cli does.
type testAccounts struct{ d *debian.Accounts }

func (a testAccounts) User(name string) (*steps.User, error) {
	u, err := a.d.User(name)
	return (*steps.User)(u), err
}
func (a testAccounts) Group(name string) (*steps.Group, error) {
	g, err := a.d.Group(name)
	return (*steps.Group)(g), err
}
func (a testAccounts) AddUser(s steps.UserSpec) error    { return a.d.AddUser(debian.UserSpec(s)) }
func (a testAccounts) ModifyUser(s steps.UserSpec) error { return a.d.ModifyUser(debian.UserSpec(s)) }
func (a testAccounts) DeleteUser(n string, home bool) error {
	return a.d.DeleteUser(n, home)
}
func (a testAccounts) RestoreUser(u steps.User) error   { return a.d.RestoreUser(debian.User(u)) }
func (a testAccounts) AddGroup(s steps.GroupSpec) error { return a.d.AddGroup(debian.GroupSpec(s)) }
func (a testAccounts) ModifyGroup(s steps.GroupSpec) error {
	return a.d.ModifyGroup(debian.GroupSpec(s))
}
func (a testAccounts) DeleteGroup(n string) error       { return a.d.DeleteGroup(n) }
func (a testAccounts) RestoreGroup(g steps.Group) error { return a.d.RestoreGroup(debian.Group(g)) }

// acctHost is a root, its state directory, and the sources of journals.
type acctHost struct {
	root, state, src string
	sum              string // sha256 of files/a
}

func newAcctHost(t *testing.T, root string) *acctHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the shadow tools change account files")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("needs the shadow tools (Debian's passwd package)")
	}
	h := &acctHost{root: root, state: filepath.Join(t.TempDir(), "state"), src: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(h.src, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	content := []byte("owned by a new user\n")
	if err := os.WriteFile(filepath.Join(h.src, "files/a"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(content)
	h.sum = hex.EncodeToString(s[:])
	return h
}

// templateRoot is a root with the minimal /etc of debian's tests.
func templateRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "srv", "home"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"passwd", "group", "shadow", "gshadow"} {
		data, err := os.ReadFile(filepath.Join("../debian/testdata/accounts-etc", name))
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
	}
	return root
}

// apply moves the host to the journal of lines.
func (h *acctHost) apply(t *testing.T, lines ...string) error {
	t.Helper()
	return h.move(t, false, lines...)
}

// move moves the host to the journal of lines, or only checks the move.
func (h *acctHost) move(t *testing.T, dryRun bool, lines ...string) error {
	t.Helper()
	for i := range lines {
		lines[i] = strings.ReplaceAll(lines[i], "SUM", h.sum)
	}
	ss, err := journal.ParseSteps("t.journal", lines)
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state, Create: true,
		Host: steps.Host{Accounts: testAccounts{debian.NewAccounts(h.root)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Apply(ctx, steps.Move{Journal: "t.journal", Steps: ss, Source: os.DirFS(h.src), SourceName: h.src, AllowRemoval: true, DryRun: dryRun})
	return err
}

// drift returns what drifted, as "OP NAME: DIFF" lines.
func (h *acctHost) drift(t *testing.T) []string {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state,
		Host: steps.Host{Accounts: testAccounts{debian.NewAccounts(h.root)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ds, err := a.Drift(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Step.Op+" "+d.Step.Object()+": "+d.Diff)
	}
	return out
}

// etc reads the account files of the root.
func (h *acctHost) etc(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"passwd", "group", "shadow", "gshadow"} {
		data, err := os.ReadFile(filepath.Join(h.root, "etc", name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(data)
	}
	return out
}

// line returns the line of ROOT/etc/db for name.
func (h *acctHost) line(t *testing.T, db, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.root, "etc", db))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(data)) {
		if strings.HasPrefix(l, name+":") {
			return strings.TrimSuffix(l, "\n")
		}
	}
	return ""
}

func sameEtc(t *testing.T, got, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got[name] != w {
			t.Errorf("/etc/%s:\n%s\nwant:\n%s", name, got[name], w)
		}
	}
}

func TestAccountsCreateAndRollback(t *testing.T) {
	h := newAcctHost(t, templateRoot(t))
	before := h.etc(t)
	err := h.apply(t,
		"GROUPADD web gid=1500",
		"USERADD deploy uid=1600 shell=/bin/sh groups=web,staff",
		"MKDIR /srv/app owner=deploy group=web",
		"COPY files/a /srv/app/f owner=deploy group=deploy sha256=SUM",
	)
	if err != nil {
		t.Fatal(err)
	}
	if l := h.line(t, "passwd", "deploy"); l != "deploy:x:1600:1600::/home/deploy:/bin/sh" {
		t.Errorf("passwd line of deploy = %q", l)
	}
	if l := h.line(t, "group", "web"); l != "web:x:1500:deploy" {
		t.Errorf("group line of web = %q", l)
	}
	st, err := os.Lstat(filepath.Join(h.root, "srv/app/f"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1600 || sys.Gid != 1600 {
		t.Errorf("/srv/app/f owned by %d:%d, want the new user 1600:1600", sys.Uid, sys.Gid)
	}
	if _, err := os.Stat(filepath.Join(h.root, "home/deploy")); err != nil {
		t.Errorf("home of deploy: %v", err)
	}
	// Drift: none, then what a hand-made change did.
	if d := h.drift(t); len(d) != 0 {
		t.Errorf("drift right after the apply: %q", d)
	}
	for _, cmd := range [][]string{
		{"usermod", "--root", h.root, "--shell", "/bin/bash", "--groups", "web", "deploy"},
		{"groupmod", "--root", h.root, "--gid", "1501", "web"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cmd[0], err, out)
		}
	}
	want := []string{"GROUPADD web: gid 1501, want 1500", "USERADD deploy: shell /bin/bash, want /bin/sh; groups web, want staff,web",
		"MKDIR /srv/app: owner 1600:1500, want 1600:1501"}
	if d := h.drift(t); strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Errorf("drift = %q, want %q", d, want)
	}
	for _, cmd := range [][]string{
		{"usermod", "--root", h.root, "--shell", "/bin/sh", "--groups", "web,staff", "deploy"},
		{"groupmod", "--root", h.root, "--gid", "1500", "web"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cmd[0], err, out)
		}
	}
	// Applying again changes nothing.
	if err := h.apply(t, "GROUPADD web gid=1500", "USERADD deploy uid=1600 shell=/bin/sh groups=web,staff",
		"MKDIR /srv/app owner=deploy group=web", "COPY files/a /srv/app/f owner=deploy group=deploy sha256=SUM"); err != nil {
		t.Fatal(err)
	}
	// A change of the user in place.
	if err := h.apply(t, "GROUPADD web gid=1500", "USERADD deploy uid=1600 shell=/bin/bash groups=web",
		"MKDIR /srv/app owner=deploy group=web", "COPY files/a /srv/app/f owner=deploy group=deploy sha256=SUM"); err != nil {
		t.Fatal(err)
	}
	if l := h.line(t, "passwd", "deploy"); l != "deploy:x:1600:1600::/home/deploy:/bin/bash" {
		t.Errorf("passwd line of deploy after the update = %q", l)
	}
	if l := h.line(t, "group", "staff"); l != "staff:x:50:olduser" {
		t.Errorf("staff after deploy left it = %q", l)
	}
	if err := h.apply(t); err != nil {
		t.Fatal(err)
	}
	sameEtc(t, h.etc(t), before)
	for _, p := range []string{"home/deploy", "srv/app"} {
		if _, err := os.Lstat(filepath.Join(h.root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after the rollback: %v", p, err)
		}
	}
}

func TestAccountsPreexistingRestored(t *testing.T) {
	h := newAcctHost(t, templateRoot(t))
	// A home that was there before the user: the rollback keeps it.
	if err := os.MkdirAll(filepath.Join(h.root, "home/pre/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := h.etc(t)
	if err := h.apply(t, "GROUPADD staff gid=60", "USERADD olduser shell=/bin/sh groups=web", "GROUPADD web", "USERADD pre"); err == nil {
		t.Fatal("a user in a group made later applied")
	}
	sameEtc(t, h.etc(t), before)
	if err := h.apply(t, "GROUPADD web", "GROUPADD staff gid=60", "USERADD olduser shell=/bin/sh groups=web", "USERADD pre"); err != nil {
		t.Fatal(err)
	}
	if l := h.line(t, "passwd", "olduser"); l != "olduser:x:1200:1200:Old User,,,:/home/olduser:/bin/sh" {
		t.Errorf("olduser = %q", l)
	}
	if l := h.line(t, "group", "staff"); !strings.HasPrefix(l, "staff:x:60:") {
		t.Errorf("staff = %q", l)
	}
	// passwd(1) changes olduser's password meanwhile: the rollback brings
	// back the line of before cairn, byte for byte.
	if out, err := exec.Command("usermod", "--root", h.root, "--password", "$6$new$x", "olduser").CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, out)
	}
	if err := h.apply(t); err != nil {
		t.Fatal(err)
	}
	sameEtc(t, h.etc(t), before)
	if _, err := os.Stat(filepath.Join(h.root, "home/pre/data")); err != nil {
		t.Errorf("the home that was there before the user: %v", err)
	}
}

func TestAccountsInvalidName(t *testing.T) {
	h := newAcctHost(t, templateRoot(t))
	before := h.etc(t)
	err := h.apply(t, "USERADD ok-user", "MKDIR /srv/x", "USERADD bad:name")
	if err == nil {
		t.Fatal("USERADD bad:name applied")
	}
	if steps.ExitCode(err) != 1 || !strings.Contains(err.Error(), "USERADD bad:name") || !strings.Contains(err.Error(), `invalid user or group name "bad:name"`) {
		t.Errorf("error (exit %d) = %v", steps.ExitCode(err), err)
	}
	sameEtc(t, h.etc(t), before)
	for _, p := range []string{"srv/x", "home/ok-user"} {
		if _, err := os.Lstat(filepath.Join(h.root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after the failed move: %v", p, err)
		}
	}
}

func TestAccountsNoDriver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root, err := rootfs.Open(templateRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: filepath.Join(t.TempDir(), "s"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ss, err := journal.ParseSteps("t.journal", []string{"GROUPADD web"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Apply(ctx, steps.Move{Journal: "t.journal", Steps: ss, AllowRemoval: true})
	if err == nil || !strings.Contains(err.Error(), "no driver for users and groups") {
		t.Errorf("error = %v", err)
	}
}

func TestAccountsOnHost(t *testing.T) {
	h := newAcctHost(t, "/")
	b := make([]byte, 6)
	rand.Read(b)
	x := hex.EncodeToString(b)
	user, group, pre := "cairn-t-"+x[:4], "cairn-t-"+x[4:8], "cairn-t-"+x[8:]
	t.Cleanup(func() {
		for _, u := range []string{user, pre} {
			exec.Command("userdel", "--remove", u).Run()
			exec.Command("groupdel", u).Run()
		}
		exec.Command("groupdel", group).Run()
	})
	// A user that was there before cairn, with a password set.
	if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", "--password", "$6$salt$hash", pre).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	preLines := [2]string{h.line(t, "passwd", pre), h.line(t, "shadow", pre)}
	err := h.apply(t, "GROUPADD "+group, "USERADD "+user+" groups="+group, "USERADD "+pre+" shell=/bin/sh groups="+group)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("id", "-nG", user).Output()
	if err != nil || !strings.Contains(string(out), group) {
		t.Errorf("id -nG %s = %q, %v", user, out, err)
	}
	if l := h.line(t, "passwd", pre); !strings.HasSuffix(l, ":/bin/sh") {
		t.Errorf("%s = %q, want shell /bin/sh", pre, l)
	}
	home := h.line(t, "passwd", user)
	home = strings.Split(home, ":")[5]
	if err := h.apply(t); err != nil {
		t.Fatal(err)
	}
	if got := [2]string{h.line(t, "passwd", pre), h.line(t, "shadow", pre)}; got != preLines {
		t.Errorf("%s after the rollback = %q, want %q", pre, got, preLines)
	}
	for _, db := range []string{"passwd", "group", "shadow", "gshadow"} {
		for _, name := range []string{user, group} {
			if l := h.line(t, db, name); l != "" {
				t.Errorf("/etc/%s still holds %q", db, l)
			}
		}
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("home %s cairn made left: %v", home, err)
	}
	if _, err := os.Stat("/home/" + pre); err != nil {
		t.Errorf("home of %s that was there before: %v", pre, err)
	}
}

// TestAccountsRemovedUserUndone: a move that removes a user (userdel takes
// its user group along) and then fails is undone, the user and its group
// back as they were. The user's image did not hold its group, and
// useradd refused to bring the user back into a gid that no longer
// existed: exit 3 for good, every later command stuck on the same undo.
func TestAccountsRemovedUserUndone(t *testing.T) {
	h := newAcctHost(t, templateRoot(t))
	if err := h.apply(t, "USERADD deploy system=true", "MKDIR /srv/app"); err != nil {
		t.Fatal(err)
	}
	before := h.etc(t)
	err := h.apply(t, "MKDIR /srv/app", `EXEC "false" undo="true"`)
	if steps.ExitCode(err) != steps.ExitFailed {
		t.Fatalf("the failed move: %v (exit %d), want exit 1, undone", err, steps.ExitCode(err))
	}
	sameEtc(t, h.etc(t), before)
}

// TestAccountsPreflightRemovedUserGroup: the inverse of a USERADD deletes
// the user's own group with it, so the preflight refuses a later op that
// needs that group, as the run would fail on it; with a group of that
// name there before cairn made the user, the group stays and the move runs.
func TestAccountsPreflightRemovedUserGroup(t *testing.T) {
	h := newAcctHost(t, templateRoot(t))
	if err := h.apply(t, "USERADD deploy system=true", "MKDIR /srv/app"); err != nil {
		t.Fatal(err)
	}
	before := h.etc(t)
	next := []string{"MKDIR /srv/app", "COPY files/a /srv/app/f group=deploy sha256=SUM"}
	for _, dryRun := range []bool{true, false} {
		err := h.move(t, dryRun, next...)
		if steps.ExitCode(err) != steps.ExitBadInput || !strings.Contains(err.Error(), "t.journal:2:1: COPY /srv/app/f: group deploy: an earlier op of the plan deletes it") {
			t.Errorf("dry run %v: %v (exit %d), want the preflight to refuse the group the inverse deletes", dryRun, err, steps.ExitCode(err))
		}
	}
	sameEtc(t, h.etc(t), before)
	// A user whose group was there before it: the group stays.
	if err := h.apply(t, "MKDIR /srv/app"); err != nil {
		t.Fatal(err)
	}
	if err := h.apply(t, "GROUPADD deploy gid=1700", "MKDIR /srv/app"); err != nil {
		t.Fatal(err)
	}
	if err := h.apply(t, "GROUPADD deploy gid=1700", "USERADD deploy system=true gid=1700", "MKDIR /srv/app"); err != nil {
		t.Fatal(err)
	}
	if err := h.apply(t, "GROUPADD deploy gid=1700", "MKDIR /srv/app", "COPY files/a /srv/app/f group=deploy sha256=SUM"); err != nil {
		t.Errorf("a move that keeps the group: %v", err)
	}
}

// TestAccountsLatin1EntryRefused: a user whose /etc/passwd entry is no
// valid UTF-8 (a GECOS written in Latin-1) cannot be kept in cairn's state,
// which is JSON: a USERADD that would change it is refused before it acts,
// naming the user, and the account files stay as they were.
func TestAccountsLatin1EntryRefused(t *testing.T) {
	root := templateRoot(t)
	h := newAcctHost(t, root)
	f, err := os.OpenFile(filepath.Join(root, "etc", "passwd"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("legacy:x:1500:100:Jos\xe9 Legacy:/home/legacy:/bin/sh\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	before := h.etc(t)
	err = h.apply(t, "MKDIR /srv/app", "USERADD legacy shell=/bin/bash")
	if steps.ExitCode(err) != steps.ExitFailed || !strings.Contains(err.Error(), "the entry of user legacy holds") ||
		!strings.Contains(err.Error(), "no valid UTF-8") {
		t.Fatalf("USERADD of a user with a Latin-1 entry: %v (exit %d), want exit 1 naming the user and why", err, steps.ExitCode(err))
	}
	sameEtc(t, h.etc(t), before)
	if _, err := os.Lstat(filepath.Join(root, "srv", "app")); !os.IsNotExist(err) {
		t.Errorf("/srv/app after the refused move: %v, want it undone", err)
	}
}
