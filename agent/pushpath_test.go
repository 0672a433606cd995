package agent

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/steps"
)

// TestWarm checks that the daemon's warm, after a move, leaves the applied
// journal decoded for the next run's open (which then allocates a fraction
// of the bytes that decoding 400 steps takes: bytes, not allocations, since
// the state's own decoder makes few and large ones), and that it does not wait for a state
// that another cairn has locked.
func TestWarm(t *testing.T) {
	r := gittest.New(t)
	r.Commit("main", files(400, "one\n"))
	h := newHost(t)
	p := h.pipeline(t, r, "web-02", nil)
	d, err := NewDaemon(p, DaemonConfig{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// opens counts the bytes one open of the state allocates.
	opens := func() uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		a, err := steps.Open(ctx, steps.Options{Root: p.cfg.Root, StateDir: p.cfg.StateDir})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		return after.TotalAlloc - before.TotalAlloc
	}
	move := func(content string) {
		t.Helper()
		want := r.Commit("main", files(400, content))
		if rep := runOnce(t, p, Request{}); rep.Run.Result != ResultApplied || rep.Run.Commit != want {
			t.Fatalf("run to %s: %s at %s, %v", want, rep.Run.Result, rep.Run.Commit, rep.Err)
		}
	}

	move("two\n")
	cold := opens() // decodes the journal the move wrote; the second open would not
	move("three\n")
	if err := d.warm(ctx); err != nil {
		t.Fatalf("warm after a move: %v", err)
	}
	warm := opens()
	t.Logf("bytes allocated: cold %d, warm %d", cold, warm)
	if warm*4 > cold {
		t.Errorf("an open after warm allocated %d bytes, one that decodes the journal %d: warm did not leave it decoded", warm, cold)
	}

	// Another cairn holds the lock: warm gives up at once (a minute's
	// LockWait would hold the agent's loop).
	held, err := steps.Open(ctx, steps.Options{Root: p.cfg.Root, StateDir: p.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.warm(wctx); !errors.Is(err, steps.ErrLocked) {
		t.Errorf("warm of a locked state: %v, want steps.ErrLocked", err)
	}
}

// TestLifeWriter checks that the lifecycle record ends at the last state
// put, however quickly the states follow each other, once flushed.
func TestLifeWriter(t *testing.T) {
	h := newHost(t)
	p := h.pipeline(t, gittest.New(t), "web-02", nil)
	a, err := steps.Open(context.Background(), steps.Options{Root: p.cfg.Root, StateDir: p.cfg.StateDir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := &run{p: p, a: a}
	since := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	states := []State{Fetching, Verifying, Compiling, Planning, Applying, CheckingDrift, Idle}
	for round := range 20 {
		for i, s := range states {
			r.life.put(r, Lifecycle{State: s, Since: since.Add(time.Duration(round*len(states)+i) * time.Second)})
		}
		r.life.flush()
		var got Lifecycle
		if ok, err := a.ReadRecord(recordLifecycle, &got); !ok || err != nil {
			t.Fatalf("round %d: the lifecycle record: %v, %v", round, ok, err)
		}
		want := since.Add(time.Duration(round*len(states)+len(states)-1) * time.Second)
		if got.State != Idle || !got.Since.Equal(want) {
			t.Fatalf("round %d: the record says %s since %v, want idle since %v", round, got.State, got.Since, want)
		}
	}
}
