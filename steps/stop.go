package steps

import (
	"context"
	"errors"
)

// How a move stops (Applier.Apply): the ctx of Apply stops it between ops;
// Options.Kill kills the op that runs, through the context that ops run
// with, made here.

// ErrKilled is the cause of the context of the ops of a move that was
// killed (Options.Kill).
var ErrKilled = errors.New("the move was killed")

// killContext returns the context that the ops of a move run with: it
// carries ctx's values but not its cancellation, and is done, with cause
// ErrKilled, once kill is closed. stop releases it.
func killContext(ctx context.Context, kill <-chan struct{}) (opCtx context.Context, stop func()) {
	opCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	if kill == nil {
		return opCtx, func() { cancel(nil) }
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-kill:
			cancel(ErrKilled)
		case <-done:
		}
	}()
	return opCtx, func() { close(done); cancel(nil) }
}

// stopped returns why no further op of a move may start: it was stopped
// (ctx) or killed (opCtx); nil if neither.
func stopped(ctx, opCtx context.Context) error {
	if opCtx.Err() != nil {
		return context.Cause(opCtx)
	}
	return ctx.Err()
}
