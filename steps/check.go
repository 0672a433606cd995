package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cairn-cm/cairn/journal"
)

// checkKind runs CHECK.
//
// Syntax: CHECK KIND TARGET [timeout=30s] [interval=1s]
//
// Forward: poll every interval until the check holds; when timeout (the
// whole wait) is up, the step fails with the last reason, after a last
// probe at that moment (an interval longer than the timeout still gets
// two probes: at the start and at the end). The timeout
// bounds each probe too: one started near its end gets only what is left
// (a command probe still running then has its process group killed), so a
// CHECK ends within its timeout whatever its probes do. Kinds: http (URL
// answers 2xx), tcp (HOST:PORT accepts), command (exits 0, run like EXEC),
// file (the path exists beneath the root), unit-active (the unit is active;
// needs a unit driver).
//
// Inverse: nothing.
//
// Check: none (a CHECK is not state; it guards the steps before it).
//
// Example: CHECK http http://127.0.0.1:8080/healthz timeout=1m
type checkKind struct{}

var (
	_ Kind     = checkKind{}
	_ Inverter = checkKind{}
)

func (checkKind) Op() string { return journal.OpCheck }

func (checkKind) Inverse(context.Context, *Env, *journal.Step) error { return nil }

func (checkKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	timeout, _ := time.ParseDuration(s.Get("timeout"))
	interval, _ := time.ParseDuration(s.Get("interval"))
	deadline := time.Now().Add(timeout)
	for {
		err := probe(ctx, env, s.Args[0], s.Args[1], time.Until(deadline))
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("did not hold within %s: %w", timeout, err)
		}
		// The last wait ends with the timeout, and one more probe: an
		// interval longer than what is left must not end the wait early.
		select {
		case <-ctx.Done():
			return fmt.Errorf("killed while it waited (%w): %w", context.Cause(ctx), err)
		case <-time.After(min(interval, left)):
		}
	}
}

// minProbe is the least time a probe gets, even when the CHECK's timeout
// is all but up.
const minProbe = 100 * time.Millisecond

// probe tries a check once, for at most budget; nil means it holds.
func probe(ctx context.Context, env *Env, kind, target string, budget time.Duration) error {
	budget = max(budget, minProbe)
	switch kind {
	case "http":
		ctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("%s answered %s", target, resp.Status)
		}
		return nil
	case "tcp":
		d := net.Dialer{Timeout: budget}
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return err
		}
		return c.Close()
	case "command":
		return runShell(ctx, env, target, budget)
	case "file":
		st, err := lstatPath(env, target)
		if err != nil {
			return err
		}
		if !st.exists {
			return fmt.Errorf("%s does not exist", target)
		}
		return nil
	case "unit-active":
		if env.Units == nil {
			return errors.New("unit-active checks need a unit driver, and none is configured")
		}
		ctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		return env.Units.CheckActive(ctx, target)
	}
	return fmt.Errorf("unknown check kind %q", kind)
}
