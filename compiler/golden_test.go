package compiler_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/cairn-cm/cairn/compiler"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/compiler/*.txtar from the actual output")

// defaultArgs are the compile flags of an archive without an args section.
const defaultArgs = "--host web-01 --fact release=12 --fact codename=bookworm --fact arch=amd64"

// The sections of a golden archive that are not configuration files.
const (
	secArgs    = "args"
	secJournal = "journal"
	secErrors  = "errors"
	secBlobs   = "blobs"
)

// TestGolden compiles every testdata/compiler/*.txtar at the root of the
// repository. An archive holds the configuration's files, an optional args
// section (compile flags), and either the journal it compiles to or the
// errors it fails with; an optional blobs section lists the blob files the
// compile writes. go test ./compiler -run Golden -update rewrites the
// expected sections from the actual output.
func TestGolden(t *testing.T) {
	names, err := filepath.Glob("../testdata/compiler/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no golden archives in testdata/compiler")
	}
	for _, name := range names {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".txtar"), func(t *testing.T) {
			runGolden(t, name)
		})
	}
}

func runGolden(t *testing.T, name string) {
	ar, err := txtar.ParseFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	dir := t.TempDir()
	for _, f := range ar.Files {
		switch f.Name {
		case secArgs, secJournal, secErrors, secBlobs:
			sections[f.Name] = string(f.Data)
			continue
		}
		writeArchiveFile(t, dir, f)
	}
	_, wantJournal := sections[secJournal]
	_, wantErrors := sections[secErrors]
	if wantJournal == wantErrors && !*update {
		t.Fatalf("%s: give exactly one of the journal and errors sections", name)
	}
	args, ok := sections[secArgs]
	if !ok {
		args = defaultArgs
	}
	opts, err := parseArgs(args)
	if err != nil {
		t.Fatalf("%s: args: %v", name, err)
	}
	opts.Dir = dir
	opts.Blobs = compiler.BlobDir(filepath.Join(t.TempDir(), "blobs"))
	opts.Env = []string{"PATH=/usr/bin:/bin"}

	res, cerr := compiler.Compile(context.Background(), os.DirFS(dir), opts)
	got := map[string]string{}
	if cerr != nil {
		// A plugin's error may name its absolute path; the archive cannot.
		got[secErrors] = strings.ReplaceAll(cerr.Error(), dir, "$WORK") + "\n"
	} else {
		got[secJournal] = string(res.Journal())
	}
	blobs := listBlobs(t, string(opts.Blobs.(compiler.BlobDir)))
	if _, ok := sections[secBlobs]; ok || blobs != "" {
		got[secBlobs] = blobs
	}

	if *update {
		rewriteArchive(t, name, ar, got)
		return
	}
	for _, sec := range []string{secJournal, secErrors, secBlobs} {
		want, wok := sections[sec]
		have, hok := got[sec]
		if sec == secBlobs && !wok {
			continue // blobs are checked only where the archive lists them
		}
		switch {
		case wok && !hok && sec == secJournal:
			t.Errorf("compile failed, want a journal:\n%s", got[secErrors])
		case wok && !hok && sec == secErrors:
			t.Errorf("compile succeeded, want errors:\n%s\ngot journal:\n%s", want, got[secJournal])
		case wok && want != have:
			t.Errorf("%s differs:\n--- got\n%s--- want\n%s", sec, have, want)
		}
	}
}

// writeArchiveFile writes one configuration file of an archive beneath dir;
// a script (a file starting with #!) is made executable.
func writeArchiveFile(t *testing.T, dir string, f txtar.File) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o644)
	if bytes.HasPrefix(f.Data, []byte("#!")) {
		mode = 0o755
	}
	if err := os.WriteFile(p, f.Data, mode); err != nil {
		t.Fatal(err)
	}
}

// parseArgs reads compile flags: --host NAME, --group NAME, --fact K=V.
func parseArgs(text string) (compiler.Options, error) {
	opts := compiler.Options{Facts: map[string]string{}}
	words := strings.Fields(text)
	for i := 0; i < len(words); i++ {
		flagName := words[i]
		if i+1 == len(words) {
			return opts, fmt.Errorf("%s wants a value", flagName)
		}
		i++
		v := words[i]
		switch flagName {
		case "--host":
			opts.Host = v
		case "--group":
			opts.Group = v
		case "--fact":
			k, val, ok := strings.Cut(v, "=")
			if !ok {
				return opts, fmt.Errorf("--fact %s: want NAME=VALUE", v)
			}
			opts.Facts[k] = val
		default:
			return opts, fmt.Errorf("unknown flag %s", flagName)
		}
	}
	return opts, nil
}

// listBlobs returns the names of the files in the blob directory, one a
// line, sorted.
func listBlobs(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Name())
		b.WriteByte('\n')
	}
	return b.String()
}

// rewriteArchive replaces the expected sections of an archive with got,
// keeping its comment, args and configuration files in place.
func rewriteArchive(t *testing.T, name string, ar *txtar.Archive, got map[string]string) {
	t.Helper()
	files := slices.DeleteFunc(slices.Clone(ar.Files), func(f txtar.File) bool {
		return f.Name == secJournal || f.Name == secErrors || f.Name == secBlobs
	})
	for _, sec := range []string{secJournal, secErrors, secBlobs} {
		if text, ok := got[sec]; ok {
			files = append(files, txtar.File{Name: sec, Data: []byte(text)})
		}
	}
	ar.Files = files
	if err := os.WriteFile(name, txtar.Format(ar), 0o644); err != nil {
		t.Fatal(err)
	}
}
