package steps

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// Exit codes of the command line (spec cli.md), one class of error each.
const (
	ExitOK         = 0
	ExitFailed     = 1 // a step or CHECK failed; the host is back where it was
	ExitBadInput   = 2 // bad input or usage; nothing changed
	ExitUndoFailed = 3 // the host could not be brought back; the intent is kept
)

// ErrRemoval is wrapped by the *InputError of a move refused because it
// would remove every object the applied journal manages (Move.AllowRemoval).
var ErrRemoval = errors.New("refused unless removal is allowed (--allow-removal)")

// InputError is bad input found before anything changed: a bad journal, a
// missing or mismatching source, a state directory held by another process.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// inputErrorf makes an InputError.
func inputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// StepError is an op or CHECK that failed; the ops already run were undone
// and the host is as it was before the move.
type StepError struct {
	Step   *journal.Step
	Action journal.Action
	Err    error
}

func (e *StepError) Error() string {
	return describeStep(e.Step) + ": " + e.Action.String() + ": " + e.Err.Error()
}
func (e *StepError) Unwrap() error { return e.Err }

// MoveError is a move that failed for a reason that is no step's: the
// intent log, a sync of the file system or the commit could not be written
// (a full disk). The ops that ran were undone and the host is as it was
// before the move (exit 1, as for a StepError).
type MoveError struct {
	Err    error
	Undone int // ops that ran (or may have) and were undone
}

func (e *MoveError) Error() string {
	return fmt.Sprintf("the move failed: %v; %s undone: the host is as it was before the move", e.Err, plural(e.Undone, "op"))
}
func (e *MoveError) Unwrap() error { return e.Err }

// plural says "1 op", "2 ops".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// UndoError is a failure to undo a failed or interrupted move; the intent
// log is kept so that the next run retries. (An *IntentCorruptError is exit
// 3 as well: the log cannot be read, so nothing can be undone.)
type UndoError struct {
	Cause error // why the move was being undone, if it failed
	Errs  []error
}

func (e *UndoError) Error() string {
	var lines []string
	if e.Cause != nil {
		lines = append(lines, e.Cause.Error())
	}
	for _, err := range e.Errs {
		lines = append(lines, err.Error())
	}
	lines = append(lines, "the undo is incomplete: the intent log is kept, and the next cairn command that opens the state retries it")
	return strings.Join(lines, "\n")
}

// ExitCode maps an error to the exit code the command line documents.
func ExitCode(err error) int {
	var undo *UndoError
	var corrupt *IntentCorruptError
	var step *StepError
	var move *MoveError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &undo), errors.As(err, &corrupt):
		return ExitUndoFailed
	case errors.As(err, &step), errors.As(err, &move):
		return ExitFailed
	}
	return ExitBadInput
}

// describeStep names a step for messages: its journal position, op and
// object, and its source position.
func describeStep(s *journal.Step) string {
	msg := s.Pos.String() + ": " + s.Op
	if obj := s.Object(); obj != "" {
		msg += " " + obj
	} else if len(s.Args) > 0 {
		msg += " " + s.Canonical()[len(s.Op)+1:]
	}
	if s.Source != "" {
		msg += " (from " + s.Source + ")"
	}
	return msg
}
