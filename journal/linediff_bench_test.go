package journal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// GenDiffJournals returns two journals of about n steps each, the same for the
// same arguments, for benchmarks of the line diff. The journals look like a
// compiler's: directories of files, each directory a MKDIR followed by its
// COPY steps, with an EXEC and a CHECK that repeat (same text) every few
// hundred lines. new differs from old in about rate*n places, scattered: a
// quarter of them files whose content changed (a new sha256), a quarter new
// files, a quarter removed ones and a few steps moved elsewhere.
//
// To compare with another differ on whole files, write them one step a line
// (see TestDiffLinesDumpJournals).
func GenDiffJournals(seed uint64, n int, rate float64) (old, new []string) {
	rng := rand.New(rand.NewPCG(seed, 0x6361_6972_6e21))
	hex := func() string {
		const digits = "0123456789abcdef"
		var b [64]byte
		for i := 0; i < len(b); i += 16 {
			x := rng.Uint64()
			for k := range 16 {
				b[i+k] = digits[x&15]
				x >>= 4
			}
		}
		return string(b[:])
	}
	modes := []string{"", "", "", " mode=0600", " mode=0640", " mode=0755"}
	file := func(dir, f int) string {
		return fmt.Sprintf("COPY files/d%04d/f%05d.txt /srv/d%04d/f%05d.txt sha256=%s%s",
			dir, f, dir, f, hex(), modes[rng.IntN(len(modes))])
	}

	old = make([]string, 0, n)
	dir, f := 0, 0
	for len(old) < n {
		switch {
		case len(old)%40 == 0:
			dir++
			old = append(old, fmt.Sprintf("MKDIR /srv/d%04d", dir))
		case len(old)%500 == 250:
			old = append(old, `EXEC "systemctl daemon-reload" undo="systemctl daemon-reload"`)
		case len(old)%500 == 499:
			old = append(old, "CHECK tcp 127.0.0.1:8080 timeout=1m0s")
		default:
			f++
			old = append(old, file(dir, f))
		}
	}

	// What happens to each old line, and what comes before it in new.
	const (
		keep = iota
		change
		drop
	)
	action := make([]uint8, n)
	before := make(map[int][]string)
	for range int(rate * float64(n)) {
		i := rng.IntN(n)
		if action[i] != keep {
			continue
		}
		switch r := rng.IntN(100); {
		case r < 27:
			if strings.HasPrefix(old[i], "COPY ") {
				action[i] = change
			}
		case r < 54:
			f++
			before[i] = append(before[i], file(dir-rng.IntN(dir), f))
		case r < 81:
			action[i] = drop
		default: // move
			action[i] = drop
			to := rng.IntN(n + 1)
			before[to] = append(before[to], old[i])
		}
	}
	new = make([]string, 0, n+n/50)
	for i, s := range old {
		new = append(new, before[i]...)
		switch action[i] {
		case keep:
			new = append(new, s)
		case change:
			k := strings.Index(s, "sha256=") + len("sha256=")
			new = append(new, s[:k]+hex()+s[k+64:])
		}
	}
	new = append(new, before[n]...)
	return old, new
}

func benchmarkDiffLines(b *testing.B, n int) {
	old, new := GenDiffJournals(1, n, 0.01)
	b.ReportAllocs()
	var edits []Edit
	for b.Loop() {
		edits = DiffLines(old, new)
	}
	eq := 0
	for _, e := range edits {
		if e.Kind == Equal {
			eq++
		}
	}
	b.ReportMetric(float64(len(old)+len(new)-2*eq), "changed-lines")
}

func BenchmarkDiffLines10k(b *testing.B)  { benchmarkDiffLines(b, 10_000) }
func BenchmarkDiffLines100k(b *testing.B) { benchmarkDiffLines(b, 100_000) }
func BenchmarkDiffLines1M(b *testing.B)   { benchmarkDiffLines(b, 1_000_000) }

// TestDiffLinesDumpJournals writes the journals of BenchmarkDiffLines100k to
// $CAIRN_LINEDIFF_DUMP/{old,new}.journal (of $CAIRN_LINEDIFF_LINES lines if
// set), to time another differ on them:
//
//	CAIRN_LINEDIFF_DUMP=/tmp go test -run DumpJournals ./journal
//	time diff /tmp/old.journal /tmp/new.journal >/dev/null
func TestDiffLinesDumpJournals(t *testing.T) {
	dir := os.Getenv("CAIRN_LINEDIFF_DUMP")
	if dir == "" {
		t.Skip("CAIRN_LINEDIFF_DUMP is not set")
	}
	n := 100_000
	if s := os.Getenv("CAIRN_LINEDIFF_LINES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	old, new := GenDiffJournals(1, n, 0.01)
	for name, lines := range map[string][]string{"old.journal": old, "new.journal": new} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
