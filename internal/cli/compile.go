package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/debian"
)

// hostFlags say for which host configuration is compiled.
type hostFlags struct {
	Host  string   `help:"Compile for this host (default: this machine's host name)." placeholder:"NAME"`
	Group string   `help:"Put the host in this group, whatever the hosts block says." placeholder:"NAME"`
	Fact  []string `help:"Set a fact (repeatable): --fact release=12. Unset facts come from this machine." placeholder:"K=V"`
}

// options turns the flags into compiler options, with the facts of this
// machine beneath those given.
func (f *hostFlags) options() (compiler.Options, error) {
	opts := compiler.Options{Host: f.Host, Group: f.Group, Facts: map[string]string{}}
	if opts.Host == "" {
		h, err := debian.Hostname("/")
		if err != nil {
			return opts, &exitError{code: exitBadInput, err: fmt.Errorf("no --host and no host name: %w", err)}
		}
		opts.Host = h
	}
	local, err := debian.Facts("/")
	if err != nil {
		return opts, err
	}
	for k, v := range local {
		opts.Facts[k] = v
	}
	for _, kv := range f.Fact {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return opts, &exitError{code: exitBadInput, err: fmt.Errorf("--fact %q: want NAME=VALUE", kv)}
		}
		switch k {
		case "hostname", "group", "branch":
			return opts, &exitError{code: exitBadInput, err: fmt.Errorf("--fact %s: set it with --host or --group", k)}
		}
		opts.Facts[k] = v
	}
	return opts, nil
}

// configDir splits PATH into the configuration directory and, when PATH is
// a file, that one file.
func configDir(p string) (dir, file string, err error) {
	info, err := os.Stat(p)
	if err != nil {
		return "", "", &exitError{code: exitBadInput, err: err}
	}
	if info.IsDir() {
		return p, "", nil
	}
	return filepath.Dir(p), filepath.Base(p), nil
}

type compileCmd struct {
	hostFlags
	Blobs string `help:"Write rendered content here, a file per sha256 (default: PATH/.cairn/blobs)." placeholder:"DIR"`
	Path  string `arg:"" optional:"" default:"." help:"The configuration: a directory, or one file."`
}

// Run compiles the configuration and prints the journal.
func (c *compileCmd) Run(e *env) error {
	res, _, err := compileAt(e, &c.hostFlags, c.Path, true, c.Blobs)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(e.stderr, w)
	}
	return res.WriteJournal(e.stdout)
}

// compileAt compiles the configuration at path on disk (a directory, or
// one file of it). With writeBlobs, rendered content goes to blobs, or by
// default to DIR/.cairn/blobs; without, nowhere. It returns the
// configuration's directory too; findings are exit 2.
func compileAt(e *env, hf *hostFlags, path string, writeBlobs bool, blobs string) (*compiler.Result, string, error) {
	defer lessGC()()
	dir, file, err := configDir(path)
	if err != nil {
		return nil, "", err
	}
	opts, err := hf.options()
	if err != nil {
		return nil, "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	switch {
	case !writeBlobs:
		blobs = ""
	case blobs == "":
		blobs = filepath.Join(dir, ".cairn", "blobs")
	}
	opts.Dir, opts.File, opts.Env = abs, file, os.Environ()
	if blobs != "" {
		opts.Blobs = compiler.BlobDir(blobs)
	}
	res, err := compiler.Compile(e.ctx, os.DirFS(dir), opts)
	if err != nil {
		return nil, "", &exitError{code: exitBadInput, err: err}
	}
	return res, dir, nil
}

// lessGC makes the collector run less often while a compile holds its
// syntax trees, which are live until the journal is printed: at the
// default setting a compile of 10,000 blocks spent a quarter of its time
// collecting. A soft memory limit keeps the heap of a huge configuration
// in bounds. It returns the function that restores both.
func lessGC() (restore func()) {
	gc := debug.SetGCPercent(400)
	limit := debug.SetMemoryLimit(1 << 30)
	return func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	}
}
