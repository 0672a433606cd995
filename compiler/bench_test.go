package compiler_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/bench/genconfig/gencfg"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/compiler/syntax"
)

// benchSizes are the repositories the compile benchmarks run on: N resource
// blocks in N/20 directories over 20 modules (bench/genconfig's shape).
var benchSizes = []struct {
	name string
	n    int
}{{"1k", 1000}, {"10k", 10000}, {"100k", 100000}}

// benchGenerate writes a generated repository of n resources into dir.
func benchGenerate(b *testing.B, dir string, n int) gencfg.Stats {
	b.Helper()
	st, err := gencfg.Generate(dir, gencfg.Params{Resources: n, Dirs: n / 20, Modules: 20})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// benchOptions compiles for gencfg's host with fixed facts, so that the
// figures do not depend on the machine.
func benchOptions(dir string) compiler.Options {
	return compiler.Options{
		Host:  gencfg.Host,
		Facts: map[string]string{"release": gencfg.Release, "codename": "bookworm", "arch": "amd64"},
		Blobs: compiler.BlobDir(filepath.Join(dir, ".cairn", "blobs")),
		Dir:   dir,
	}
}

// BenchmarkCompile compiles generated repositories of 1k, 10k and 100k
// resources (100k is left out with -short), as `cairn compile` does but
// in-process: the repository on disk through os.DirFS, the content blobs
// written to DIR/.cairn/blobs by an untimed first compile. resources/s
// counts resource blocks, those a when condition leaves out included.
func BenchmarkCompile(b *testing.B) {
	root := b.TempDir()
	made := map[string]gencfg.Stats{} // each size is generated once, for every -count
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			if testing.Short() && size.n > 10000 {
				b.Skip("-short: no 100k repository")
			}
			dir := filepath.Join(root, size.name)
			st, ok := made[size.name]
			if !ok {
				st = benchGenerate(b, dir, size.n)
				made[size.name] = st
			}
			ctx := context.Background()
			fsys := os.DirFS(dir)
			opts := benchOptions(dir)
			res, err := compiler.Compile(ctx, fsys, opts)
			if err != nil {
				b.Fatalf("compile %s: %v", size.name, err)
			}
			if len(res.Steps) != st.Steps {
				b.Fatalf("compile %s: %d steps, the generator expects %d", size.name, len(res.Steps), st.Steps)
			}
			for b.Loop() {
				res, err := compiler.Compile(ctx, fsys, opts)
				if err != nil || len(res.Steps) != st.Steps {
					b.Fatalf("compile %s: %d steps, %v", size.name, len(res.Steps), err)
				}
			}
			b.ReportMetric(float64(st.Resources)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

// BenchmarkParse parses every .cairn file of the 10k repository with the
// syntax parser alone; the files are read before the timing starts.
func BenchmarkParse(b *testing.B) {
	dir := b.TempDir()
	st := benchGenerate(b, dir, 10000)
	type file struct{ name, src string }
	var files []file
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cairn") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, file{filepath.ToSlash(rel), string(data)})
		size += int64(len(data))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(files) != st.CairnFiles || size != st.CairnBytes {
		b.Fatalf("read %d .cairn files of %d bytes; the generator wrote %d of %d", len(files), size, st.CairnFiles, st.CairnBytes)
	}
	b.SetBytes(size)
	for b.Loop() {
		for _, f := range files {
			if _, err := syntax.Parse(f.name, f.src); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(st.Resources)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}
