package steps_test

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashKillInFlight kills cold applies of more ops than one batch
// holds (maxBatch, 1024, in the binary), so that a batch runs in flight
// while the next one's images are taken and logged: the intent log then
// holds records of ops that never ran. Whatever the moment, the next
// command recovers the host to exactly the tree before the move (or
// leaves it at the new one, where the move had committed). The
// random-kill scenarios of TestCrashRandomKill hold a few hundred ops, one
// batch: no flight.
func TestCrashKillInFlight(t *testing.T) {
	crashNeedRoot(t)
	if testing.Short() {
		t.Skip("kills moves of 3,000 ops")
	}
	base := crashBaseDir(t)
	src := filepath.Join(base, "src")
	if err := os.MkdirAll(filepath.Join(src, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	content := []byte("new content\n")
	if err := os.WriteFile(filepath.Join(src, "files/x"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256hex(string(content))
	const dirs, perDir = 6, 500
	var lines []string
	for d := range dirs {
		if d%2 == 1 {
			lines = append(lines, fmt.Sprintf("MKDIR /srv/d%d", d))
		}
		for k := range perDir {
			lines = append(lines, fmt.Sprintf("COPY files/x /srv/d%d/f%d sha256=%s", d, k, sum))
		}
	}
	newJ := filepath.Join(src, "new.journal")
	if err := os.WriteFile(newJ, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The host: the even directories exist, and every third file in them
	// holds something the undo must give back.
	makeHost := func(dir string) crashHost {
		h := crashHost{root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
		for d := 0; d < dirs; d += 2 {
			p := filepath.Join(h.root, fmt.Sprintf("srv/d%d", d))
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < perDir; k += 3 {
				if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("f%d", k)), []byte(fmt.Sprintf("old %d %d\n", d, k)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		return h
	}
	// A whole apply, to know how long one takes.
	ref := makeHost(filepath.Join(base, "ref"))
	start := time.Now()
	crashMust(t, 0, ref.args("journal", "apply", newJ)...)
	took := time.Since(start)
	refNew := crashSnapshot(t, ref.root)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	trials, inFlight, committed, twoBatches := 60, 0, 0, 0
	for trial := range trials {
		h := makeHost(filepath.Join(base, fmt.Sprintf("host%d", trial)))
		before := crashSnapshot(t, h.root)
		cmd := crashStart(t, h.args("journal", "apply", newJ)...)
		// Once the move has begun (its intent log is there), a moment
		// into it.
		intent := filepath.Join(h.state, "intent.log")
		for deadline := time.Now().Add(took); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := os.Stat(intent); err == nil {
				break
			}
		}
		delay := time.Duration(rng.Int63n(int64(60 * time.Millisecond)))
		time.Sleep(delay)
		if !crashKill(t, cmd) {
			continue
		}
		if data, err := os.ReadFile(intent); err == nil {
			inFlight++
			// More records than one batch: the first ran (in flight, or
			// done) while the second was logged.
			if strings.Count(string(data), `"t":"op"`) > 1024 {
				twoBatches++
			}
		}
		show := crashRun(t, h.args("journal", "show")...)
		after := crashSnapshot(t, h.root)
		if len(crashDiff(after, refNew, 1)) == 0 {
			committed++
			continue // killed once the move had committed
		}
		if d := crashDiff(before, after, 10); len(d) > 0 {
			t.Fatalf("trial %d (killed %v after the intent log appeared): after the kill and recovery the tree is not what it was:\n%s\n%s", trial, delay, strings.Join(d, "\n"), show.stderr)
		}
		if tmp := crashTemps(t, h.root); len(tmp) > 0 {
			t.Fatalf("trial %d (killed %v after the intent log appeared): temporary files left: %v", trial, delay, tmp)
		}
		os.RemoveAll(filepath.Join(base, fmt.Sprintf("host%d", trial)))
	}
	t.Logf("%d of %d kills left an intent log (%d with more than one batch logged), %d of them once the move had committed (one whole apply took %v)", inFlight, trials, twoBatches, committed, took)
	if twoBatches == 0 {
		t.Errorf("no kill came while a second batch was logged: no recovery from a move with a batch in flight was tested")
	}
}
