package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/internal/atomicfile"
)

type fmtCmd struct {
	Check bool     `help:"Only list the files that are not formatted; exit 1 if there are any."`
	Paths []string `arg:"" optional:"" name:"PATH" help:"Files, or directories to search for *.cairn files (default: .)."`
}

// Run formats configuration files in place, or with --check lists the ones
// that would change. A file that does not parse is reported and left alone.
func (c *fmtCmd) Run(e *env) error {
	paths := c.Paths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []string
	for _, p := range paths {
		found, err := cairnFiles(p)
		if err != nil {
			return &exitError{code: exitBadInput, err: err}
		}
		files = append(files, found...)
	}
	bad, changed := false, false
	for _, name := range files {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		src, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			bad = true
			continue
		}
		out, err := syntax.FormatSource(name, string(src))
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			bad = true
			continue
		}
		if bytes.Equal(out, src) {
			continue
		}
		changed = true
		if c.Check {
			fmt.Fprintln(e.stdout, name)
			continue
		}
		info, err := os.Stat(name)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(name, out, info.Mode().Perm()); err != nil {
			return fmt.Errorf("fmt: %w", err)
		}
	}
	switch {
	case bad:
		return exitCode(exitBadInput)
	case changed && c.Check:
		return exitCode(exitDiffers)
	}
	return nil
}

// cairnFiles returns p if it is a file, or every *.cairn file beneath the
// directory p in lexical order, skipping .git and .cairn directories.
func cairnFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != p && (d.Name() == ".git" || d.Name() == ".cairn") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".cairn") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New(p + ": no *.cairn file here")
	}
	return out, nil
}
