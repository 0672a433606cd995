package agent

import (
	"fmt"
	"slices"
)

// State is a state of the agent's lifecycle (spec agent.md §3). A run goes
// idle → fetching → verifying → compiling → planning → applying →
// confirming → checking-drift → idle, skipping what it need not do (an
// unchanged tip is neither compiled nor planned), and stops at the first
// stage that fails.
type State string

// The lifecycle's states.
const (
	Idle          State = "idle"
	Fetching      State = "fetching"
	Verifying     State = "verifying"
	Compiling     State = "compiling"
	Planning      State = "planning"
	Applying      State = "applying"
	Confirming    State = "confirming"
	CheckingDrift State = "checking-drift"
	// Failed ends a run whose move was undone, or which could not fetch:
	// the host is where it was.
	Failed State = "failed"
	// Broken ends a run whose move could not be undone (exit 3); the next
	// run retries the recovery first.
	Broken State = "broken"
	// Held is the resting state of a host that a rollback pinned: runs
	// still fetch, report and check drift, but do not move it.
	Held State = "held"
)

// transition is a row of the lifecycle table: a state and the states a run
// may go to from it.
type transition struct {
	from State
	to   []State
}

// lifecycle is the table of states and their allowed transitions, sorted by
// state. A run that stops early (a refusal, nothing to do, an error) goes
// straight to checking-drift, failed, broken or the resting state; a test
// checks the table's order and that every state can reach rest.
var lifecycle = []transition{
	{Applying, []State{Broken, CheckingDrift, Confirming, Failed}},
	{Broken, []State{Fetching, Held, Idle}},
	{CheckingDrift, []State{Broken, Failed, Held, Idle}},
	{Compiling, []State{Failed, Held, Idle, Planning}},
	{Confirming, []State{Broken, CheckingDrift, Failed}},
	{Failed, []State{Fetching, Held, Idle}},
	// fetching → applying: the way back of a move stuck after its
	// confirmation failed, retried first.
	{Fetching, []State{Applying, Broken, CheckingDrift, Compiling, Failed, Held, Idle, Verifying}},
	{Held, []State{Fetching, Idle}},
	{Idle, []State{Fetching, Held}},
	{Planning, []State{Applying, Broken, CheckingDrift, Failed, Held, Idle}},
	{Verifying, []State{Compiling, Failed, Held, Idle}},
}

// States returns every state of the lifecycle, sorted.
func States() []State {
	out := make([]State, len(lifecycle))
	for i, t := range lifecycle {
		out[i] = t.from
	}
	return out
}

// Resting reports whether s is a state between runs.
func (s State) Resting() bool { return s == Idle || s == Held }

// CanGo reports whether the lifecycle allows going from s to next.
func (s State) CanGo(next State) bool {
	i, ok := slices.BinarySearchFunc(lifecycle, s, func(t transition, s State) int {
		switch {
		case t.from < s:
			return -1
		case t.from > s:
			return 1
		}
		return 0
	})
	return ok && slices.Contains(lifecycle[i].to, next)
}

// checkTransition returns an error when the lifecycle does not allow the
// step from s to next: a bug in the agent, which a test drives out.
func checkTransition(s, next State) error {
	if !s.CanGo(next) {
		return fmt.Errorf("agent: lifecycle does not go from %s to %s", s, next)
	}
	return nil
}
