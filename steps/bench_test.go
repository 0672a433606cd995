package steps_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// The applier's benchmarks on the layout of /work/shared/bench/gen.py: n
// files of 1 KiB in n/20 directories, a journal of MKDIR /dst, a MKDIR per
// directory and a COPY per file. bench/run.sh times the same work as whole
// processes, side by side with cp -a and a hashing floor.

const benchFiles = 10_000

// benchContent returns file i's 1024 bytes, as gen.py and bench/gen write
// them: 16 lines of the first 63 hex digits of sha256("i:line").
func benchContent(i int) []byte {
	out := make([]byte, 0, 1024)
	for ln := range 16 {
		sum := sha256.Sum256([]byte(strconv.Itoa(i) + ":" + strconv.Itoa(ln)))
		out = append(out, hex.EncodeToString(sum[:])[:63]...)
		out = append(out, '\n')
	}
	return out
}

// benchSource writes the source tree of n files into dir and returns the
// journal that makes /dst hold it.
func benchSource(b *testing.B, dir string, n int) []journal.Step {
	b.Helper()
	ndirs := max(1, n/20)
	var j strings.Builder
	j.WriteString("MKDIR /dst\n")
	for d := range ndirs {
		rel := fmt.Sprintf("d%04d", d)
		if err := os.Mkdir(filepath.Join(dir, rel), 0o755); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&j, "MKDIR /dst/%s\n", rel)
		for i := d * 20; i < n && (i < (d+1)*20 || d == ndirs-1); i++ {
			rel := fmt.Sprintf("d%04d/f%05d.txt", d, i)
			data := benchContent(i)
			if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
				b.Fatal(err)
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(&j, "COPY %s /dst/%s sha256=%x\n", rel, rel, sum)
		}
	}
	jn, err := journal.Parse("bench.journal", []byte(j.String()))
	if err != nil {
		b.Fatal(err)
	}
	return jn.Steps
}

// benchApply opens the state dir under root, applies steps and closes it.
// The work carries the profiler label bench=phase (goroutines it starts
// inherit it), so that a CPU profile of the timed runs alone is
//
//	go tool pprof -tagfocus bench=cold steps.test cpu.prof
func benchApply(b *testing.B, phase string, root *rootfs.Root, stateDir, source string, js []journal.Step, repair bool) *steps.Result {
	b.Helper()
	var res *steps.Result
	var err error
	pprof.Do(context.Background(), pprof.Labels("bench", phase), func(ctx context.Context) {
		var a *steps.Applier
		if a, err = steps.Open(ctx, steps.Options{Root: root, StateDir: stateDir, Create: true}); err != nil {
			return
		}
		defer a.Close()
		// The source is read as journal apply reads --source.
		var src *treefs.Dir
		if src, err = treefs.OpenDir(source); err != nil {
			return
		}
		defer src.Close()
		res, err = a.Apply(ctx, steps.Move{Journal: "bench.journal", Steps: js, Source: src, SourceName: source, Repair: repair})
	})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// peakHeap names the file where BenchmarkApplyCold10k writes the heap
// profile of the largest live heap of its timed moves:
//
//	go test ./steps -run '^$' -bench ApplyCold10k -benchtime 1x -memprofilerate 1 -peakheap peak.heap
//	go tool pprof -sample_index=inuse_space -top peak.heap
var peakHeap = flag.String("peakheap", "", "BenchmarkApplyCold10k: write the heap profile at the largest live heap of a move to `file`")

// watchPeakHeap writes the heap profile to file each time the live heap
// after a collection is the largest yet by 5%, until stop is called. A
// profile's in-use figures are those of a collection one or two cycles
// back, so it runs one first (as net/http/pprof's ?gc=1 does), and takes
// the live heap it leaves as the peak. It looks every millisecond, and
// the collections and profiles it adds cost time: it is for finding what
// is live, not for timing.
func watchPeakHeap(b *testing.B, file string) (stop func()) {
	b.Helper()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		for {
			metrics.Read(live)
			if v := live[0].Value.Uint64(); v > peak+peak/20 {
				runtime.GC()
				if err := writeHeapProfile(file); err != nil {
					b.Error(err)
					return
				}
				metrics.Read(live)
				peak = max(peak, live[0].Value.Uint64())
			}
			select {
			case <-done:
				b.Logf("peak live heap %.1f MiB: %s", float64(peak)/(1<<20), file)
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-exited }
}

func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func reportFiles(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkApplyCold10k applies the journal of 10,000 files to an empty root
// with a new state directory: Open, Apply (blob ingest, images, intent log,
// the writes, syncfs, commit) and Close. Making and removing the trees is
// not timed. With -peakheap FILE, FILE is the heap profile of the largest
// live heap (watchPeakHeap).
func BenchmarkApplyCold10k(b *testing.B) {
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	js := benchSource(b, src, benchFiles)
	if *peakHeap != "" {
		defer watchPeakHeap(b, *peakHeap)()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(tmp, "run"+strconv.Itoa(i))
		rootDir, stateDir := filepath.Join(dir, "root"), filepath.Join(dir, "state")
		if err := os.MkdirAll(rootDir, 0o755); err != nil {
			b.Fatal(err)
		}
		root, err := rootfs.Open(rootDir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res := benchApply(b, "cold", root, stateDir, src, js, false)
		b.StopTimer()
		if res.Ran != len(js) {
			b.Fatalf("ran %d ops, want %d", res.Ran, len(js))
		}
		last := filepath.Join(rootDir, "dst", fmt.Sprintf("d%04d/f%05d.txt", benchFiles/20-1, benchFiles-1))
		if got, err := os.ReadFile(last); err != nil || string(got) != string(benchContent(benchFiles-1)) {
			b.Fatalf("%s: after the apply: %v", last, err)
		}
		root.Close()
		// The trees stay until the end (b.TempDir), so that no removal of
		// thousands of files (its writeback; on ext4 without a journal, the
		// inode allocator skipping inodes freed in the last 30 s) falls
		// into the next timed run.
		b.StartTimer()
	}
	reportFiles(b, benchFiles)
}

// appliedNoopBench makes benchFiles source files and applies their journal
// to a new root: it returns the temporary directory, the source, the root
// (closed at the benchmark's end), the state directory and the steps.
func appliedNoopBench(b *testing.B) (tmp, src string, root *rootfs.Root, stateDir string, js []journal.Step) {
	b.Helper()
	tmp = b.TempDir()
	src, rootDir, stateDir := filepath.Join(tmp, "src"), filepath.Join(tmp, "root"), filepath.Join(tmp, "state")
	for _, d := range []string{src, rootDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	js = benchSource(b, src, benchFiles)
	root, err := rootfs.Open(rootDir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { root.Close() })
	benchApply(b, "setup", root, stateDir, src, js, false)
	return tmp, src, root, stateDir, js
}

// BenchmarkNoopRepair10k re-applies the applied journal of 10,000 files with
// Repair: the plan is empty, and every step's live state is checked (lstat,
// and the sha256 of every file).
func BenchmarkNoopRepair10k(b *testing.B) {
	_, src, root, stateDir, js := appliedNoopBench(b)
	b.ResetTimer()
	for b.Loop() {
		res := benchApply(b, "noop", root, stateDir, src, js, true)
		if res.Ran != 0 || len(res.Repaired) != 0 || !res.Plan.Empty() {
			b.Fatalf("no-op run: ran %d ops, repaired %d steps", res.Ran, len(res.Repaired))
		}
	}
	reportFiles(b, benchFiles)
}

// BenchmarkNoopProven10k runs `journal apply --repair` of the applied
// journal of 10,000 files as it runs once a no-op wrote its proof
// (steps.QuickNoop): every path is lstat'ed and compared with the proof,
// and neither journal is read. The count of checks never reaches a full
// one (a period of a billion runs).
func BenchmarkNoopProven10k(b *testing.B) {
	tmp, src, root, stateDir, js := appliedNoopBench(b)
	time.Sleep(100 * time.Millisecond) // the stat cache's racy margin
	// The journal file and the no-op that writes the proof.
	name := filepath.Join(tmp, "bench.journal")
	if err := os.WriteFile(name, []byte(strings.Join(journal.Canonicals(js), "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stamp := time.Now()
	info, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := os.ReadFile(name)
	a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: stateDir, Create: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Apply(context.Background(), steps.Move{Journal: name, Steps: js, Source: os.DirFS(src), Repair: true, JournalSum: fmt.Sprintf("%x", sha256.Sum256(data)), JournalInfo: info, JournalStamp: stamp}); err != nil {
		b.Fatal(err)
	}
	a.Close()
	opts := steps.Options{Root: root, StateDir: stateDir, RehashEvery: 1 << 30}
	b.ResetTimer()
	for b.Loop() {
		if !steps.QuickNoop(context.Background(), opts, steps.QuickMove{Journal: name}) {
			b.Fatal("not proven")
		}
	}
	reportFiles(b, benchFiles)
}
