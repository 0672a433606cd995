package promote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/agent/mirror"
)

// ErrLockState is wrapped by the error of LockGroup for a group that is
// locked already, and of UnlockGroup for one that is not.
var ErrLockState = errors.New("lock state")

// Lock is a group's lock, as its file .cairn/locks/GROUP on the control
// branch holds it.
type Lock struct {
	// Group is the group locked (the file's name).
	Group string `json:"group"`
	// Reason is why, one line.
	Reason string `json:"reason"`
	// By is who locked it: git's committer identity ("Name <email>").
	By string `json:"by"`
	// Since is when; the zero time when the file does not say.
	Since time.Time `json:"since"`
}

// ParseLock reads a lock file's lines "reason: TEXT", "by: WHO" and
// "since: TIME" (RFC 3339). Other lines are ignored; a file that says
// nothing is still a lock. Control characters in the values (a file
// edited by hand) become U+FFFD, so that printing a lock cannot drive a
// terminal.
func ParseLock(group string, data []byte) Lock {
	l := Lock{Group: group}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = printable(strings.TrimSpace(v))
		switch strings.TrimSpace(k) {
		case "reason":
			l.Reason = v
		case "by":
			l.By = v
		case "since":
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				l.Since = t
			}
		}
	}
	return l
}

// Text is the lock file's content.
func (l Lock) Text() []byte {
	return fmt.Appendf(nil, "reason: %s\nby: %s\nsince: %s\n", l.Reason, l.By, l.Since.UTC().Format(time.RFC3339))
}

// String says who locked the group, when and why, in one line.
func (l Lock) String() string {
	s := "group " + l.Group + " is locked"
	if l.By != "" {
		s += " by " + l.By
	}
	if !l.Since.IsZero() {
		s += " since " + l.Since.UTC().Format(time.RFC3339)
	}
	if l.Reason != "" {
		s += ": " + l.Reason
	}
	return s
}

// LockOptions name the lock to add or remove.
type LockOptions struct {
	Conn
	// Group is the group to lock or unlock: a group of the hosts block at
	// the control branch's tip.
	Group string
	// Reason is why (LockGroup): required, one line.
	Reason string
	// SignKey, when not "", sets git's user.signingkey for the commit
	// (a key file's relative path is from the current directory); when it
	// is an ssh key file, gpg.format=ssh too. "" signs as the operator's
	// git configuration says.
	SignKey string
	// Now is the lock's time; nil means time.Now.
	Now func() time.Time
	// DryRun makes the signed commit but pushes nothing.
	DryRun bool
}

// LockResult says what LockGroup or UnlockGroup did.
type LockResult struct {
	// Lock is the lock added, or the one removed.
	Lock Lock `json:"lock"`
	// Locked is whether the group is locked now (after a dry run: would
	// be).
	Locked bool `json:"locked"`
	// Branch is the control branch, Commit the signed commit made on it,
	// Parent the tip it was made on.
	Branch string `json:"branch"`
	Commit string `json:"commit"`
	Parent string `json:"parent"`
	// Pushed is false for a dry run.
	Pushed bool `json:"pushed"`
}

// LockGroup locks a group: it adds .cairn/locks/GROUP to the control
// branch in a commit signed by git, and pushes it.
func LockGroup(ctx context.Context, o LockOptions) (*LockResult, error) {
	reason := strings.TrimSpace(o.Reason)
	switch {
	case reason == "":
		return nil, badInput("lock %s: a reason is required (--reason)", o.Group)
	case strings.ContainsAny(reason, "\r\n"):
		return nil, badInput("lock %s: the reason must be one line", o.Group)
	case strings.ContainsFunc(reason, unprintable):
		return nil, badInput("lock %s: the reason %q has control characters", o.Group, reason)
	}
	o.Reason = reason
	return changeLock(ctx, o, true)
}

// UnlockGroup unlocks a group: it removes .cairn/locks/GROUP from the
// control branch in a commit signed by git, and pushes it. A lock whose
// group the hosts block no longer names can still be removed.
func UnlockGroup(ctx context.Context, o LockOptions) (*LockResult, error) {
	return changeLock(ctx, o, false)
}

func changeLock(ctx context.Context, o LockOptions, lock bool) (*LockResult, error) {
	if err := lockName(o.Group); err != nil {
		return nil, err
	}
	r, err := openRepo(ctx, &o.Conn)
	if err != nil {
		return nil, err
	}
	defer r.close()
	for attempt := 0; ; attempt++ {
		res, err := r.changeLockOnce(ctx, &o, lock)
		if attempt == 0 && (errors.Is(err, mirror.ErrStale) || errors.Is(err, mirror.ErrRejected)) {
			o.log().Info("the control branch moved while the lock was pushed; fetching it again", "err", err)
			if err := r.refresh(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return res, err
	}
}

func (r *repo) changeLockOnce(ctx context.Context, o *LockOptions, lock bool) (*LockResult, error) {
	old, locked := r.locks[o.Group]
	if lock || !locked { // a lock whose group is gone can still go
		if _, err := r.group("lock", o.Group); err != nil {
			return nil, err
		}
	}
	control := r.conn.control()
	switch {
	case lock && locked:
		return nil, fmt.Errorf("%s: %w", old, ErrLockState)
	case !lock && !locked:
		return nil, fmt.Errorf("group %s is not locked (no %s/%s at the tip of %s): %w", o.Group, locksDir, o.Group, control, ErrLockState)
	}
	parent, err := r.m.Commit(r.control)
	if err != nil {
		return nil, err
	}
	res := &LockResult{Branch: control, Parent: r.control.String(), Locked: lock}
	blob := plumbing.ZeroHash
	var msg string
	if lock {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		by, err := gitIdent(ctx, r.m.Dir(), o.SignKey)
		if err != nil {
			return nil, err
		}
		res.Lock = Lock{Group: o.Group, Reason: o.Reason, By: by, Since: now().UTC().Truncate(time.Second)}
		if blob, err = r.putBlob(res.Lock.Text()); err != nil {
			return nil, err
		}
		msg = fmt.Sprintf("cairn lock %s: %s\n", o.Group, o.Reason)
	} else {
		res.Lock = old
		msg = fmt.Sprintf("cairn unlock %s\n\nIt was locked by %s since %s: %s\n", o.Group, old.By, old.Since.UTC().Format(time.RFC3339), old.Reason)
	}
	tree, err := r.setPath(parent.TreeHash, locksDir+"/"+o.Group, blob)
	if err == nil && tree.IsZero() {
		tree, err = r.emptyTree()
	}
	if err != nil {
		return nil, fmt.Errorf("writing the tree: %w", err)
	}
	commit, err := signedCommit(ctx, r.m.Dir(), o.SignKey, tree, r.control, msg)
	if err != nil {
		return nil, err
	}
	res.Commit = commit.String()
	if o.DryRun {
		return res, nil
	}
	if _, err := r.m.Push(ctx, mirror.RefUpdate{Name: plumbing.NewBranchReferenceName(control), Old: r.control, New: commit}); err != nil {
		return nil, err
	}
	res.Pushed = true
	return res, nil
}

// lockName refuses a group whose name is not one file name: its lock,
// .cairn/locks/NAME, would be a directory that promote does not read
// ("a/b"), or a tree entry that git refuses ("..").
func lockName(group string) error {
	switch {
	case group == "":
		return badInput("no group given")
	case group == "." || group == ".." || strings.ContainsAny(group, "/\\") || strings.ContainsFunc(group, unprintable):
		return badInput("group %q cannot be locked: its lock is the file %s/NAME, and the name is not one file name; rename the group", group, locksDir)
	case len(group) > 255:
		return badInput("group %.20q... cannot be locked: its lock is the file %s/NAME, and the name is longer than 255 bytes; rename the group", group, locksDir)
	}
	return nil
}

// unprintable reports whether r is a control or format character (an
// escape, a NUL, a bidirectional override), which a lock's text must not
// carry to an operator's terminal.
func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// printable replaces what unprintable refuses with U+FFFD, for a lock
// file edited by hand.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unprintable(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

// signConfig is the git configuration that --sign-key sets. An ssh key
// file given by a relative path is made absolute: git runs in the
// temporary mirror, and hands the path to ssh-keygen as it is. Anything
// else (an OpenPGP key id) is git's as it is.
func signConfig(signKey string) []string {
	if signKey == "" {
		return nil
	}
	if !isSSHKey(signKey) {
		return []string{"-c", "user.signingkey=" + signKey}
	}
	if abs, err := filepath.Abs(signKey); err == nil {
		signKey = abs
	}
	return []string{"-c", "user.signingkey=" + signKey, "-c", "gpg.format=ssh"}
}

// isSSHKey reports whether the file p holds an ssh key, private or public.
func isSSHKey(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	s := strings.TrimSpace(string(b))
	for _, prefix := range []string{"-----BEGIN OPENSSH PRIVATE KEY-----", "ssh-", "ecdsa-sha2-", "sk-"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// gitEnv is the environment git runs with on the mirror: the operator's,
// without GIT_ variables that would point it elsewhere, and GIT_DIR.
func gitEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_DIR="+dir)
}

// git runs git on the mirror at dir with the operator's configuration.
func git(ctx context.Context, dir string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = gitEnv(dir)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[len(configArgs(args))], msg)
	}
	return strings.TrimSpace(string(out)), nil
}

// configArgs returns the leading "-c NAME=VALUE" pairs of args.
func configArgs(args []string) []string {
	n := 0
	for n+1 < len(args) && args[n] == "-c" {
		n += 2
	}
	return args[:n]
}

// gitIdent is the committer git would record: "Name <email>".
func gitIdent(ctx context.Context, dir, signKey string) (string, error) {
	out, err := git(ctx, dir, nil, append(signConfig(signKey), "var", "GIT_COMMITTER_IDENT")...)
	if err != nil {
		return "", fmt.Errorf("who is committing (set git's user.name and user.email): %w", err)
	}
	// "Name <email> 1700000000 +0000"
	if i := strings.LastIndex(out, ">"); i >= 0 {
		out = out[:i+1]
	}
	return out, nil
}

// signedCommit makes a commit of tree on parent with git commit-tree -S,
// which signs as the operator's git configuration (and signKey) says.
func signedCommit(ctx context.Context, dir, signKey string, tree, parent plumbing.Hash, msg string) (plumbing.Hash, error) {
	args := append(signConfig(signKey), "commit-tree", "-S", tree.String(), "-p", parent.String(), "-F", "-")
	out, err := git(ctx, dir, []byte(msg), args...)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("making the signed commit (git signs with user.signingkey, or --sign-key): %w", err)
	}
	h := plumbing.NewHash(out)
	if h.IsZero() || h.String() != out {
		return plumbing.ZeroHash, fmt.Errorf("git commit-tree printed %q, not a hash", out)
	}
	return h, nil
}

// currentUser is user@host, for the evidence of a promotion.
func currentUser() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return name + "@" + host
}
