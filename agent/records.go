package agent

import (
	"time"

	"github.com/cairn-cm/cairn/steps"
)

// Result is how a run ended (cairn_runs_total's result label).
type Result string

// The results of a run.
const (
	// ResultApplied: the run moved the host, or repaired drift.
	ResultApplied Result = "applied"
	// ResultUnchanged: nothing to move (the host is at its target, held,
	// or the move to the target is known to be bad).
	ResultUnchanged Result = "unchanged"
	// ResultFailed: a fetch, a step or a CHECK failed and the host is back
	// where it was.
	ResultFailed Result = "failed"
	// ResultBroken: the host could not be put back (exit 3).
	ResultBroken Result = "broken"
	// ResultRefused: the target was refused (§4, §5, a compile error);
	// nothing changed.
	ResultRefused Result = "refused"
)

// Results lists every result, for metrics that exist from the start.
var Results = []Result{ResultApplied, ResultBroken, ResultFailed, ResultRefused, ResultUnchanged}

// Reason says why a target was refused (cairn_refusals_total's reason).
type Reason string

// The reasons for a refusal.
const (
	BadSignature  Reason = "bad-signature"
	BlastRadius   Reason = "blast-radius"
	CompileError  Reason = "compile-error"
	NotDescendant Reason = "not-descendant"
	UnknownKey    Reason = "unknown-key"
	Unsigned      Reason = "unsigned"
)

// Reasons lists every reason, sorted.
var Reasons = []Reason{BadSignature, BlastRadius, CompileError, NotDescendant, UnknownKey, Unsigned}

// The names of the agent's records in the state directory.
const (
	recordLifecycle = "lifecycle"
	recordRuns      = "runs"
	recordBad       = "bad-moves"
	recordPin       = "pin"
	recordTarget    = "target"
	recordWayBack   = "way-back"
)

// keepRuns is how many runs the runs record keeps.
const keepRuns = 20

// Lifecycle is the persisted lifecycle: the current state, since when,
// and the states the last run went through.
type Lifecycle struct {
	State State     `json:"state"`
	Since time.Time `json:"since"`
}

// Run is the record of one run.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Result   Result    `json:"result"`
	// Reason is set for a refused run.
	Reason Reason `json:"reason,omitempty"`
	// From is the commit the host stood at when the run began; Commit the
	// one it tried to reach (the target, or the commit asked for).
	From   string  `json:"from,omitempty"`
	Commit string  `json:"commit,omitempty"`
	Ops    int     `json:"ops"`
	Error  string  `json:"error,omitempty"`
	States []State `json:"states"`
}

// BadMove is a move that failed or was refused: the agent does not try the
// same move (same applied commit, same target) again.
type BadMove struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Keys is, for a commit refused for its signature, the sha256 of the
	// trust file that refused it: with other keys the move is tried again.
	Keys string `json:"keys,omitempty"`
}

// keepBad is how many bad moves the record keeps: enough for every commit
// a host could meet between two good ones.
const keepBad = 100

// Pin is a rollback's hold on the host (cairn rollback): the agent does not
// move it until cairn resume.
type Pin struct {
	Commit string    `json:"commit"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Target is the tip of the target branch last fetched.
type Target struct {
	Commit string    `json:"commit"`
	Branch string    `json:"branch"`
	Group  string    `json:"group"`
	Time   time.Time `json:"time"` // committer time
	// Fetched is when the fetch that saw it ended.
	Fetched time.Time `json:"fetched"`
}

// WayBack is a move that failed its confirmation and could not be undone:
// the host is stuck at commit Stuck, and every run retries the way back to
// the journal Back (its original images left out: the move back is a move
// forward to it) until it succeeds or the host is moved elsewhere.
type WayBack struct {
	Back  *steps.Applied `json:"back,omitempty"`
	Stuck string         `json:"stuck,omitempty"`
	Error string         `json:"error,omitempty"`
}
