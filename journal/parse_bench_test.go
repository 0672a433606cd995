package journal

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmarks of `cairn journal diff --plan` in-process: parse two
// journals of 100,000 steps that differ in 1% of their lines (scattered, see
// GenDiffJournals), and plan the move from one to the other. bench/run.sh
// times the whole process against GNU diff.

var bench100k = sync.OnceValues(func() (old, new []byte) {
	o, n := GenDiffJournals(1, 100_000, 0.01)
	return []byte(strings.Join(o, "\n") + "\n"), []byte(strings.Join(n, "\n") + "\n")
})

func mustParse(b *testing.B, name string, data []byte) *Journal {
	b.Helper()
	j, err := Parse(name, data)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return j
}

// cpuTime returns the CPU time the process has used so far, of all its
// threads (the collector's too).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time of each round since cpuTime gave since:
// unlike the time on the clock, the load of other processes on the
// machine moves it little.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-since)/float64(b.N), "cpu-ns/op")
}

func reportSteps(b *testing.B, steps int) {
	b.ReportMetric(float64(steps)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkParse100k parses one journal of 100,000 steps.
func BenchmarkParse100k(b *testing.B) {
	data, _ := bench100k()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var j *Journal
	for b.Loop() {
		j = mustParse(b, "old.journal", data)
	}
	if len(j.Steps) != 100_000 {
		b.Fatalf("parsed %d steps, want 100000", len(j.Steps))
	}
	reportSteps(b, len(j.Steps))
}

// BenchmarkMakePlan100k plans the move between two parsed journals: the
// canonical forms, the line diff, the fusion into updates and the ops.
func BenchmarkMakePlan100k(b *testing.B) {
	od, nd := bench100k()
	old, new := mustParse(b, "old.journal", od), mustParse(b, "new.journal", nd)
	b.ReportAllocs()
	var p *Plan
	for b.Loop() {
		p = MakePlan(old.Steps, new.Steps)
	}
	checkPlan100k(b, p)
	reportSteps(b, len(old.Steps)+len(new.Steps))
}

// BenchmarkParsePlan100k is what `journal diff --plan` does between reading
// the files and printing: parse both, then plan.
func BenchmarkParsePlan100k(b *testing.B) {
	od, nd := bench100k()
	b.SetBytes(int64(len(od) + len(nd)))
	b.ReportAllocs()
	var p *Plan
	for b.Loop() {
		old, new := mustParse(b, "old.journal", od), mustParse(b, "new.journal", nd)
		p = MakePlan(old.Steps, new.Steps)
	}
	checkPlan100k(b, p)
	reportSteps(b, 200_000)
}

// checkPlan100k fails the benchmark if the plan is not the one the 1% of
// scattered changes call for: some updates, inverses and forwards, and no
// more ops than about 1% of the lines each way.
func checkPlan100k(b *testing.B, p *Plan) {
	b.Helper()
	count := map[Action]int{}
	for _, op := range p.Ops {
		count[op.Action]++
	}
	if count[Update] == 0 || count[Inverse] == 0 || count[Forward] == 0 {
		b.Fatalf("plan ops by action %v: want updates, inverses and forwards", count)
	}
	if len(p.Removed) > 2000 || len(p.Added) > 2000 {
		b.Fatalf("plan removes %d and adds %d steps: too many for 1%% of 100k lines", len(p.Removed), len(p.Added))
	}
	b.ReportMetric(float64(len(p.Ops)), "ops")
}

// BenchmarkParsePairPlan100k is BenchmarkParsePlan100k through PlanPair,
// as `journal diff --plan` does: only the lines whose text is not in both
// journals are parsed, and the diff runs on the ids of the lines' texts.
// The journals have no source comments, like bench/gen's -bare ones: short
// lines, where the costs of each line weigh most.
func BenchmarkParsePairPlan100k(b *testing.B) {
	od, nd := bench100k()
	// Converted once: a copy of both texts in every round would be a
	// quarter of the time measured, and `journal diff` copies nothing.
	old, new := string(od), string(nd)
	b.SetBytes(int64(len(od) + len(nd)))
	b.ReportAllocs()
	var p *Plan
	cpu := cpuTime(b)
	for b.Loop() {
		var ok bool
		p, ok = PlanPair("old.journal", old, "new.journal", new, nil)
		if !ok {
			b.Fatal("PlanPair: not ok")
		}
	}
	reportCPU(b, cpu)
	checkPlan100k(b, p)
	reportSteps(b, 200_000)
}
