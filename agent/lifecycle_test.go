package agent

import (
	"slices"
	"testing"
)

// TestLifecycleTable checks the table of states: sorted, every target a
// state of the table, every state reachable from rest and able to reach
// rest, and the spec's happy path allowed step by step.
func TestLifecycleTable(t *testing.T) {
	states := States()
	if !slices.IsSorted(states) {
		t.Errorf("lifecycle table not sorted: %v", states)
	}
	if len(slices.Compact(slices.Clone(states))) != len(states) {
		t.Errorf("lifecycle table has a state twice: %v", states)
	}
	for _, tr := range lifecycle {
		for _, to := range tr.to {
			if !slices.Contains(states, to) {
				t.Errorf("%s goes to %s, which is no state of the table", tr.from, to)
			}
			if to == tr.from {
				t.Errorf("%s goes to itself", tr.from)
			}
		}
		if !slices.IsSorted(tr.to) {
			t.Errorf("targets of %s not sorted: %v", tr.from, tr.to)
		}
	}
	reach := func(from State) map[State]bool {
		seen := map[State]bool{from: true}
		work := []State{from}
		for len(work) > 0 {
			s := work[0]
			work = work[1:]
			for _, tr := range lifecycle {
				if tr.from != s {
					continue
				}
				for _, to := range tr.to {
					if !seen[to] {
						seen[to] = true
						work = append(work, to)
					}
				}
			}
		}
		return seen
	}
	fromIdle := reach(Idle)
	for _, s := range states {
		if !fromIdle[s] {
			t.Errorf("%s cannot be reached from idle", s)
		}
		r := reach(s)
		if !r[Idle] && !r[Held] {
			t.Errorf("%s cannot reach rest", s)
		}
	}
	path := []State{Idle, Fetching, Verifying, Compiling, Planning, Applying, Confirming, CheckingDrift, Idle}
	for i := 1; i < len(path); i++ {
		if err := checkTransition(path[i-1], path[i]); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range [][2]State{{Idle, Confirming}, {Applying, Idle}, {Confirming, Idle}, {Held, Verifying}, {"nonsense", Idle}} {
		if bad[0].CanGo(bad[1]) {
			t.Errorf("%s → %s allowed", bad[0], bad[1])
		}
	}
}
