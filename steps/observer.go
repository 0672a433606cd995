package steps

import (
	"time"

	"github.com/cairn-cm/cairn/journal"
)

// Observer is told of every op a move runs, and of every undo: progress for
// a terminal, counters for metrics, lines for a log. Options.Observer sets
// it; nil observes nothing.
//
// Calls come one at a time, never two at once, in the order of the ops,
// but not all from one goroutine: the ops of a batch that runs while the
// next batch's images are taken (a flight) are observed from the goroutine
// that runs them. Ops that run together (COPYs and MKDIRs several at a
// time, a package batch) are all started, then all done, in their order.
// An observer must return quickly; it must not call the Applier.
type Observer interface {
	// OpStarted is called before an op runs (or is undone).
	OpStarted(OpEvent)
	// OpDone is called after it ran, with its Duration and Err.
	OpDone(OpEvent)
}

// Direction says which way an op moves its step: forward makes the step
// true, inverse takes it back.
type Direction uint8

// The directions of an op.
const (
	// DirForward: the forward op of an added step, an update, a rerun (a
	// drift repair, Move.Repair, or an owner whose id changed) and a
	// recheck.
	DirForward Direction = iota
	// DirInverse: the inverse op of a removed step, and every undo of an
	// op (whatever the op's direction) when a move fails or an interrupted
	// move is recovered.
	DirInverse
)

// String returns "forward" or "inverse", the label of cairn_ops_total.
func (d Direction) String() string {
	if d == DirInverse {
		return "inverse"
	}
	return "forward"
}

// OpEvent describes one op for an Observer.
type OpEvent struct {
	// Index is the op's place among the ops of the plan that act, from 1;
	// Total is their number. An undo carries the Index of the op it
	// undoes; the undos of a recovery count the ops the intent log holds.
	Index, Total int
	Kind         string         // the step's kind: "COPY", "EXEC", ...
	Action       journal.Action // what the plan runs for the step
	Direction    Direction
	// Undo is set for the undo of an op that ran, when a move fails (or
	// is stopped, or recovered): the host goes back to where it was. An
	// undo that fails is tried again after the others, and then observed
	// again.
	Undo   bool
	Object string      // the managed object (a path, a user, ...); "" for none
	Step   string      // the step's canonical line
	Pos    journal.Pos // its position in the journal
	Source string      // its source positions, outermost first ("" if none)
	// Duration (OpDone only) is how long the op ran; the ops of a package
	// batch each carry the batch's.
	Duration time.Duration
	// Err (OpDone only) is why the op failed; nil if it did not. In a
	// batch, only the op the failure names carries it.
	Err error
}

// opEvent describes s for an observer.
func opEvent(index, total int, s *journal.Step, action journal.Action, undo bool) OpEvent {
	dir := DirForward
	if undo || action == journal.Inverse {
		dir = DirInverse
	}
	return OpEvent{
		Index: index, Total: total, Kind: s.Op, Action: action, Direction: dir, Undo: undo,
		Object: s.Object(), Step: s.Canonical(), Pos: s.Pos, Source: s.Source,
	}
}

// observe reports an op to the applier's observer, if any: started, then
// done by the op that run calls.
func (a *Applier) observe(ev OpEvent, run func() error) error {
	if a.obs == nil {
		return run()
	}
	a.obs.OpStarted(ev)
	start := time.Now()
	err := run()
	ev.Duration, ev.Err = time.Since(start), err
	a.obs.OpDone(ev)
	return err
}
