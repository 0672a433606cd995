package compiler

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync"

	"github.com/cairn-cm/cairn/compiler/syntax"
)

// The walk of the configuration is one goroutine, since order matters
// there; what it will need and can be done out of order is done ahead, on
// every core: parsing every configuration file, and hashing every source
// file as soon as a block names it.

// parsed is a file parsed ahead of need, or the reason it could not be.
type parsed struct {
	f   *syntax.File
	err error
}

// parseAhead starts parsing every *.cairn file beneath the configuration
// (but in directories whose names start with a dot, like .git and .cairn)
// on all cores, before the walk, which takes the files it reads from here.
// The errors of a file the walk never reads are never reported. (Starting
// the walk at once and waiting only for the file it needs measured no
// faster on two cores, where the walk and the hashing compete with the
// parsing for the same cores.)
func (c *compiler) parseAhead() {
	var names []string
	fs.WalkDir(c.fsys, ".", func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // the walk reports what it needs
		switch {
		case err != nil:
			return nil
		case d.IsDir() && p != "." && strings.HasPrefix(d.Name(), "."):
			return fs.SkipDir
		case d.Type().IsRegular() && strings.HasSuffix(p, ".cairn"): // never a FIFO: reading it would hang
			names = append(names, p)
		}
		return nil
	})
	results := make([]parsed, len(names))
	parallel(len(names), func(_, i int) {
		if c.ctx.Err() == nil {
			results[i].f, results[i].err = c.parseFile(names[i])
		}
	})
	c.ahead = make(map[string]parsed, len(names))
	for i, name := range names {
		c.ahead[name] = results[i]
	}
}

// parseFile reads and parses one file of the repository.
func (c *compiler) parseFile(name string) (*syntax.File, error) {
	data, err := c.readInput(name)
	if err != nil {
		var ie *inputError
		if errors.As(err, &ie) {
			err = ie.reason
		}
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	return syntax.Parse(name, string(data))
}

// parallel runs fn(w, 0) ... fn(w, n-1) on every core and returns when all
// are done; w numbers the worker running it (0 to workers-1), for state a
// worker keeps from job to job.
func parallel(n int, fn func(w, i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := range workers(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(w, i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// workers is how many goroutines parallel starts for n jobs.
func workers(n int) int { return min(runtime.GOMAXPROCS(0), n) }

// hashAhead starts the workers that hash source files as the walk names
// them (want), so that hashing overlaps the walk instead of following it.
func (c *compiler) hashAhead() {
	wanted := make(chan []string, 64)
	c.wanted = wanted
	for range runtime.GOMAXPROCS(0) {
		c.hashers.Add(1)
		go func() {
			defer c.hashers.Done()
			buf := make([]byte, 32<<10)
			for batch := range wanted {
				for _, p := range batch {
					if c.ctx.Err() == nil {
						c.hashFileBuf(p, buf) //nolint:errcheck // hashAll reports it
					}
				}
			}
		}()
	}
}

// hashBatch is how many paths go to a hashing worker at once: one wake-up
// per path made the scheduler's churn cost more than the hashing saved.
const hashBatch = 128

// want asks for a source file's hash ahead of hashAll.
func (c *compiler) want(p string) {
	if c.wanted == nil {
		return
	}
	c.pending = append(c.pending, p)
	if len(c.pending) == hashBatch {
		c.wanted <- c.pending
		c.pending = make([]string, 0, hashBatch)
	}
}

// stopHashing hands over the last batch and waits for the hashing
// workers; it may be called twice.
func (c *compiler) stopHashing() {
	if c.wanted == nil {
		return
	}
	if len(c.pending) > 0 {
		c.wanted <- c.pending
		c.pending = nil
	}
	close(c.wanted)
	c.wanted = nil
	c.hashers.Wait()
}
