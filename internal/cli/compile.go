package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"

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

// lessGC sets the collector for a compile, which allocates several times
// what it keeps (about 75 MB for 10,000 resources, of which under 20 MB is
// live at any time): the heap may grow to five times what is live
// (GOGC=400: the default setting spent a quarter of a compile collecting),
// but the process's memory no further than compileHeapFloor, or than
// compileHeapRatio times the live heap once that is more. A gcTuner moves
// the soft memory limit after every collection to say so. An operator's
// setting wins over the one it names, as in journal apply (applyGC): with
// GOGC set the collector's percentage is theirs, with GOMEMLIMIT set the
// limit is theirs and no gcTuner moves it. It returns the function that
// restores the collector's settings.
func lessGC() (restore func()) {
	restoreGC := gcPercent(400)
	if os.Getenv("GOMEMLIMIT") != "" {
		return restoreGC
	}
	t := &gcTuner{floor: compileHeapFloor, ratio: compileHeapRatio}
	limit := debug.SetMemoryLimit(t.floor)
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stop = true
		restoreGC()
		debug.SetMemoryLimit(limit)
	}
}

// compileHeapFloor and compileHeapRatio bound a compile's memory: to the
// floor, or to ratio times the live heap once that is larger. (10,000
// resources peak at about 20 MB live, 100,000 at about 200 MB; the agent
// compiles on hosts that may have 512 MiB.) A ratio of 2 costs a 100,000-
// resource compile about 30% more CPU than GOGC=400 alone, 1.5 about 70%.
const (
	compileHeapFloor = 44 << 20
	compileHeapRatio = 2
)

// gcTuner sets the soft memory limit after every collection to
// max(floor, ratio × the live heap): a fixed limit would make the
// collector run without end once the live heap neared it, and a fixed
// GOGC lets a large heap grow to five times its size.
type gcTuner struct {
	floor int64
	ratio float64
	mu    sync.Mutex
	stop  bool // the compile is over: the settings are restored
}

// gcSentinel is the object whose finalizer runs after each collection.
// (It holds a pointer so that it is not put in a tiny block with others,
// which would keep it alive.)
type gcSentinel struct {
	_ *int
	_ [16]byte
}

// arm sets a finalizer that runs once the next collection is over, tunes,
// and arms the next.
func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if t.tune() {
			t.arm()
		}
	})
}

// tune sets the memory limit from the live heap the last collection
// found; it returns false once the compile is over.
func (t *gcTuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop {
		return false
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		debug.SetMemoryLimit(max(t.floor, int64(float64(s[0].Value.Uint64())*t.ratio)))
	}
	return true
}
