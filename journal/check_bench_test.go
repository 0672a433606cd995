package journal

import (
	"strconv"
	"strings"
	"testing"
)

// The static checks cost O(total bytes of the paths), whatever the depth:
// ns/pathbyte stays flat from depth 100 to 2,000 (2,000 nested MKDIRs hold
// 4 MB of paths). Before the paths were indexed by component, each
// ancestor of each path was hashed in full, and 2,000 nested MKDIRs took
// 24 s.

// nestedJournal is depth MKDIRs, each beneath the one before: /d, /d/d, ...
func nestedJournal(depth int) []byte {
	var b strings.Builder
	p := ""
	for range depth {
		p += "/d"
		b.WriteString("MKDIR " + p + "\n")
	}
	return []byte(b.String())
}

func benchmarkCheck(b *testing.B, data []byte) {
	j, err := Parse("bench.journal", data)
	if err != nil {
		b.Fatal(err)
	}
	pathBytes := 0
	for i := range j.Steps {
		pathBytes += len(j.Steps[i].Object())
	}
	b.ResetTimer()
	for b.Loop() {
		if errs := Check(j.Steps); errs.HasErrors() {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(pathBytes), "ns/pathbyte")
}

func BenchmarkCheckNested(b *testing.B) {
	for _, depth := range []int{100, 1000, 2000} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) { benchmarkCheck(b, nestedJournal(depth)) })
	}
}

// BenchmarkCheckDeepPath checks one MKDIR of the longest path allowed,
// 2,047 components deep, after the MKDIRs of all its ancestors.
func BenchmarkCheckDeepPath(b *testing.B) {
	benchmarkCheck(b, nestedJournal(MaxPath/2))
}

// BenchmarkParseLongPath parses a MKDIR of a 64 KB path, which is refused
// at once (it took 8 s to check before paths were capped and indexed).
func BenchmarkParseLongPath(b *testing.B) {
	data := []byte("MKDIR " + strings.Repeat("/a", 32<<10) + "\n")
	for b.Loop() {
		if _, err := Parse("bench.journal", data); err == nil {
			b.Fatal("a 64 KB path was accepted")
		}
	}
}
