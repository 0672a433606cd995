package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ErrStale is wrapped by the error of [Mirror.Push] when a reference on the
// remote is not at the Old hash the update expects: someone pushed
// meanwhile. Fetch again and start over.
var ErrStale = errors.New("the remote's reference moved since it was fetched")

// ErrRejected is wrapped by the error of [Mirror.Push] when the remote
// refused an update (a hook, a lock it could not take, a reference that
// moved while the push ran).
var ErrRejected = errors.New("the remote refused the push")

// ErrNotFastForward is wrapped by the error of [Mirror.Push] when an update
// of a branch would not fast-forward it: a push never forces.
var ErrNotFastForward = errors.New("not a fast-forward")

// RefUpdate is one reference a push sets on the remote.
type RefUpdate struct {
	// Name is the full reference name (refs/heads/main,
	// refs/notes/cairn-promotions).
	Name plumbing.ReferenceName
	// Old is the hash the remote's reference must hold for the update to
	// happen; the zero hash means that the reference must not exist.
	Old plumbing.Hash
	// New is the hash to set: an object of the mirror.
	New plumbing.Hash
}

// FetchRefs fetches the named references (full names, such as
// refs/notes/cairn-promotions) over one connection and returns the tips of
// those the remote has; one it lacks is left out of the map, not an error.
func (m *Mirror) FetchRefs(ctx context.Context, names ...string) (map[string]plumbing.Hash, error) {
	for _, n := range names {
		if err := plumbing.ReferenceName(n).Validate(); err != nil || !strings.HasPrefix(n, "refs/") {
			return nil, fmt.Errorf("fetch %s: %q is not a full reference name", m.remote.shown, n)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tips := map[string]plumbing.Hash{}
	err := m.transfer(ctx, func(remote map[plumbing.ReferenceName]plumbing.Hash) (map[plumbing.ReferenceName]plumbing.Hash, error) {
		want := map[plumbing.ReferenceName]plumbing.Hash{}
		for _, n := range names {
			if h, ok := remote[plumbing.ReferenceName(n)]; ok {
				want[plumbing.ReferenceName(n)] = h
				tips[n] = h
			}
		}
		return want, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return tips, nil
}

// Objects returns the mirror's object store, to write the objects of a
// commit to push (a note, say) and to read any. Its use is not serialised
// with the Mirror's calls: use it only between them.
func (m *Mirror) Objects() storer.EncodedObjectStorer { return m.st }

// Push sets references on the remote, in one push: it sends the objects
// of the New hashes that the remote lacks, and the remote sets each
// reference only if it is still at Old, so a push that races another fails
// rather than overwrite it. It never forces: an update of a branch whose
// New does not descend from Old is refused before anything is sent (error
// wrapping ErrNotFastForward). A reference not at Old in the remote's
// advertisement fails the push, before anything is sent, with an error
// wrapping ErrStale; an update the remote refuses, with one wrapping
// ErrRejected.
//
// When the remote can (git receive-pack's "atomic" capability, over git://,
// http(s):// and ssh://), the updates are atomic: all or none. It says
// whether they were. A local path is written in this process, one
// reference after the other, each compared and set under git's lock file.
//
// After a push, the mirror's references are set to the New hashes.
func (m *Mirror) Push(ctx context.Context, updates ...RefUpdate) (atomic bool, err error) {
	if len(updates) == 0 {
		return false, fmt.Errorf("push %s: no reference to update", m.remote.shown)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() {
		if err != nil {
			err = &fetchError{msg: m.remote.redact(strings.TrimRight(fmt.Sprintf("push %s: %v", m.remote.shown, err), ": ")), err: err}
		}
	}()
	for _, u := range updates {
		if err := u.Name.Validate(); err != nil || !strings.HasPrefix(u.Name.String(), "refs/") {
			return false, fmt.Errorf("%q is not a full reference name", u.Name)
		}
		if u.New.IsZero() {
			return false, fmt.Errorf("%s: deleting a reference is not supported", u.Name)
		}
		if err := m.st.HasEncodedObject(u.New); err != nil {
			return false, fmt.Errorf("%s: %s is not in the mirror: %w", u.Name, u.New, err)
		}
		if u.Name.IsBranch() && !u.Old.IsZero() {
			ok, err := m.isAncestor(u.Old, u.New)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("%s: %s does not descend from %s: %w", u.Name.Short(), u.New, u.Old, ErrNotFastForward)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if m.remote.ep.Protocol == "file" {
		err = m.pushLocal(ctx, updates)
	} else {
		atomic, err = m.pushRemote(ctx, updates)
	}
	if err != nil {
		return false, err
	}
	want := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, u := range updates {
		want[u.Name] = u.New
	}
	if _, err := m.setRefs(want); err != nil {
		return atomic, err
	}
	return atomic, nil
}

// checkOld compares the remote's references with the updates' Old hashes.
func checkOld(updates []RefUpdate, remote func(plumbing.ReferenceName) (plumbing.Hash, bool)) error {
	for _, u := range updates {
		h, ok := remote(u.Name)
		switch {
		case !ok && !u.Old.IsZero():
			return fmt.Errorf("%s is gone from the remote (it was at %s): %w", u.Name, u.Old, ErrStale)
		case ok && h != u.Old:
			was := "absent"
			if !u.Old.IsZero() {
				was = "at " + u.Old.String()
			}
			return fmt.Errorf("%s is at %s on the remote, and was %s: %w", u.Name, h, was, ErrStale)
		}
	}
	return nil
}

// pushLocal copies the objects the repository at the local path lacks and
// sets its references, each under git's lock file and only if it is still
// at Old.
func (m *Mirror) pushLocal(ctx context.Context, updates []RefUpdate) error {
	st, err := loadLocal(m.remote.ep.Path)
	if err != nil {
		return err
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	refs, ok := st.(storer.ReferenceStorer)
	if !ok {
		return errors.New("the repository cannot store references")
	}
	if _, err := os.Stat(filepath.Join(m.remote.ep.Path, ".git")); err == nil {
		// A work tree: its checked-out branch is not moved under it, as
		// git's receive.denyCurrentBranch does not.
		if head, err := refs.Reference(plumbing.HEAD); err == nil && head.Type() == plumbing.SymbolicReference {
			for _, u := range updates {
				if u.Name == head.Target() {
					return fmt.Errorf("%s is checked out in the work tree %s: %w", u.Name.Short(), m.remote.ep.Path, ErrRejected)
				}
			}
		}
	}
	if err := checkOld(updates, func(n plumbing.ReferenceName) (plumbing.Hash, bool) {
		r, err := refs.Reference(n)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		return r.Hash(), true
	}); err != nil {
		return err
	}
	var news []plumbing.Hash
	for _, u := range updates {
		news = append(news, u.New)
	}
	objs, err := missingObjects(ctx, m.st, func(h plumbing.Hash) bool { return st.HasEncodedObject(h) == nil }, news)
	if err != nil {
		return err
	}
	for _, h := range objs {
		o, err := m.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return err
		}
		if _, err := st.SetEncodedObject(o); err != nil {
			return fmt.Errorf("writing object %s: %w", h, err)
		}
	}
	for _, u := range updates {
		var old *plumbing.Reference
		if !u.Old.IsZero() {
			old = plumbing.NewHashReference(u.Name, u.Old)
		}
		if err := refs.CheckAndSetReference(plumbing.NewHashReference(u.Name, u.New), old); err != nil {
			return fmt.Errorf("%s: %v: %w", u.Name, err, ErrRejected)
		}
	}
	return nil
}

// pushRemote runs one receive-pack session with the remote.
func (m *Mirror) pushRemote(ctx context.Context, updates []RefUpdate) (atomic bool, err error) {
	d := &dialer{idle: m.opts.Timeout}
	defer d.close()
	defer func() {
		if err != nil && d.timedOut.Load() && ctx.Err() == nil {
			err = fmt.Errorf("server silent for %s: %w", m.opts.Timeout, os.ErrDeadlineExceeded)
		}
	}()
	var sess receiver
	switch m.remote.ep.Protocol {
	case "http", "https":
		c, auth := d.httpClient(m.remote)
		s, err := c.NewReceivePackSession(m.remote.ep, auth)
		if err != nil {
			return false, err
		}
		sess = s
	case "git":
		s, err := d.openGit(ctx, m.remote, transport.ReceivePackServiceName)
		if err != nil {
			return false, err
		}
		sess = &streamReceiver{s}
	case "ssh":
		s, err := d.openSSH(ctx, m.remote, &m.opts, transport.ReceivePackServiceName)
		if err != nil {
			return false, err
		}
		sess = &streamReceiver{s}
	default:
		return false, fmt.Errorf("scheme %q: %w", m.remote.ep.Protocol, ErrUnsupportedURL)
	}
	defer func() {
		if cerr := sess.Close(); cerr != nil && err == nil && ctx.Err() == nil {
			err = cerr
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		ar, err = packp.NewAdvRefs(), nil
	}
	if err != nil {
		return false, err
	}
	if err := checkOld(updates, func(n plumbing.ReferenceName) (plumbing.Hash, bool) {
		h, ok := ar.References[n.String()]
		return h, ok
	}); err != nil {
		return false, err
	}
	objs, err := m.pushObjects(ctx, updates, ar)
	if err != nil {
		return false, err
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	if len(updates) > 1 && ar.Capabilities.Supports(capability.Atomic) {
		req.Capabilities.Set(capability.Atomic)
		atomic = true
	}
	for _, u := range updates {
		req.Commands = append(req.Commands, &packp.Command{Name: u.Name, Old: u.Old, New: u.New})
	}
	pr, pw := io.Pipe()
	go func() { // ends when the pack is written or the reader closed
		_, err := packfile.NewEncoder(pw, m.st, false).Encode(objs, 10)
		pw.CloseWithError(err)
	}()
	req.Packfile = pr
	defer pr.Close()
	report, err := sess.ReceivePack(ctx, req)
	if report != nil {
		if rerr := report.Error(); rerr != nil {
			return false, fmt.Errorf("%v: %w", rerr, ErrRejected)
		}
	}
	if err != nil {
		return false, err
	}
	if report == nil && req.Capabilities.Supports(capability.ReportStatus) {
		return false, errors.New("the remote sent no report of the push")
	}
	return atomic, nil
}

// pushObjects lists the objects to send: those reachable from the New
// hashes, down to the commits the remote advertises, and leaving out the
// trees and blobs of the advertised parents of the new commits (a commit
// that changes one file sends that file and the trees above it).
func (m *Mirror) pushObjects(ctx context.Context, updates []RefUpdate, ar *packp.AdvRefs) ([]plumbing.Hash, error) {
	has := map[plumbing.Hash]bool{}
	for _, h := range ar.References {
		has[h] = true
	}
	var news []plumbing.Hash
	for _, u := range updates {
		news = append(news, u.New)
		c, err := object.GetCommit(m.st, u.New)
		if err != nil {
			continue // not a commit: sent whole
		}
		for _, p := range c.ParentHashes {
			if !has[p] {
				continue
			}
			pc, err := object.GetCommit(m.st, p)
			if err != nil {
				continue
			}
			if err := m.treeObjects(pc.TreeHash, has); err != nil {
				return nil, err
			}
		}
	}
	return missingObjects(ctx, m.st, func(h plumbing.Hash) bool { return has[h] }, news)
}

// treeObjects adds the tree h and everything in it to set.
func (m *Mirror) treeObjects(h plumbing.Hash, set map[plumbing.Hash]bool) error {
	if set[h] {
		return nil
	}
	set[h] = true
	t, err := object.GetTree(m.st, h)
	if err != nil {
		return fmt.Errorf("tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			if err := m.treeObjects(e.Hash, set); err != nil {
				return err
			}
		case filemode.Submodule:
		default:
			set[e.Hash] = true
		}
	}
	return nil
}

// receiver is a receive-pack session.
type receiver interface {
	AdvertisedReferencesContext(context.Context) (*packp.AdvRefs, error)
	ReceivePack(context.Context, *packp.ReferenceUpdateRequest) (*packp.ReportStatus, error)
	Close() error
}

// streamReceiver speaks the receive-pack protocol over a stream: a git
// daemon connection or git-receive-pack's standard input and output
// through ssh.
type streamReceiver struct{ *streamSession }

func (s *streamReceiver) ReceivePack(ctx context.Context, req *packp.ReferenceUpdateRequest) (*packp.ReportStatus, error) {
	if _, err := s.AdvertisedReferencesContext(ctx); err != nil {
		return nil, err
	}
	s.packRun = true // no flush at Close: the request ends the session
	if err := req.Encode(s.w); err != nil {
		return nil, s.fail(fmt.Errorf("sending the commands and the pack: %w", err))
	}
	if !req.Capabilities.Supports(capability.ReportStatus) {
		return nil, nil
	}
	report := packp.NewReportStatus()
	if err := report.Decode(s.r); err != nil {
		if msg := s.stderr.firstLine(); msg != "" {
			return nil, fmt.Errorf("server says: %s", msg)
		}
		return nil, s.fail(fmt.Errorf("reading the report: %w", err))
	}
	return report, nil
}
