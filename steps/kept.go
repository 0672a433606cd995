package steps

import (
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cairn-cm/cairn/journal"
)

// KeptEdited is why content is kept: someone changed a file after a COPY of
// the applied journal wrote it, and a move then replaced or removed it.
const KeptEdited = "edited by hand after cairn wrote it"

// Kept is content that a move replaced or removed and that the state keeps:
// a file that a COPY had written and that someone edited by hand since. Its
// content stays in the blob store (under Sum), and the record in
// applied.json, for good: no later move drops either, but the same content
// kept again for the same path replaces its older record (nextKept).
type Kept struct {
	Path string `json:"path"`
	Sum  string `json:"sha256"`
	Size int64  `json:"size"`
	Mode uint32 `json:"mode"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	// Time and Generation are those of the move that replaced the file.
	Time       time.Time `json:"time"`
	Generation int64     `json:"generation"`
	// Step is the COPY that had written the file (canonical), At its journal
	// position and Source its source position.
	Step   string `json:"step"`
	At     string `json:"at"`
	Source string `json:"src,omitempty"`
	// Action is the op that replaced or removed the file: inverse, update or
	// rerun (a repair).
	Action string `json:"action"`
	Why    string `json:"why"`
}

// keptBefore returns what to keep before op runs, given its undo image: the
// content of a file that a COPY of the applied journal wrote and that was
// edited by hand since (it is not the COPY's content), when op will not
// leave that content in place. The undo image already holds it in the blob
// store. nil when nothing is to be kept.
//
// A plan has one op per identity, but for a rerun: a drift repair may run
// again a step that an owner's changed id already reruns. The second one
// captures what the first wrote, the COPY's content, so it keeps nothing.
func (a *Applier) keptBefore(op *journal.Op, undo *Image) *Kept {
	if undo == nil || undo.Type != TypeFile {
		return nil
	}
	var wrote *journal.Step // the applied step that wrote the file
	switch op.Action {
	case journal.Inverse, journal.Rerun:
		wrote = op.Step
	case journal.Update:
		wrote = op.Prev
	}
	if wrote == nil || wrote.Op != journal.OpCopy || wrote.Get("sha256") == undo.Blob {
		return nil
	}
	switch {
	case op.Action == journal.Inverse:
		if orig := a.st.applied.Images()[op.Step.Identity()]; orig.Type == TypeFile && orig.Blob == undo.Blob {
			return nil // the original image is the same content
		}
	case op.Step.Op == journal.OpCopy:
		if op.Step.Get("sha256") == undo.Blob {
			return nil
		}
	}
	return &Kept{
		Path: op.Step.Object(), Sum: undo.Blob, Size: undo.Size, Mode: undo.Mode, UID: undo.UID, GID: undo.GID,
		Step: wrote.Canonical(), At: wrote.Pos.String(), Source: wrote.Source,
		Action: op.Action.String(), Why: KeptEdited,
	}
}

// nextKept returns the kept content of the applied journal followed by what
// the ops of the move that makes next kept. Content kept again for the same
// path (the same hand edit replaced move after move, as when a program
// rewrites a file that a timer repairs) is one record, the newest: the
// content is in the store once anyway, and the state must not grow by a
// record a move for it.
func (a *Applier) nextKept(done []executed, next *Applied) []Kept {
	out := slices.Clone(a.st.applied.Kept)
	for _, ex := range done {
		if ex.kept != nil {
			k := *ex.kept
			k.Time, k.Generation = next.Time, next.Generation
			out = slices.DeleteFunc(out, func(o Kept) bool { return o.Path == k.Path && o.Sum == k.Sum })
			out = append(out, k)
		}
	}
	return out
}

// keptBy returns the records of kept that the move of generation gen made:
// the last ones (nextKept appends them).
func keptBy(kept []Kept, gen int64) []Kept {
	i := len(kept)
	for i > 0 && kept[i-1].Generation == gen {
		i--
	}
	return kept[i:]
}

// reportKept logs a warning for each piece of content a move kept.
func (a *Applier) reportKept(kept []Kept) {
	for _, k := range kept {
		a.env.logger().Warn("kept the content of a file edited by hand after cairn wrote it, before replacing it",
			"path", k.Path, "sha256", k.Sum, "size", k.Size, "step", k.At)
	}
}

// Kept returns the content kept in the state, oldest first (see Kept).
func (a *Applier) Kept() []Kept {
	return a.Applied().Kept
}

// OpenKept returns the newest content kept for the path p, or, with sum (a
// sha256 or a prefix of one) not empty, the newest kept for p with that
// hash, and a reader of it that checks its hash at the end. Nothing kept
// for p is an *InputError.
func (a *Applier) OpenKept(p, sum string) (Kept, io.ReadCloser, error) {
	kept := a.Kept()
	for i := len(kept) - 1; i >= 0; i-- {
		k := kept[i]
		if k.Path != p || !strings.HasPrefix(k.Sum, strings.ToLower(sum)) {
			continue
		}
		r, err := a.env.Blobs.Open(k.Sum)
		if err != nil {
			return k, nil, err
		}
		return k, r, nil
	}
	if sum != "" {
		return Kept{}, nil, inputErrorf("nothing kept for %s with sha256 %s", p, sum)
	}
	return Kept{}, nil, inputErrorf("nothing kept for %s", p)
}
