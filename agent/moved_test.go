package agent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
)

// movedObserver records the states, and the moves among them.
type movedObserver struct {
	events []string
	commit string
	steps  int
}

func (o *movedObserver) Enter(s State, _ time.Time) { o.events = append(o.events, string(s)) }
func (o *movedObserver) Fetched(bool, time.Time)    {}
func (o *movedObserver) Moved(commit, _, _ string, committed time.Time, steps int) {
	o.events = append(o.events, "moved")
	o.commit, o.steps = commit, steps
}

// TestMovedBeforeDrift: a MoveObserver hears of a move as it holds, before
// the drift check (the daemon's cairn_applied_commit_info changes then), and
// of no move when nothing changed.
func TestMovedBeforeDrift(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit("main", files(2, "one\n"))
	p := newHost(t).pipeline(t, r, "web-02", nil)

	obs := &movedObserver{}
	if rep := p.Run(context.Background(), Request{}, obs); rep.Run.Result != ResultApplied {
		t.Fatalf("first run: %s, %v", rep.Run.Result, rep.Err)
	}
	want := []string{"fetching", "verifying", "compiling", "planning", "applying", "moved", "checking-drift", "idle"}
	if !slices.Equal(obs.events, want) {
		t.Errorf("events %v, want %v", obs.events, want)
	}
	if obs.commit != c1 || obs.steps != 3 {
		t.Errorf("moved to %s with %d steps, want %s with 3", obs.commit, obs.steps, c1)
	}

	obs = &movedObserver{}
	if rep := p.Run(context.Background(), Request{}, obs); rep.Run.Result != ResultUnchanged {
		t.Fatalf("second run: %s, %v", rep.Run.Result, rep.Err)
	}
	if slices.Contains(obs.events, "moved") {
		t.Errorf("an unchanged run told of a move: %v", obs.events)
	}
}
