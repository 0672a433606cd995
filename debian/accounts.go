package debian

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// User is one user's entry in the account files of a root.
type User struct {
	Name   string
	UID    int
	GID    int
	Gecos  string
	Home   string
	Shell  string
	Groups []string // supplementary groups, sorted
	Passwd string   // the /etc/passwd line, without its newline
	Shadow string   // the /etc/shadow line, "" if there is none
}

// Group is one group's entry in the account files of a root.
type Group struct {
	Name    string
	GID     int
	Members []string // as listed in /etc/group
	Line    string   // the /etc/group line, without its newline
	GShadow string   // the /etc/gshadow line, "" if there is none
}

// UserSpec is what a user should be. Empty strings and a nil Groups leave
// that attribute as it is (or to useradd's default, for a new user).
type UserSpec struct {
	Name   string
	UID    string // decimal
	GID    string // decimal
	Home   string
	Shell  string
	Groups []string // the supplementary groups, exactly
	System bool     // only for a new user: a system account without a home
}

// GroupSpec is what a group should be; an empty GID leaves it as it is.
type GroupSpec struct {
	Name   string
	GID    string // decimal
	System bool   // only for a new group
}

// Accounts changes users and groups of the system beneath a root through
// the shadow tools (useradd, usermod, userdel, groupadd, groupmod,
// groupdel), with --root when the root is not /. It reads entries straight
// from ROOT/etc/{passwd,shadow,group,gshadow}.
type Accounts struct {
	root string
}

// NewAccounts returns the accounts driver of the system beneath root.
func NewAccounts(root string) *Accounts {
	if root == "" {
		root = "/"
	}
	return &Accounts{root: root}
}

// file returns the host path of an account file of the root.
func (a *Accounts) file(name string) string {
	return filepath.Join(a.root, "etc", name)
}

// User returns the entry of user name, or nil if there is none.
func (a *Accounts) User(name string) (*User, error) {
	if err := a.usable(); err != nil {
		return nil, err
	}
	line, err := findLine(a.file("passwd"), name)
	if err != nil || line == "" {
		return nil, err
	}
	f := strings.Split(line, ":")
	if len(f) != 7 {
		return nil, fmt.Errorf("user %s: malformed line in %s: %q", name, a.file("passwd"), line)
	}
	u := &User{Name: name, Gecos: f[4], Home: f[5], Shell: f[6], Passwd: line}
	if u.UID, err = parseID(f[2]); err != nil {
		return nil, fmt.Errorf("user %s: uid in %s: %w", name, a.file("passwd"), err)
	}
	if u.GID, err = parseID(f[3]); err != nil {
		return nil, fmt.Errorf("user %s: gid in %s: %w", name, a.file("passwd"), err)
	}
	if u.Shadow, err = findLine(a.file("shadow"), name); err != nil {
		return nil, err
	}
	if u.Groups, err = a.memberOf(name); err != nil {
		return nil, err
	}
	return u, nil
}

// memberOf lists the groups whose member list in /etc/group names user,
// sorted.
func (a *Accounts) memberOf(user string) ([]string, error) {
	data, err := os.ReadFile(a.file("group"))
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", user, err)
	}
	groups := []string{}
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), ":")
		if len(f) == 4 && f[3] != "" && slices.Contains(strings.Split(f[3], ","), user) {
			groups = append(groups, f[0])
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// Group returns the entry of group name, or nil if there is none.
func (a *Accounts) Group(name string) (*Group, error) {
	if err := a.usable(); err != nil {
		return nil, err
	}
	line, err := findLine(a.file("group"), name)
	if err != nil || line == "" {
		return nil, err
	}
	f := strings.Split(line, ":")
	if len(f) != 4 {
		return nil, fmt.Errorf("group %s: malformed line in %s: %q", name, a.file("group"), line)
	}
	g := &Group{Name: name, Members: splitList(f[3]), Line: line}
	if g.GID, err = parseID(f[2]); err != nil {
		return nil, fmt.Errorf("group %s: gid in %s: %w", name, a.file("group"), err)
	}
	if g.GShadow, err = findLine(a.file("gshadow"), name); err != nil {
		return nil, err
	}
	return g, nil
}

// AddUser creates a user: a new user group unless GID is given, a home
// directory (from the root's /etc/skel) unless it is a system account.
func (a *Accounts) AddUser(s UserSpec) error {
	if err := a.usable(); err != nil {
		return err
	}
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if err := s.checkIDs(); err != nil {
		return err
	}
	var args []string
	if s.System {
		args = append(args, "--system", "--no-create-home")
	} else {
		args = append(args, "--create-home")
	}
	if s.UID != "" {
		args = append(args, "--uid", s.UID)
	}
	if s.GID != "" {
		args = append(args, "--gid", s.GID)
	} else {
		args = append(args, "--user-group")
	}
	if s.Home != "" {
		args = append(args, "--home-dir", s.Home)
	}
	if s.Shell != "" {
		args = append(args, "--shell", s.Shell)
	}
	if len(s.Groups) > 0 {
		args = append(args, "--groups", strings.Join(s.Groups, ","))
	}
	return a.run("useradd", append(args, "--", s.Name)...)
}

// ModifyUser brings an existing user's attributes to those of s. A home
// directory that changes is moved when the old one exists and the new one
// does not.
func (a *Accounts) ModifyUser(s UserSpec) error {
	if err := s.checkIDs(); err != nil {
		return err
	}
	u, err := a.User(s.Name)
	if err != nil {
		return err
	}
	if u == nil {
		return fmt.Errorf("user %s: no such user in %s", s.Name, a.file("passwd"))
	}
	var args []string
	if s.UID != "" && s.UID != strconv.Itoa(u.UID) {
		args = append(args, "--uid", s.UID)
	}
	if s.GID != "" && s.GID != strconv.Itoa(u.GID) {
		args = append(args, "--gid", s.GID)
	}
	if s.Home != "" && s.Home != u.Home {
		args = append(args, a.homeArgs(u.Home, s.Home)...)
	}
	if s.Shell != "" && s.Shell != u.Shell {
		args = append(args, "--shell", s.Shell)
	}
	if s.Groups != nil && !sameSet(s.Groups, u.Groups) {
		args = append(args, "--groups", strings.Join(s.Groups, ","))
	}
	if len(args) == 0 {
		return nil
	}
	return a.run("usermod", append(args, "--", s.Name)...)
}

// homeArgs are usermod's arguments to change a home from old to new: the
// directory moves along when old exists beneath the root and new does not.
func (a *Accounts) homeArgs(old, new string) []string {
	args := []string{"--home", new}
	if old != "" && isDir(filepath.Join(a.root, old)) && !exists(filepath.Join(a.root, new)) {
		args = append(args, "--move-home")
	}
	return args
}

// DeleteUser deletes a user, and its home directory and mail spool when
// removeHome is set.
func (a *Accounts) DeleteUser(name string, removeHome bool) error {
	if err := a.usable(); err != nil {
		return err
	}
	args := []string{"--", name}
	if removeHome {
		args = append([]string{"--remove"}, args...)
	}
	return a.run("userdel", args...)
}

// RestoreUser brings the user back to exactly u: uid, gid, home, shell,
// GECOS and supplementary groups through usermod (or useradd, without a
// home, if the user is gone), then the passwd and shadow lines byte for
// byte. The shadow line is written straight into /etc/shadow (atomically,
// under the lock the shadow tools take, keeping the file's mode and owner):
// usermod -p would stamp a new date of last change, and no tool sets the
// line's last, reserved field.
func (a *Accounts) RestoreUser(u User) error {
	cur, err := a.User(u.Name)
	if err != nil {
		return err
	}
	if cur == nil {
		args := []string{"--no-create-home", "--non-unique", "--uid", strconv.Itoa(u.UID), "--gid", strconv.Itoa(u.GID),
			"--home-dir", u.Home, "--shell", u.Shell, "--comment", u.Gecos}
		if len(u.Groups) > 0 {
			args = append(args, "--groups", strings.Join(u.Groups, ","))
		}
		if err := a.run("useradd", append(args, "--", u.Name)...); err != nil {
			return err
		}
	} else {
		var args []string
		if cur.UID != u.UID {
			args = append(args, "--non-unique", "--uid", strconv.Itoa(u.UID))
		}
		if cur.GID != u.GID {
			args = append(args, "--gid", strconv.Itoa(u.GID))
		}
		if cur.Home != u.Home {
			args = append(args, a.homeArgs(cur.Home, u.Home)...)
		}
		if cur.Shell != u.Shell {
			args = append(args, "--shell", u.Shell)
		}
		if cur.Gecos != u.Gecos {
			args = append(args, "--comment", u.Gecos)
		}
		if !sameSet(cur.Groups, u.Groups) {
			args = append(args, "--groups", strings.Join(u.Groups, ","))
		}
		if len(args) > 0 {
			if err := a.run("usermod", append(args, "--", u.Name)...); err != nil {
				return err
			}
		}
	}
	return a.withLock(func() error {
		if err := a.setLine("passwd", u.Name, u.Passwd); err != nil {
			return err
		}
		return a.setLine("shadow", u.Name, u.Shadow)
	})
}

// AddGroup creates a group.
func (a *Accounts) AddGroup(s GroupSpec) error {
	if err := a.usable(); err != nil {
		return err
	}
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if err := checkSpecID("group "+s.Name, "gid", s.GID); err != nil {
		return err
	}
	var args []string
	if s.System {
		args = append(args, "--system")
	}
	if s.GID != "" {
		args = append(args, "--gid", s.GID)
	}
	return a.run("groupadd", append(args, "--", s.Name)...)
}

// ModifyGroup sets an existing group's gid to that of s.
func (a *Accounts) ModifyGroup(s GroupSpec) error {
	if err := checkSpecID("group "+s.Name, "gid", s.GID); err != nil {
		return err
	}
	g, err := a.Group(s.Name)
	if err != nil {
		return err
	}
	if g == nil {
		return fmt.Errorf("group %s: no such group in %s", s.Name, a.file("group"))
	}
	if s.GID == "" || s.GID == strconv.Itoa(g.GID) {
		return nil
	}
	return a.run("groupmod", "--gid", s.GID, "--", s.Name)
}

// DeleteGroup deletes a group.
func (a *Accounts) DeleteGroup(name string) error {
	if err := a.usable(); err != nil {
		return err
	}
	return a.run("groupdel", "--", name)
}

// RestoreGroup brings the group back to g: its gid through groupmod (or
// groupadd if it is gone), then its /etc/group and /etc/gshadow lines
// written straight, byte for byte, except the member lists: those stay as
// they are, for they belong to the users (a user's restore sets them).
func (a *Accounts) RestoreGroup(g Group) error {
	cur, err := a.Group(g.Name)
	if err != nil {
		return err
	}
	switch {
	case cur == nil:
		err = a.run("groupadd", "--non-unique", "--gid", strconv.Itoa(g.GID), "--", g.Name)
	case cur.GID != g.GID:
		err = a.run("groupmod", "--non-unique", "--gid", strconv.Itoa(g.GID), "--", g.Name)
	}
	if err != nil {
		return err
	}
	return a.withLock(func() error {
		groupLine, err := findLine(a.file("group"), g.Name)
		if err != nil {
			return err
		}
		if err := a.setLine("group", g.Name, withField(g.Line, 3, field(groupLine, 3))); err != nil {
			return err
		}
		gsLine, err := findLine(a.file("gshadow"), g.Name)
		if err != nil || g.GShadow == "" || gsLine == "" {
			return err // a gshadow line that was not there, or is gone, stays so
		}
		return a.setLine("gshadow", g.Name, withField(g.GShadow, 3, field(gsLine, 3)))
	})
}

// maxID is the largest user or group id: 4294967295 is (uid_t)-1, which
// chown(2) reads as "no change" and the shadow tools refuse, and larger
// numbers do not fit in a uid_t.
const maxID = 4294967294

// parseID parses a decimal user or group id, 0 to maxID. (strconv.Atoi
// would take any int, which the kernel truncates to 32 bits.)
func parseID(v string) (int, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > maxID {
		return 0, fmt.Errorf("%q is not an id from 0 to %d", v, maxID)
	}
	return int(n), nil
}

// checkSpecID checks an id that a spec sets, if it sets one.
func checkSpecID(what, key, v string) error {
	if v == "" {
		return nil
	}
	if _, err := parseID(v); err != nil {
		return fmt.Errorf("%s: %s: %w", what, key, err)
	}
	return nil
}

// checkIDs checks the uid and gid a user spec sets, and the supplementary
// groups it names by number.
func (s UserSpec) checkIDs() error {
	what := "user " + s.Name
	if err := checkSpecID(what, "uid", s.UID); err != nil {
		return err
	}
	if err := checkSpecID(what, "gid", s.GID); err != nil {
		return err
	}
	for _, g := range s.Groups {
		if strings.Trim(g, "0123456789") == "" {
			if err := checkSpecID(what, "groups", g); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidName checks a user or group name against what the shadow tools and
// the account files accept: not empty, at most 32 bytes, not only digits,
// not starting with '-', and no ':', ',', '/', white space or control
// characters.
func ValidName(name string) error {
	bad := func(why string) error { return fmt.Errorf("invalid user or group name %q: %s", name, why) }
	switch {
	case name == "":
		return bad("it is empty")
	case len(name) > 32:
		return bad("it is longer than 32 bytes")
	case name == "." || name == "..":
		return bad("it is a dot name")
	case name[0] == '-' || name[0] == '+' || name[0] == '~':
		return bad("it starts with " + name[:1])
	}
	if strings.Trim(name, "0123456789") == "" {
		// Any number of digits: strconv.ParseUint let more than 20 through.
		return bad("it is only digits, which reads as an id")
	}
	for _, c := range name {
		if c == ':' || c == ',' || c == '/' || c <= ' ' || c == 0x7f {
			return bad(fmt.Sprintf("it holds %q", c))
		}
	}
	return nil
}

// usable checks that the root holds the account files the tools edit.
func (a *Accounts) usable() error {
	if _, err := os.Stat(a.file("passwd")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("the root %s has no /etc/passwd: it holds no system whose users cairn can manage", a.root)
		}
		return err
	}
	return nil
}

// run runs a shadow tool, with --root when the root is not /, and returns
// its output in the error if it fails. The tool runs in a process group of
// its own, like every program cairn runs for an op, so that a terminal's
// Ctrl-C never interrupts it half way through the account files (Apt.run).
func (a *Accounts) run(tool string, args ...string) error {
	if a.root != "/" {
		args = append([]string{"--root", a.root}, args...)
	}
	cmd := exec.Command(tool, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			return fmt.Errorf("%s: %w", tool, err)
		}
		return fmt.Errorf("%s: %w: %s", tool, err, msg)
	}
	return nil
}

// findLine returns the line of file whose first field is name, without its
// newline, or "" when there is none (or no such file).
func findLine(file, name string) (string, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	prefix := name + ":"
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSuffix(line, "\n"), nil
		}
	}
	return "", nil
}

// setLine makes the line of ROOT/etc/db for name equal to line ("" removes
// it): the file is rewritten atomically (a temporary file beside it with
// its mode and owner, fsync, rename, fsync of /etc) only if it changes. The
// caller holds the lock.
func (a *Accounts) setLine(db, name, line string) error {
	file := a.file(db)
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && line == "" {
			return nil
		}
		return fmt.Errorf("%s %s: %w", db, name, err)
	}
	var out bytes.Buffer
	found := false
	prefix := name + ":"
	for l := range strings.Lines(string(data)) {
		if strings.HasPrefix(l, prefix) && !found {
			found = true
			if line != "" {
				out.WriteString(line + "\n")
			}
			continue
		}
		out.WriteString(l)
	}
	if !found && line != "" {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		out.WriteString(line + "\n")
	}
	if bytes.Equal(out.Bytes(), data) {
		return nil
	}
	if err := writeAtomic(file, out.Bytes()); err != nil {
		return fmt.Errorf("%s %s: %w", db, name, err)
	}
	return nil
}

// writeAtomic replaces file with data, keeping its mode and owner.
func writeAtomic(file string, data []byte) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	sys := st.Sys().(*syscall.Stat_t)
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".cairn-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chown(int(sys.Uid), int(sys.Gid))
	}
	if err == nil {
		err = tmp.Chmod(st.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	dir, err := os.Open(filepath.Dir(file))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// withLock runs fn holding the lock of the account files that the shadow
// tools take (lckpwdf(3): a write lock on /etc/.pwd.lock), waiting up to
// 15 seconds for it as they do.
func (a *Accounts) withLock(fn func() error) error {
	name := a.file(".pwd.lock")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock the account files: %w", err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) || time.Now().After(deadline) {
			return fmt.Errorf("lock the account files (%s): %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fn()
}

// field returns field i of a colon-separated line, or "".
func field(line string, i int) string {
	f := strings.Split(line, ":")
	if i < len(f) {
		return f[i]
	}
	return ""
}

// withField returns line with field i replaced by v.
func withField(line string, i int, v string) string {
	f := strings.Split(line, ":")
	if i >= len(f) {
		return line
	}
	f[i] = v
	return strings.Join(f, ":")
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// sameSet reports whether two lists of names hold the same names.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
