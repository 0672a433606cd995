package steps

import (
	"context"
	"errors"

	"github.com/cairn-cm/cairn/journal"
)

// How a move stops: the contract is the package doc's ("Stopping a move");
// this file is the one place that keeps it. Every op, every undo image and
// every undo gets its context from cancellation.opContext, and nothing
// else in the applier hands a context to a kind.

// ErrKilled is the cause of the context of the ops of a move that was
// killed (Options.Kill).
var ErrKilled = errors.New("the move was killed")

// runsToItsEnd is a kind whose ops are never killed, not even by
// Options.Kill: the package family (apt-get and dpkg, whose death half way
// leaves a broken package database). Its ops, its images and its undos run
// with a context that is never done; each command it runs bounds itself
// (the dpkg lock waits are bounded).
type runsToItsEnd interface{ runsToItsEnd() }

// work is what an op's context is for.
type work int

const (
	doImage work = iota // taking the op's undo image, just before it runs
	doRun               // running the op: forward, inverse, or again
	doUndo              // undoing it: after a failure, or in recovery
)

// cancellation is how one move, or one recovery, stops: its caller's ctx
// (a stop, checked between ops only) and Options.Kill (a kill, through the
// context that killable ops run with).
type cancellation struct {
	stop    context.Context // the caller's: done means no further op starts
	killed  context.Context // ctx's values; done, with cause ErrKilled, once killed
	keep    context.Context // ctx's values; never done
	release func()
}

// newCancellation returns the cancellation of a move that ctx stops and
// the closing of kill kills (nil: never killed). release frees it.
func newCancellation(ctx context.Context, kill <-chan struct{}) *cancellation {
	keep := context.WithoutCancel(ctx)
	killed, cancel := context.WithCancelCause(keep)
	c := &cancellation{stop: ctx, killed: killed, keep: keep, release: func() { cancel(nil) }}
	if kill == nil {
		return c
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-kill:
			cancel(ErrKilled)
		case <-done:
		}
	}()
	c.release = func() { close(done); cancel(nil) }
	return c
}

// opContext is the one decision of the context that an op's work runs
// with, never the caller's ctx itself (a stop ends no op: it is checked
// between ops, stopped):
//
//   - an undo, after a failure or in the recovery of a dead process's move,
//     is never stopped or killed: it runs to its end, each command within
//     its own timeout;
//   - the work of a kind that runs to its end (runsToItsEnd: apt-get and
//     dpkg) is never killed either;
//   - any other op, and the undo image taken just before it, runs with a
//     context that is done only once the move is killed (Options.Kill):
//     the op then ends at once, with its commands' process groups.
func (c *cancellation) opContext(s *journal.Step, w work) context.Context {
	if w == doUndo {
		return c.keep
	}
	if _, ok := LookupKind(s.Op).(runsToItsEnd); ok {
		return c.keep
	}
	return c.killed
}

// stopped returns why no further op of a move may start: it was killed or
// stopped; nil if neither.
func (c *cancellation) stopped() error {
	if c.killed.Err() != nil {
		return context.Cause(c.killed)
	}
	return c.stop.Err()
}
