package journal

// Action is what a plan does with one step.
type Action uint8

// The actions of a plan.
const (
	// Forward runs an added step's forward op.
	Forward Action = iota
	// Inverse runs a removed step's inverse op.
	Inverse
	// Update runs the forward op of an added step on the object of the
	// removed step with the same identity, as it is (§5.3).
	Update
	// Rerun runs an unchanged step forward again, because the id of a user
	// or group that owns its object changed in this plan (§5.4).
	Rerun
	// Recheck runs an unchanged CHECK again, because the plan ran something
	// before its place (§5.5).
	Recheck
)

// Symbol is the character that marks the action in a plan listing:
// '+' forward, '-' inverse, '~' in-place update or rerun, '?' recheck.
func (a Action) Symbol() byte {
	switch a {
	case Forward:
		return '+'
	case Inverse:
		return '-'
	case Recheck:
		return '?'
	}
	return '~'
}

// String names the action.
func (a Action) String() string {
	return [...]string{"forward", "inverse", "update", "rerun", "recheck"}[a]
}

// Op is one operation of a plan.
type Op struct {
	Action Action
	// Step is the step whose op runs: the removed step for Inverse, the new
	// step otherwise.
	Step *Step
	// Prev is, for Update, the removed step that Step replaces.
	Prev *Step
	// Noop is set for an Inverse that does nothing (an EXEC without undo, a
	// CHECK): the plan lists it as a note.
	Noop bool
}

// Plan moves a host from one journal to another (§5): the steps removed and
// added, and the operations to run, in order.
type Plan struct {
	Removed []*Step // in OLD order
	Added   []*Step // in NEW order
	Ops     []Op
}

// Empty reports whether the two journals hold the same steps.
func (p *Plan) Empty() bool { return len(p.Removed) == 0 && len(p.Added) == 0 }

// Acts reports whether running the plan would do anything at all.
func (p *Plan) Acts() bool {
	for _, op := range p.Ops {
		if !op.Noop {
			return true
		}
	}
	return false
}

// Acting counts the ops that do something: notes of inverses that do
// nothing (Noop) are not counted, so the count is what an apply runs.
func (p *Plan) Acting() int {
	n := 0
	for _, op := range p.Ops {
		if !op.Noop {
			n++
		}
	}
	return n
}

// Canonicals returns the canonical form of every step.
func Canonicals(steps []Step) []string {
	lines := make([]string, len(steps))
	for i := range steps {
		lines[i] = steps[i].Canonical()
	}
	return lines
}

// MakePlan computes the plan that moves a host from the expanded steps old to
// the expanded steps new.
func MakePlan(old, new []Step) *Plan {
	return MakePlanLines(old, Canonicals(old), new, Canonicals(new))
}

// MakePlanLines is MakePlan for callers that already hold the canonical
// form of every step.
func MakePlanLines(old []Step, oldLines []string, new []Step, newLines []string) *Plan {
	edits := DiffLines(oldLines, newLines)
	in := planInput{}
	added := make([]bool, len(new))
	for _, e := range edits {
		switch e.Kind {
		case Delete:
			in.removed = append(in.removed, &old[e.Old])
		case Insert:
			in.added = append(in.added, &new[e.New])
			in.addedAt = append(in.addedAt, e.New)
			added[e.New] = true
		}
	}
	in.checks = func(yield func(int, *Step) bool) {
		for i := range new {
			if !added[i] && new[i].Op == OpCheck && !yield(i, &new[i]) {
				return
			}
		}
	}
	in.owned = func(yield func(*Step) bool) {
		for i := range new {
			if !added[i] && !yield(&new[i]) {
				return
			}
		}
	}
	return makePlan(&in)
}

// planInput is what makePlan needs of a line diff of two journals: the
// removed and added steps, and the unchanged steps of new it may run again.
type planInput struct {
	removed []*Step // in OLD order
	added   []*Step // in NEW order
	addedAt []int   // the index in new of each added step, ascending
	// checks yields the unchanged CHECK steps of new with their index in
	// new, in NEW order.
	checks func(yield func(int, *Step) bool)
	// owned yields, in NEW order, every unchanged step of new that has an
	// owner or group attribute (it may yield others too, which are skipped);
	// it is called only when the plan changes the id of a user or group.
	owned func(yield func(*Step) bool)
}

// makePlan computes the plan (§5.3 to §5.6) from a line diff.
func makePlan(in *planInput) *Plan {
	p := &Plan{Removed: in.removed, Added: in.added}
	removedAt := make(map[string]int) // identity -> index in removed
	for k, s := range in.removed {
		if id := s.Identity(); id != "" {
			removedAt[id] = k
		}
	}
	// Fuse removed and added steps of one identity into updates (§5.3).
	fused := make(map[int]int)     // index in added -> index in removed
	fusedOld := make(map[int]bool) // indices in removed fused into an update
	var key []byte                 // an added step's identity, looked up without a string made
	added := in.added
	if len(removedAt) == 0 {
		added = nil // nothing to fuse with (a first move)
	}
	for i, s := range added {
		if key = s.AppendIdentity(key[:0]); len(key) > 0 {
			if o, ok := removedAt[string(key)]; ok {
				fused[i] = o
				fusedOld[o] = true
			}
		}
	}
	ran := false
	for k := len(in.removed) - 1; k >= 0; k-- {
		if fusedOld[k] {
			continue
		}
		s := in.removed[k]
		sig := s.Signature()
		noop := sig.UndoIsNoop != nil && sig.UndoIsNoop(s)
		ran = ran || !noop
		p.Ops = append(p.Ops, Op{Action: Inverse, Step: s, Noop: noop})
	}
	changedUsers, changedGroups := map[string]bool{}, map[string]bool{}
	noteIDChange := func(s, prev *Step) {
		switch s.Op {
		case OpUseradd:
			if prev == nil || prev.Get("uid") != s.Get("uid") || s.Get("uid") == "" {
				changedUsers[s.Object()] = true
			}
		case OpGroupadd:
			if prev == nil || prev.Get("gid") != s.Get("gid") || s.Get("gid") == "" {
				changedGroups[s.Object()] = true
			}
		}
	}
	for _, op := range p.Ops {
		noteIDChange(op.Step, nil)
	}
	// The added steps and the unchanged CHECKs, merged in NEW order.
	k := 0
	addUpTo := func(end int) {
		for ; k < len(in.added) && in.addedAt[k] < end; k++ {
			s := in.added[k]
			if o, ok := fused[k]; ok {
				prev := in.removed[o]
				p.Ops = append(p.Ops, Op{Action: Update, Step: s, Prev: prev})
				noteIDChange(s, prev)
			} else {
				p.Ops = append(p.Ops, Op{Action: Forward, Step: s})
				noteIDChange(s, nil)
			}
			ran = true
		}
	}
	for i, s := range in.checks {
		addUpTo(i)
		if ran {
			p.Ops = append(p.Ops, Op{Action: Recheck, Step: s})
		}
	}
	addUpTo(int(^uint(0) >> 1))
	if len(changedUsers) > 0 || len(changedGroups) > 0 {
		for s := range in.owned {
			owner, hasOwner := s.Lookup("owner")
			group, hasGroup := s.Lookup("group")
			if (hasOwner && changedUsers[owner]) || (hasGroup && changedGroups[group]) {
				p.Ops = append(p.Ops, Op{Action: Rerun, Step: s})
			}
		}
	}
	return p
}
