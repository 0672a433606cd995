package promote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/cairn-cm/cairn/agent/fleet"
	"github.com/cairn-cm/cairn/agent/mirror"
)

// NotesRef is the notes reference that holds the evidence of promotions:
// `git notes --ref cairn-promotions show COMMIT`.
const NotesRef = "refs/notes/cairn-promotions"

// GateFunc decides whether the --from group ran a commit healthily for the
// soak window: fleet.Gate against Prometheus, for the command line.
type GateFunc func(ctx context.Context, o fleet.GateOptions) (*fleet.Verdict, error)

// Options name a promotion.
type Options struct {
	Conn
	// From and To are the groups: To's branch is moved to From's tip.
	From, To string
	// Soak is how long From's hosts must have run the commit healthily;
	// MinHosts how many hosts From must have at least.
	Soak     time.Duration
	MinHosts int
	// Gate checks From's hosts; required.
	Gate GateFunc
	// Prometheus is the gate's server, recorded in the evidence.
	Prometheus string
	// DryRun does everything but the push.
	DryRun bool
	// Now is the end of the soak window and the time of the evidence;
	// nil means time.Now.
	Now func() time.Time
	// By is who promotes, for the evidence; "" means user@host of this
	// process.
	By string
}

// Status values of a Result.
const (
	// StatusPromoted: --to's branch was moved to --from's tip.
	StatusPromoted = "promoted"
	// StatusDryRun: every check passed; a run without --dry-run would
	// have pushed.
	StatusDryRun = "dry-run"
	// StatusUpToDate: --to's branch is at --from's tip already.
	StatusUpToDate = "up-to-date"
	// StatusLocked: a group of --to's branch is locked.
	StatusLocked = "locked"
	// StatusRefused: the gate's conditions were not met.
	StatusRefused = "refused"
)

// Side is one end of a promotion: a group, the branch it follows, that
// branch's tip, and every group that follows the branch.
type Side struct {
	Group  string   `json:"group"`
	Branch string   `json:"branch"`
	Tip    string   `json:"tip"`
	Groups []string `json:"groups"`
}

// Window is a soak window.
type Window struct {
	From time.Time     `json:"from"`
	To   time.Time     `json:"to"`
	Soak time.Duration `json:"soak_ns"`
}

// Host is one host of the --from group as the gate saw it.
type Host struct {
	Host     string   `json:"host"`
	Instance string   `json:"instance"`
	OK       bool     `json:"ok"`
	Reasons  []string `json:"reasons,omitempty"`
}

// Result says what Promote did and why: everything the command line
// prints, as text or JSON.
type Result struct {
	// Status is one of the Status constants.
	Status string `json:"status"`
	// Promoted is true when --to's branch was moved (Status "promoted").
	Promoted bool `json:"promoted"`
	// OK is true when the command succeeded: promoted, a dry run that
	// would have, or nothing to do.
	OK bool `json:"ok"`
	// Commit is the commit promoted (--from's tip).
	Commit string `json:"commit"`
	// From and To are the two ends; To.Tip is the tip before the push.
	From Side `json:"from"`
	To   Side `json:"to"`
	// Control is the control branch and ControlTip its tip, where the
	// hosts block and the locks were read.
	Control    string `json:"control"`
	ControlTip string `json:"control_tip"`
	// Reasons say why nothing was promoted; empty otherwise.
	Reasons []string `json:"reasons,omitempty"`
	// Locks are the locks of --to's branch's groups.
	Locks []Lock `json:"locks,omitempty"`
	// Verdict is the gate's answer; nil when the gate was not asked. Its
	// window and hosts are in Window and Hosts too, for JSON.
	Verdict *fleet.Verdict `json:"-"`
	// Window is the soak window the gate looked at (zero when it was not
	// asked), and Hosts the --from group's hosts with what held.
	Window *Window `json:"window,omitempty"`
	Hosts  []Host  `json:"hosts,omitempty"`
	// Note is the evidence written (or, for a dry run, that would be) on
	// Commit under NotesRef; the whole note, with any earlier evidence.
	Note string `json:"note,omitempty"`
	// Atomic is whether the branch and the note were pushed atomically.
	Atomic bool `json:"atomic"`
	// Time is when the promotion was decided.
	Time time.Time `json:"time"`
}

// Promote moves the --to group's branch to the --from group's tip when
// nothing forbids it; see the package documentation for the order of the
// checks. A refusal (locked, or the gate's conditions not met) is a Result
// with OK false and no error; bad input is an error wrapping ErrBadInput;
// anything else that fails, a push that loses a race among them, is an
// error.
func Promote(ctx context.Context, o Options) (*Result, error) {
	if o.Gate == nil {
		return nil, errors.New("promote: no gate")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	r, err := openRepo(ctx, &o.Conn)
	if err != nil {
		return nil, err
	}
	defer r.close()
	from, err := r.group("--from", o.From)
	if err != nil {
		return nil, err
	}
	to, err := r.group("--to", o.To)
	if err != nil {
		return nil, err
	}
	control := r.conn.control()
	res := &Result{
		Control: control, ControlTip: r.control.String(), Time: now().UTC(),
		From: Side{Group: from.Name, Branch: r.branchOf(from)},
		To:   Side{Group: to.Name, Branch: r.branchOf(to)},
	}
	res.From.Groups = r.groupsOn(res.From.Branch)
	res.To.Groups = r.groupsOn(res.To.Branch)
	if res.From.Branch == res.To.Branch {
		return nil, badInput("--from %s and --to %s both follow branch %s: there is nothing to move between them (groups on %s: %s)",
			from.Name, to.Name, res.From.Branch, res.From.Branch, strings.Join(res.From.Groups, ", "))
	}
	tips, err := r.m.Fetch(ctx, res.From.Branch, res.To.Branch)
	if err != nil {
		if errors.Is(err, mirror.ErrNoBranch) {
			return nil, &inputError{fmt.Errorf("the branches of --from %s (%s) and --to %s (%s), which the hosts block names: %w",
				from.Name, res.From.Branch, to.Name, res.To.Branch, err)}
		}
		return nil, err
	}
	notes, err := r.m.FetchRefs(ctx, NotesRef)
	if err != nil {
		return nil, err
	}
	fromTip, toTip := tips[res.From.Branch], tips[res.To.Branch]
	res.Commit, res.From.Tip, res.To.Tip = fromTip.String(), fromTip.String(), toTip.String()
	if fromTip == toTip {
		res.Status, res.OK = StatusUpToDate, true
		res.Reasons = []string{fmt.Sprintf("branch %s is at %s already, as %s is", res.To.Branch, short(toTip), res.From.Branch)}
		return res, nil
	}
	// A lock first: a lock commit on a control branch that --to follows
	// also makes --to's branch diverge from --from's.
	for _, g := range res.To.Groups {
		if l, ok := r.locks[g]; ok {
			res.Locks = append(res.Locks, l)
			res.Reasons = append(res.Reasons, l.String())
		}
	}
	if len(res.Locks) > 0 {
		res.Status = StatusLocked
		return res, nil
	}
	ok, err := r.m.IsAncestor(toTip, fromTip)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, r.notAncestor(res, fromTip, toTip)
	}
	v, err := o.Gate(ctx, fleet.GateOptions{Group: from.Name, Commit: fromTip.String(), Soak: o.Soak, MinHosts: o.MinHosts, Now: res.Time})
	if err != nil {
		return nil, fmt.Errorf("the gate of group %s at %s: %w", from.Name, short(fromTip), err)
	}
	res.Verdict = v
	res.Window = &Window{From: v.From.UTC(), To: v.To.UTC(), Soak: o.Soak}
	for _, h := range v.Hosts {
		res.Hosts = append(res.Hosts, Host{Host: h.Host, Instance: h.Instance, OK: h.OK, Reasons: h.Reasons})
	}
	if !v.OK {
		res.Status = StatusRefused
		res.Reasons = append(res.Reasons, v.Reasons...)
		for _, h := range v.Hosts {
			for _, why := range h.Reasons {
				res.Reasons = append(res.Reasons, fmt.Sprintf("%s (%s): %s", h.Host, h.Instance, why))
			}
		}
		if len(res.Reasons) == 0 {
			res.Reasons = []string{"the gate said no, and gave no reason"}
		}
		return res, nil
	}
	by := o.By
	if by == "" {
		by = currentUser()
	}
	oldNotes, hasNotes := notes[NotesRef]
	noteCommit, note, err := r.addNote(fromTip, oldNotes, hasNotes, evidence(res, o, by), by, res.Time)
	if err != nil {
		return nil, fmt.Errorf("writing the note: %w", err)
	}
	res.Note = note
	if o.DryRun {
		res.Status, res.OK = StatusDryRun, true
		return res, nil
	}
	notesOld := plumbing.ZeroHash
	if hasNotes {
		notesOld = oldNotes
	}
	atomic, err := r.m.Push(ctx,
		mirror.RefUpdate{Name: plumbing.NewBranchReferenceName(res.To.Branch), Old: toTip, New: fromTip},
		mirror.RefUpdate{Name: NotesRef, Old: notesOld, New: noteCommit})
	if err != nil {
		if errors.Is(err, mirror.ErrStale) || errors.Is(err, mirror.ErrRejected) {
			return nil, fmt.Errorf("branch %s or the notes moved on the server while promoting (another push won the race); nothing was changed by this one, run it again: %w", res.To.Branch, err)
		}
		return nil, err
	}
	res.Status, res.OK, res.Promoted, res.Atomic = StatusPromoted, true, true, atomic
	return res, nil
}

// notAncestor is the error for a --to branch that has commits --from
// lacks: it lists them and says how to fix it.
func (r *repo) notAncestor(res *Result, fromTip, toTip plumbing.Hash) error {
	const max = 10
	only, n, err := r.onlyIn(toTip, fromTip, max)
	if err != nil {
		return err
	}
	var b strings.Builder
	groups := "group "
	if len(res.To.Groups) > 1 {
		groups = "groups "
	}
	fmt.Fprintf(&b, "branch %s (%s%s) is not an ancestor of branch %s (group %s): promoting would drop %d commit(s) that only %s has:",
		res.To.Branch, groups, strings.Join(res.To.Groups, ", "), res.From.Branch, res.From.Group, n, res.To.Branch)
	for _, c := range only {
		fmt.Fprintf(&b, "\n  %s %s", short(c.Hash), subject(c))
	}
	if n > len(only) {
		fmt.Fprintf(&b, "\n  ... and %d more", n-len(only))
	}
	fmt.Fprintf(&b, "\nmerge %s into %s (git switch %s && git merge origin/%s && git push), let group %s run the merge, then promote again",
		res.To.Branch, res.From.Branch, res.From.Branch, res.To.Branch, res.From.Group)
	return badInput("%s", b.String())
}

// evidence is the note of one promotion.
func evidence(res *Result, o Options, by string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cairn promote %s -> %s\n", res.From.Group, res.To.Group)
	fmt.Fprintf(&b, "commit: %s\n", res.Commit)
	fmt.Fprintf(&b, "from: group %s, branch %s\n", res.From.Group, res.From.Branch)
	fmt.Fprintf(&b, "to: group %s, branch %s (groups on it: %s), was %s\n", res.To.Group, res.To.Branch, strings.Join(res.To.Groups, ", "), res.To.Tip)
	if v := res.Verdict; v != nil {
		fmt.Fprintf(&b, "soak: %s from %s to %s\n", o.Soak, v.From.UTC().Format(time.RFC3339), v.To.UTC().Format(time.RFC3339))
		fmt.Fprintf(&b, "hosts: %d (min %d)\n", len(v.Hosts), max(o.MinHosts, 1))
		for _, h := range v.Hosts {
			fmt.Fprintf(&b, "  %s %s\n", h.Host, h.Instance)
		}
	}
	if o.Prometheus != "" {
		fmt.Fprintf(&b, "prometheus: %s\n", mirror.Redact(o.Prometheus))
	}
	fmt.Fprintf(&b, "when: %s\n", res.Time.Format(time.RFC3339))
	fmt.Fprintf(&b, "by: %s\n", by)
	return b.String()
}

// addNote writes a notes commit whose tree holds text as the note of
// commit, after the note already there, if any. It returns the notes
// commit and the whole note.
func (r *repo) addNote(commit, oldNotes plumbing.Hash, hasNotes bool, text, by string, when time.Time) (plumbing.Hash, string, error) {
	st := r.m.Objects()
	root := plumbing.ZeroHash
	var parents []plumbing.Hash
	path := commit.String()
	note := text
	if hasNotes {
		c, err := object.GetCommit(st, oldNotes)
		if err != nil {
			return plumbing.ZeroHash, "", err
		}
		root, parents = c.TreeHash, []plumbing.Hash{oldNotes}
		p, old, found, err := r.findNote(root, commit.String(), "")
		if err != nil {
			return plumbing.ZeroHash, "", err
		}
		if found {
			path = p
			note = strings.TrimRight(old, "\n") + "\n\n" + text
		}
	}
	blob, err := r.putBlob([]byte(note))
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	if root.IsZero() {
		if root, err = r.emptyTree(); err != nil {
			return plumbing.ZeroHash, "", err
		}
	}
	tree, err := r.setPath(root, path, blob)
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	sig := object.Signature{Name: "cairn promote", Email: by, When: when}
	c := &object.Commit{Author: sig, Committer: sig, TreeHash: tree, ParentHashes: parents,
		Message: fmt.Sprintf("Notes added by 'cairn promote' for %s\n", commit)}
	o := st.NewEncodedObject()
	if err := c.Encode(o); err != nil {
		return plumbing.ZeroHash, "", err
	}
	h, err := st.SetEncodedObject(o)
	return h, note, err
}

// findNote looks for the note of hex in the notes tree at h, flat or
// under git's fan-out directories (two hex digits a level); prefix is the
// path of h.
func (r *repo) findNote(h plumbing.Hash, hex, prefix string) (path, text string, found bool, err error) {
	t, err := object.GetTree(r.m.Objects(), h)
	if err != nil {
		return "", "", false, err
	}
	for _, e := range t.Entries {
		switch {
		case e.Name == hex && e.Mode != filemode.Dir:
			b, err := object.GetBlob(r.m.Objects(), e.Hash)
			if err != nil {
				return "", "", false, err
			}
			rd, err := b.Reader()
			if err != nil {
				return "", "", false, err
			}
			data, err := io.ReadAll(rd)
			rd.Close()
			if err != nil {
				return "", "", false, err
			}
			return prefix + e.Name, string(data), true, nil
		case e.Mode == filemode.Dir && len(e.Name) == 2 && strings.HasPrefix(hex, e.Name):
			return r.findNote(e.Hash, hex[2:], prefix+e.Name+"/")
		}
	}
	return "", "", false, nil
}
