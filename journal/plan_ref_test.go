package journal

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMakePlanReference compares MakePlan, which makes the plan through
// makePlan as PlanPair does, with referenceMakePlan, MakePlan as it was
// before makePlan (and PlanPair with the full parse), on generated journals with changed, moved, repeated,
// owned and CHECK steps and users whose uid changes.
func TestMakePlanReference(t *testing.T) {
	compared, actions := 0, map[Action]int{}
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 99))
		o, n := GenDiffJournals(seed, 40+rng.IntN(300), 0.05+rng.Float64()*0.2)
		o, n = decorate(rng, o), decorate(rng, n)
		// CHECKs in both, and a user whose uid may change with steps it
		// owns at the end.
		for i := 10; i < min(len(o), len(n)); i += 20 {
			c := fmt.Sprintf("CHECK file /srv/c%d", i)
			o = append(o[:i], append([]string{c}, o[i:]...)...)
			n = append(n[:i], append([]string{c}, n[i:]...)...)
		}
		o = append([]string{"USERADD web uid=1000"}, o...)
		n = append([]string{fmt.Sprintf("USERADD web uid=%d", 1000+rng.IntN(2))}, n...)
		o = append(o, "MKDIR /srv/web owner=web", "COPY - /srv/web/x group=web sha256="+hexA)
		n = append(n, "MKDIR /srv/web owner=web", "COPY - /srv/web/x group=web sha256="+hexA)
		checkPlanPair(t, strings.Join(o, "\n"), strings.Join(n, "\n"))
		old, err := Parse("old.journal", []byte(strings.Join(o, "\n")))
		if err != nil {
			continue
		}
		new, err := Parse("new.journal", []byte(strings.Join(n, "\n")))
		if err != nil {
			continue
		}
		p := MakePlan(old.Steps, new.Steps)
		for _, op := range p.Ops {
			actions[op.Action]++
		}
		compared++
		got := renderPlanFull(p)
		want := renderPlanFull(referenceMakePlan(old.Steps, new.Steps))
		if got != want {
			t.Fatalf("seed %d: MakePlan:\n%s\nwant (reference):\n%s", seed, got, want)
		}
	}
	// The generator must give plans of every kind of op.
	if compared < 30 || actions[Rerun] < 10 || actions[Recheck] < 100 || actions[Update] == 0 || actions[Inverse] == 0 {
		t.Fatalf("%d journals compared, ops %v: the generator no longer covers every action", compared, actions)
	}
	t.Logf("%d plans compared, ops by action %v", compared, actions)
}

// referenceMakePlan is MakePlanLines as it was before the plan was made
// from iterators (makePlan), kept as the reference of the test above.
func referenceMakePlan(old, new []Step) *Plan {
	oldLines, newLines := Canonicals(old), Canonicals(new)
	edits := DiffLines(oldLines, newLines)
	p := &Plan{}
	var removed []int                 // indices into old, in OLD order
	removedAt := make(map[string]int) // identity -> index in old of a removed step
	added := make([]bool, len(new))
	for _, e := range edits {
		switch e.Kind {
		case Delete:
			s := &old[e.Old]
			p.Removed = append(p.Removed, s)
			removed = append(removed, e.Old)
			if id := s.Identity(); id != "" {
				removedAt[id] = e.Old
			}
		case Insert:
			p.Added = append(p.Added, &new[e.New])
			added[e.New] = true
		}
	}
	// Fuse removed and added steps of one identity into updates (§5.3).
	fused := make(map[int]int)     // new index -> old index
	fusedOld := make(map[int]bool) // old indices fused into an update
	for i := range new {
		if !added[i] {
			continue
		}
		if id := new[i].Identity(); id != "" {
			if o, ok := removedAt[id]; ok {
				fused[i] = o
				fusedOld[o] = true
			}
		}
	}
	ran := false
	for k := len(removed) - 1; k >= 0; k-- {
		if fusedOld[removed[k]] {
			continue
		}
		s := &old[removed[k]]
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
	for i := range new {
		s := &new[i]
		switch {
		case !added[i]:
			if s.Op == OpCheck && ran {
				p.Ops = append(p.Ops, Op{Action: Recheck, Step: s})
			}
		default:
			if o, ok := fused[i]; ok {
				p.Ops = append(p.Ops, Op{Action: Update, Step: s, Prev: &old[o]})
				noteIDChange(s, &old[o])
			} else {
				p.Ops = append(p.Ops, Op{Action: Forward, Step: s})
				noteIDChange(s, nil)
			}
			ran = true
		}
	}
	if len(changedUsers) > 0 || len(changedGroups) > 0 {
		for i := range new {
			s := &new[i]
			if added[i] {
				continue
			}
			owner, hasOwner := s.Lookup("owner")
			group, hasGroup := s.Lookup("group")
			if (hasOwner && changedUsers[owner]) || (hasGroup && changedGroups[group]) {
				p.Ops = append(p.Ops, Op{Action: Rerun, Step: s})
			}
		}
	}
	return p
}
