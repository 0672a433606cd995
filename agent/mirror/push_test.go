package mirror_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/agent/mirror"
)

// TestPushOverEachTransport pushes, over every transport, a fast-forward of
// one branch and a new reference in one push, checks them with git on the
// server, and checks that a stale Old and a rewind are refused and change
// nothing.
func TestPushOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		if tr.name == "path" {
			continue // a work tree's checked-out branch: git refuses to push to it
		}
		t.Run(tr.name, func(t *testing.T) {
			u := newUpstream(t)
			base := u.commit(t, "base")
			git(t, u.work, "branch", "canary")
			ahead := u.commit(t, "ahead")
			u.push(t)
			git(t, u.bare, "config", "daemon.receivepack", "true")
			git(t, u.bare, "config", "http.receivepack", "true")
			url, opts, _ := tr.serve(t, u)
			m, err := mirror.Open(filepath.Join(t.TempDir(), "m"), url, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx := context.Background()
			tips := fetch(t, m, "main", "canary")
			wantTip(t, tips, "canary", base)

			// A new reference pointing at a new blob: the object must
			// travel with the push.
			blob := m.Objects().NewEncodedObject()
			blob.SetType(plumbing.BlobObject)
			w, _ := blob.Writer()
			w.Write([]byte("evidence\n"))
			w.Close()
			bh, err := m.Objects().SetEncodedObject(blob)
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Push(ctx,
				mirror.RefUpdate{Name: "refs/heads/canary", Old: plumbing.NewHash(base), New: plumbing.NewHash(ahead)},
				mirror.RefUpdate{Name: "refs/cairn/test", New: bh})
			if err != nil {
				t.Fatal(err)
			}
			if got := git(t, u.bare, "rev-parse", "refs/heads/canary"); got != ahead {
				t.Errorf("canary on the server = %s, want %s", got, ahead)
			}
			if got := git(t, u.bare, "cat-file", "-p", "refs/cairn/test"); got != "evidence" {
				t.Errorf("refs/cairn/test on the server = %q", got)
			}

			// Stale: someone else moved the server's canary on.
			next := u.commit(t, "next")
			u.push(t)
			fetch(t, m, "main")
			git(t, u.bare, "update-ref", "refs/heads/canary", next)
			_, err = m.Push(ctx, mirror.RefUpdate{Name: "refs/heads/canary", Old: plumbing.NewHash(ahead), New: plumbing.NewHash(next)})
			if !errors.Is(err, mirror.ErrStale) {
				t.Errorf("push with a stale old: %v, want ErrStale", err)
			}
			// A rewind is never pushed.
			_, err = m.Push(ctx, mirror.RefUpdate{Name: "refs/heads/main", Old: plumbing.NewHash(next), New: plumbing.NewHash(base)})
			if !errors.Is(err, mirror.ErrNotFastForward) {
				t.Errorf("rewind: %v, want ErrNotFastForward", err)
			}
			if got := git(t, u.bare, "rev-parse", "refs/heads/main"); got != next {
				t.Errorf("main moved to %s by a refused push", got)
			}
			if err == nil || strings.Contains(err.Error(), "%!") {
				t.Errorf("message: %v", err)
			}
		})
	}
}

// TestPushToWorkTree: a work tree's checked-out branch is not moved under
// it; its other branches are.
func TestPushToWorkTree(t *testing.T) {
	u := newUpstream(t)
	base := u.commit(t, "base")
	git(t, u.work, "branch", "canary")
	ahead := u.commit(t, "ahead")
	git(t, u.work, "checkout", "-q", "canary")
	m, err := mirror.Open(filepath.Join(t.TempDir(), "m"), u.work, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fetch(t, m, "main", "canary")
	_, err = m.Push(context.Background(), mirror.RefUpdate{Name: "refs/heads/canary", Old: plumbing.NewHash(base), New: plumbing.NewHash(ahead)})
	if !errors.Is(err, mirror.ErrRejected) || !strings.Contains(err.Error(), "canary is checked out in the work tree") {
		t.Errorf("push to the checked-out branch: %v", err)
	}
	git(t, u.work, "checkout", "-q", "main")
	if _, err := m.Push(context.Background(), mirror.RefUpdate{Name: "refs/heads/canary", Old: plumbing.NewHash(base), New: plumbing.NewHash(ahead)}); err != nil {
		t.Fatal(err)
	}
	if got := git(t, u.work, "rev-parse", "canary"); got != ahead {
		t.Errorf("canary = %s, want %s", got, ahead)
	}
}

// TestFetchRefs fetches a reference outside branches and tags, and leaves
// out one the remote lacks.
func TestFetchRefs(t *testing.T) {
	u := newUpstream(t)
	c := u.commit(t, "c")
	u.push(t)
	git(t, u.bare, "update-ref", "refs/notes/cairn-promotions", c)
	m, err := mirror.Open(filepath.Join(t.TempDir(), "m"), "file://"+u.bare, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tips, err := m.FetchRefs(context.Background(), "refs/notes/cairn-promotions", "refs/notes/other")
	if err != nil {
		t.Fatal(err)
	}
	if len(tips) != 1 || tips["refs/notes/cairn-promotions"].String() != c {
		t.Errorf("tips = %v, want only the notes at %s", tips, c)
	}
}
