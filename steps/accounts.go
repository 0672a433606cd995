package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// Accounts is what steps need of the shadow tools (debian implements it):
// look up, create, change and delete users and groups beneath the root.
// Lookups return nil, nil for an entry that does not exist.
type Accounts interface {
	User(name string) (*User, error)
	Group(name string) (*Group, error)
	AddUser(s UserSpec) error
	// ModifyUser brings an existing user's given attributes to s.
	ModifyUser(s UserSpec) error
	// DeleteUser deletes a user, and its home directory if removeHome.
	DeleteUser(name string, removeHome bool) error
	// RestoreUser brings a user back to exactly u, the shadow line byte for
	// byte, creating it (without a home) if it is gone.
	RestoreUser(u User) error
	AddGroup(s GroupSpec) error
	// ModifyGroup sets an existing group's gid to s.GID.
	ModifyGroup(s GroupSpec) error
	DeleteGroup(name string) error
	// RestoreGroup brings a group back to g (its member list excepted: the
	// users' own restores set it), creating it if it is gone.
	RestoreGroup(g Group) error
}

// User is one user's full entry (the fields match debian.User, so that the
// command line converts one into the other).
type User struct {
	Name   string
	UID    int
	GID    int
	Gecos  string
	Home   string
	Shell  string
	Groups []string // supplementary groups, sorted
	Passwd string   // the /etc/passwd line
	Shadow string   // the /etc/shadow line, "" if none
}

// Group is one group's full entry (the fields match debian.Group).
type Group struct {
	Name    string
	GID     int
	Members []string
	Line    string // the /etc/group line
	GShadow string // the /etc/gshadow line, "" if none
}

// UserSpec is what USERADD asks of a user; "" and nil leave an attribute
// as it is (the fields match debian.UserSpec).
type UserSpec struct {
	Name   string
	UID    string
	GID    string
	Home   string
	Shell  string
	Groups []string
	System bool
}

// GroupSpec is what GROUPADD asks of a group (the fields match
// debian.GroupSpec).
type GroupSpec struct {
	Name   string
	GID    string
	System bool
}

// accounts returns the accounts driver, or an error naming the step when
// this host has none.
func accounts(env *Env, s *journal.Step) (Accounts, error) {
	if env.Accounts == nil {
		return nil, fmt.Errorf("%s %s: no driver for users and groups on this host", s.Op, s.Object())
	}
	return env.Accounts, nil
}

// userRecord is the user family's own record in Image.Data.
type userRecord struct {
	// User is the full entry of a user that existed.
	User *User `json:"user,omitempty"`
	// For a user that did not exist: its home as the step gives it, and
	// whether the forward op makes that directory (it did not exist and the
	// user is no system account).
	Home        string `json:"home,omitempty"`
	CreatesHome bool   `json:"creates_home,omitempty"`
	// NameGroup is the group of the user's name, if one existed: userdel
	// deletes it along with the user (USERGROUPS_ENAB), and a user that
	// existed cannot come back without its group.
	NameGroup *Group `json:"name_group,omitempty"`
}

// userFamily is the Imager of USERADD (identity user:NAME): it captures
// the user's full entry, or its absence and what its creation would make.
type userFamily struct{}

// Capture records the user as it is now.
func (userFamily) Capture(_ context.Context, env *Env, s *journal.Step) (Image, error) {
	acc, err := accounts(env, s)
	if err != nil {
		return Image{}, err
	}
	name := s.Object()
	u, err := acc.User(name)
	if err != nil {
		return Image{}, err
	}
	var rec userRecord
	img := Image{}
	if rec.NameGroup, err = acc.Group(name); err != nil {
		return Image{}, err
	}
	if u != nil {
		rec.User = u
	} else {
		img.Absent = true
		rec.Home = s.Get("home")
		if rec.Home == "" {
			rec.Home = path.Join("/home", name)
		}
		st, err := lstatPath(env, rec.Home)
		if err != nil {
			return Image{}, err
		}
		rec.CreatesHome = !st.exists && s.Get("system") != "true"
	}
	if img.Data, err = recordData("the entry of user "+name, rec); err != nil {
		return Image{}, err
	}
	return img, nil
}

// Restore brings the user back to img: a user cairn created is deleted
// (its home only if cairn made it, and its user group unless one of that
// name was there before); a user that existed gets every field back.
func (userFamily) Restore(_ context.Context, env *Env, s *journal.Step, img Image) error {
	acc, err := accounts(env, s)
	if err != nil {
		return err
	}
	defer env.InvalidateIDs()
	var rec userRecord
	if len(img.Data) > 0 {
		if err := json.Unmarshal(img.Data, &rec); err != nil {
			return fmt.Errorf("image of user %s: %w", s.Object(), err)
		}
	}
	name := s.Object()
	if !img.Absent {
		if rec.User == nil {
			return fmt.Errorf("image of user %s holds no entry", name)
		}
		if rec.NameGroup != nil { // deleted along with the user?
			if g, err := acc.Group(name); err != nil {
				return err
			} else if g == nil {
				if err := acc.RestoreGroup(*rec.NameGroup); err != nil {
					return err
				}
			}
		}
		return acc.RestoreUser(*rec.User)
	}
	cur, err := acc.User(name)
	if err != nil {
		return err
	}
	if cur != nil {
		removeHome := rec.CreatesHome && cur.Home == rec.Home
		if rec.CreatesHome && cur.Home != rec.Home {
			env.logger().Warn("home directory left in place: the user's home changed since cairn created it", "user", name, "home", cur.Home)
		}
		if err := acc.DeleteUser(name, removeHome); err != nil {
			return err
		}
	}
	g, err := acc.Group(name)
	if err != nil {
		return err
	}
	switch {
	case rec.NameGroup != nil:
		// userdel deletes a user's group of its name (USERGROUPS_ENAB).
		return acc.RestoreGroup(*rec.NameGroup)
	case g != nil && g.GID == groupOfUser(cur) && len(g.Members) == 0:
		return acc.DeleteGroup(name)
	}
	return nil
}

func groupOfUser(u *User) int {
	if u == nil {
		return -1
	}
	return u.GID
}

// groupRecord is the group family's own record in Image.Data.
type groupRecord struct {
	Group *Group `json:"group,omitempty"`
}

// groupFamily is the Imager of GROUPADD (identity group:NAME): it captures
// the group's /etc/group and /etc/gshadow entries, or its absence.
type groupFamily struct{}

// Capture records the group as it is now.
func (groupFamily) Capture(_ context.Context, env *Env, s *journal.Step) (Image, error) {
	acc, err := accounts(env, s)
	if err != nil {
		return Image{}, err
	}
	g, err := acc.Group(s.Object())
	if err != nil {
		return Image{}, err
	}
	if g == nil {
		return Image{Absent: true}, nil
	}
	data, err := recordData("the entry of group "+s.Object(), groupRecord{Group: g})
	if err != nil {
		return Image{}, err
	}
	return Image{Data: data}, nil
}

// Restore deletes a group cairn created, or brings back the gid and
// entries of one that existed.
func (groupFamily) Restore(_ context.Context, env *Env, s *journal.Step, img Image) error {
	acc, err := accounts(env, s)
	if err != nil {
		return err
	}
	defer env.InvalidateIDs()
	if img.Absent {
		g, err := acc.Group(s.Object())
		if err != nil || g == nil {
			return err
		}
		return acc.DeleteGroup(s.Object())
	}
	var rec groupRecord
	if err := json.Unmarshal(img.Data, &rec); err != nil {
		return fmt.Errorf("image of group %s: %w", s.Object(), err)
	}
	if rec.Group == nil {
		return fmt.Errorf("image of group %s holds no entry", s.Object())
	}
	return acc.RestoreGroup(*rec.Group)
}

// userSpec reads a USERADD step.
func userSpec(s *journal.Step) UserSpec {
	spec := UserSpec{
		Name: s.Object(), UID: s.Get("uid"), GID: s.Get("gid"),
		Home: s.Get("home"), Shell: s.Get("shell"), System: s.Get("system") == "true",
	}
	if g, ok := s.Lookup("groups"); ok {
		spec.Groups = strings.Split(g, ",")
	}
	return spec
}

// describeUser says how u differs from spec, or "".
func describeUser(u *User, spec UserSpec) string {
	var d []string
	diff := func(what, have, want string) {
		if want != "" && have != want {
			d = append(d, fmt.Sprintf("%s %s, want %s", what, have, want))
		}
	}
	diff("uid", strconv.Itoa(u.UID), spec.UID)
	diff("gid", strconv.Itoa(u.GID), spec.GID)
	diff("home", u.Home, spec.Home)
	diff("shell", u.Shell, spec.Shell)
	if spec.Groups != nil {
		want := slices.Clone(spec.Groups)
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(u.Groups, want) {
			have := strings.Join(u.Groups, ",")
			if have == "" {
				have = "(none)"
			}
			d = append(d, fmt.Sprintf("groups %s, want %s", have, strings.Join(want, ",")))
		}
	}
	return strings.Join(d, "; ")
}
