// Command gen writes the inputs of cairn's benchmarks, deterministically:
// the same arguments give the same bytes on every machine.
//
//	gen tree N DIR            N files of 1 KiB in max(1, N/20) directories under DIR
//	                          (DIR/dDDDD/fIIIII.txt, dirs 0755, files 0644), the
//	                          same bytes as /work/shared/bench/gen.py's src-N
//	gen journal [-o FILE] PREFIX SRC
//	                          a journal that makes the object path PREFIX hold SRC's
//	                          tree: MKDIR PREFIX, then, in lexical order, MKDIR for
//	                          every directory and COPY (sha256 of the file) for
//	                          every file, SRC paths relative to SRC
//	gen diff [-seed S] [-rate R] [-bare] N DIR
//	                          DIR/a.journal and DIR/b.journal: N steps each (about),
//	                          b differing from a in R (default 0.01) of its lines,
//	                          scattered: changed hashes, changed modes, inserted and
//	                          deleted steps; each line ends in a source comment
//	                          as the compiler writes it, unless -bare
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
}

const usage = `usage:
  gen tree N DIR
  gen journal [-o FILE] PREFIX SRC
  gen diff [-seed S] [-rate R] [-bare] N DIR`

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fl := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "tree":
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		n, err := count(fl, 2)
		if err != nil {
			return err
		}
		return writeTree(n, fl.Arg(1))
	case "journal":
		out := fl.String("o", "", "write the journal to `FILE` (default: stdout)")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		if fl.NArg() != 2 {
			return errors.New(usage)
		}
		return writeJournal(*out, fl.Arg(0), fl.Arg(1))
	case "diff":
		seed := fl.Uint64("seed", 1, "random seed")
		rate := fl.Float64("rate", 0.01, "share of lines that differ")
		bare := fl.Bool("bare", false, "write no source comments")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		n, err := count(fl, 2)
		if err != nil {
			return err
		}
		return writeDiff(n, *rate, *seed, *bare, fl.Arg(1))
	}
	return errors.New(usage)
}

func count(fl *flag.FlagSet, nargs int) (int, error) {
	if fl.NArg() != nargs {
		return 0, errors.New(usage)
	}
	n, err := strconv.Atoi(fl.Arg(0))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("the count N: want a number, got %q", fl.Arg(0))
	}
	return n, nil
}

// perDir is the number of files per directory, as in gen.py.
const perDir = 20

// Content returns file i's 1024 bytes: 16 lines of the first 63 hex digits
// of sha256("i:line") and a newline, as gen.py writes them.
func Content(i int) []byte {
	out := make([]byte, 0, 1024)
	for ln := range 16 {
		sum := sha256.Sum256([]byte(strconv.Itoa(i) + ":" + strconv.Itoa(ln)))
		out = append(out, hex.EncodeToString(sum[:])[:63]...)
		out = append(out, '\n')
	}
	return out
}

// writeTree writes gen.py's layout: file i in directory i/20 (the last
// directory takes the rest).
func writeTree(n int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	ndirs := max(1, n/perDir)
	if n == 0 {
		ndirs = 0
	}
	for d := range ndirs {
		p := filepath.Join(dir, fmt.Sprintf("d%04d", d))
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	for i := range n {
		d := min(i/perDir, ndirs-1)
		p := filepath.Join(dir, fmt.Sprintf("d%04d/f%05d.txt", d, i))
		if err := os.WriteFile(p, Content(i), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeJournal walks src in lexical order (a directory before its entries)
// and writes one step per entry.
func writeJournal(out, prefix, src string) error {
	if !strings.HasPrefix(prefix, "/") || prefix == "/" || filepath.Clean(prefix) != prefix {
		return fmt.Errorf("PREFIX %q: want an absolute, clean path other than /", prefix)
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	buf := make([]byte, 64<<10)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		obj := prefix
		if rel != "." {
			obj = prefix + "/" + rel
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := uint32(info.Mode().Perm())
		switch {
		case d.IsDir():
			fmt.Fprintf(bw, "MKDIR %s%s\n", quote(obj), modeAttr(perm, 0o755))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "SYMLINK %s %s\n", quote(target), quote(obj))
		case d.Type().IsRegular():
			sum, err := hashFile(p, buf)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "COPY %s %s%s sha256=%s\n", quote(rel), quote(obj), modeAttr(perm, 0o644), sum)
		default:
			return fmt.Errorf("%s: not a file, directory or link", p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		return f.Close()
	}
	return nil
}

func hashFile(p string, buf []byte) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func modeAttr(perm, def uint32) string {
	if perm == def {
		return ""
	}
	return fmt.Sprintf(" mode=%04o", perm)
}

// quote writes a word bare where it can be, else as a Go quoted string.
func quote(w string) string {
	if w == "" || w[0] == '#' || strings.ContainsAny(w, " \t\"=\\\n\r\v\f") {
		return strconv.Quote(w)
	}
	for _, r := range w {
		if r < ' ' || r == 0x7f || !strconv.IsPrint(r) {
			return strconv.Quote(w)
		}
	}
	return w
}

// writeDiff writes two journals that look like a compiler's output (a MKDIR
// per directory, then its files, every step with its source position) and
// differ in about rate*n lines, at random places: a third of the changes give
// a file new content (a new sha256), a sixth a new mode, a quarter remove a
// file and a quarter add one.
func writeDiff(n int, rate float64, seed uint64, bare bool, dir string) error {
	rng := rand.New(rand.NewPCG(seed, 0x6361_6972_6e2d_6265))
	hexsum := func() string {
		var b [32]byte
		for i := 0; i < len(b); i += 8 {
			x := rng.Uint64()
			for k := range 8 {
				b[i+k] = byte(x >> (8 * k))
			}
		}
		return hex.EncodeToString(b[:])
	}
	type step struct {
		dir, file int // file < 0: the MKDIR of dir
		sum, mode string
	}
	line := func(s step) string {
		if bare && s.file < 0 {
			return fmt.Sprintf("MKDIR /srv/app/d%05d\n", s.dir)
		}
		if bare {
			return fmt.Sprintf("COPY files/d%05d/f%07d.conf /srv/app/d%05d/f%07d.conf%s sha256=%s\n",
				s.dir, s.file, s.dir, s.file, s.mode, s.sum)
		}
		if s.file < 0 {
			return fmt.Sprintf("MKDIR /srv/app/d%05d # site.cairn:%d:3\n", s.dir, 10+s.dir)
		}
		// Canonical form, attributes sorted, as the compiler writes it.
		return fmt.Sprintf("COPY files/d%05d/f%07d.conf /srv/app/d%05d/f%07d.conf%s sha256=%s # site.cairn:%d:5 > modules/app/main.cairn:%d:3\n",
			s.dir, s.file, s.dir, s.file, s.mode, s.sum, 10+s.dir, 20+s.file%perDir)
	}
	modes := []string{"", "", "", "", " mode=0600", " mode=0640", " mode=0755"}
	old := make([]step, 0, n)
	file := 0
	for d := 0; len(old) < n; d++ {
		old = append(old, step{dir: d, file: -1})
		for k := 0; k < perDir-1 && len(old) < n; k++ {
			old = append(old, step{dir: d, file: file, sum: hexsum(), mode: modes[rng.IntN(len(modes))]})
			file++
		}
	}
	const (
		keep = iota
		newSum
		newMode
		drop
		insert // a new file after this one
	)
	action := make([]uint8, len(old))
	for want := int(rate * float64(n)); want > 0; {
		i := rng.IntN(len(old))
		if action[i] != keep || old[i].file < 0 {
			continue
		}
		switch r := rng.IntN(12); {
		case r < 4:
			action[i] = newSum
		case r < 6:
			action[i] = newMode
		case r < 9:
			action[i] = drop
		default:
			action[i] = insert
		}
		want--
	}
	a, err := os.Create(filepath.Join(dir, "a.journal"))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := os.Create(filepath.Join(dir, "b.journal"))
	if err != nil {
		return err
	}
	defer b.Close()
	aw, bw := bufio.NewWriterSize(a, 256<<10), bufio.NewWriterSize(b, 256<<10)
	for i, s := range old {
		aw.WriteString(line(s))
		switch action[i] {
		case keep:
			bw.WriteString(line(s))
		case newSum:
			s.sum = hexsum()
			bw.WriteString(line(s))
		case newMode:
			if s.mode == "" {
				s.mode = " mode=0600"
			} else {
				s.mode = ""
			}
			bw.WriteString(line(s))
		case insert:
			bw.WriteString(line(s))
			bw.WriteString(line(step{dir: s.dir, file: file, sum: hexsum()}))
			file++
		}
	}
	for _, w := range []*bufio.Writer{aw, bw} {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if err := a.Close(); err != nil {
		return err
	}
	return b.Close()
}
