package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/selfexe"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// TestHandover: the agent hands over to its replaced executable only after
// a run that leaves the host at its target, and only to another program
// that runs. The executable is a copy of this test binary (the program
// that runs); the test replaces it as dpkg would, then commits a move.
func TestHandover(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	failing := files(1, "two\n")
	failing["check.cairn"] = "check \"never\" {\n  command  = \"false\"\n  timeout  = \"1s\"\n  interval = \"1s\"\n}\n"
	for _, tc := range []struct {
		name string
		// replacement is the new file's contents.
		replacement []byte
		// move is the commit the agent then moves to.
		move map[string]string
		// wantResult is the move's result; handover whether the agent
		// hands over, and after which run: the move's, or the next one
		// (a failed move never hands over; the run after it, which leaves
		// the host where it is, does).
		wantResult Result
		handover   string
	}{
		{"another program, the move holds", append(program, 0), files(1, "two\n"), ResultApplied, "the move"},
		{"another program, the move fails", append(program, 0), failing, ResultFailed, "the next run"},
		{"the same program in a new file", program, files(1, "two\n"), ResultApplied, ""},
		{"a file that does not run", []byte("not a program\n"), files(1, "two\n"), ResultApplied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gittest.New(t)
			c1 := r.Commit("main", files(1, "one\n"))
			h := newHost(t)
			p := h.pipeline(t, r, "web-02", nil)
			exePath := filepath.Join(t.TempDir(), "cairn")
			if err := os.WriteFile(exePath, program, 0o755); err != nil {
				t.Fatal(err)
			}
			exe, err := selfexe.OpenPath(exePath)
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDaemon(p, DaemonConfig{Interval: time.Hour, Version: "1.0.0", Executable: exe, ProbeArgs: []string{"-test.run=^$"}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				rep *Report
				err error
			}
			done := make(chan result, 1)
			go func() {
				rep, err := d.Run(ctx)
				done <- result{rep, err}
			}()
			// ended waits for Run to return.
			ended := func() result {
				t.Helper()
				select {
				case res := <-done:
					return res
				case <-time.After(time.Minute):
					t.Fatal("the agent did not end within a minute")
					return result{}
				}
			}
			// waitRun waits for a run after since to end, and returns its
			// record; it fails if the agent ended first.
			waitRun := func(since time.Time) *Run {
				t.Helper()
				deadline := time.Now().Add(time.Minute)
				for time.Now().Before(deadline) {
					if doc := d.Status(); doc.LastRun != nil && doc.LastRun.Finished.After(since) && doc.State == string(Idle) {
						return &Run{Result: Result(doc.LastRun.Result), Commit: doc.LastRun.Commit, Finished: doc.LastRun.Finished}
					}
					select {
					case res := <-done:
						t.Fatalf("the agent ended: %v", res.err)
					case <-time.After(20 * time.Millisecond):
					}
				}
				t.Fatal("no run within a minute")
				return nil
			}
			first := waitRun(time.Time{})
			if first.Result != ResultApplied || first.Commit != c1 {
				t.Fatalf("the first run: %s at %s, want applied at %s", first.Result, first.Commit, c1)
			}

			// The file replaced as dpkg does: a new file renamed over it.
			tmp := exePath + ".dpkg-new"
			if err := os.WriteFile(tmp, tc.replacement, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, exePath); err != nil {
				t.Fatal(err)
			}
			c2 := r.Commit("main", tc.move)
			d.Trigger()
			if tc.handover == "the move" {
				res := ended()
				var ho *Handover
				if !errors.As(res.err, &ho) {
					t.Fatalf("after the move: Run returned %v, %v; want a *Handover", res.rep, res.err)
				}
				if ho.Commit != c2 || ho.Exe.Path() != exePath || !strings.Contains(ho.Probe, "PASS") {
					t.Fatalf("handover %+v, want to %s at %s with the probe's output", ho, exePath, c2)
				}
				if run := d.Status().LastRun; run.Result != string(ResultApplied) || run.Commit != c2 {
					t.Fatalf("handed over after a run %s at %s, want the move to %s", run.Result, run.Commit, c2)
				}
				return
			}
			move := waitRun(first.Finished)
			if move.Result != tc.wantResult || move.Commit != c2 {
				t.Fatalf("the move: %s at %s, want %s at %s", move.Result, move.Commit, tc.wantResult, c2)
			}
			// The move's run decided before the agent took this trigger.
			d.Trigger()
			if tc.handover == "the next run" {
				res := ended()
				var ho *Handover
				if !errors.As(res.err, &ho) {
					t.Fatalf("after the run that follows the failed move: Run returned %v, %v; want a *Handover", res.rep, res.err)
				}
				if run := d.Status().LastRun; run.Result != string(ResultUnchanged) || ho.Commit != c1 {
					t.Fatalf("handed over after a run %s, at %s; want after an unchanged run, at %s", run.Result, ho.Commit, c1)
				}
				return
			}
			waitRun(move.Finished)
			cancel()
			if res := ended(); res.err != nil || res.rep != nil {
				t.Fatalf("stopped: Run returned %v, %v; want no handover", res.rep, res.err)
			}
		})
	}
}
