package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/steps"
)

// confirm runs the CHECK steps of the journal just applied again, each at
// its own interval, for the confirm window (§3). The first that no longer
// holds within its timeout is the error: the move is then undone. A done
// ctx (SIGTERM) ends the window early and keeps the move; a CHECK that
// runs then still ends by itself, within its timeout.
func (r *run) confirm(ctx context.Context, js []journal.Step) error {
	type due struct {
		step  *journal.Step
		every time.Duration
		next  time.Time
	}
	start := time.Now()
	end := start.Add(r.p.cfg.Confirm)
	var checks []*due
	for i := range js {
		if js[i].Op != journal.OpCheck {
			continue
		}
		every, err := time.ParseDuration(js[i].Get("interval"))
		if err != nil || every <= 0 {
			every = time.Second
		}
		checks = append(checks, &due{step: &js[i], every: every, next: start.Add(every)})
	}
	check := steps.LookupKind(journal.OpCheck)
	env := r.a.Env()
	for {
		next := checks[0]
		for _, c := range checks[1:] {
			if c.next.Before(next.next) {
				next = c
			}
		}
		if next.next.After(end) {
			return nil
		}
		select {
		case <-ctx.Done():
			r.p.log().Info("confirmation window ended early; the move is kept", "cause", context.Cause(ctx))
			return nil
		case <-time.After(time.Until(next.next)):
		}
		if err := check.Forward(context.WithoutCancel(ctx), env, next.step); err != nil {
			return fmt.Errorf("%s: %s: no longer holds %s after the move: %w",
				next.step.Pos, next.step.Canonical(), time.Since(start).Round(time.Second), err)
		}
		next.next = next.next.Add(next.every)
	}
}
