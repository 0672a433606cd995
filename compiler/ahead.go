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
// every core: parsing the configuration files a few ahead of the walk, and
// hashing every source file as soon as a block names it.

// parsed is a file parsed ahead of need, or the reason it could not be.
type parsed struct {
	f   *syntax.File
	err error
}

// aheadFile is one file of the parse-ahead: waiting for a worker, being
// parsed, parsed (done is closed), or claimed by the walk before a worker
// started on it.
type aheadFile struct {
	state int
	done  chan struct{}
	r     parsed
}

const (
	aheadWaiting = iota
	aheadParsing
	aheadDone
	aheadClaimed
)

// aheadQueue is the parse-ahead of the configuration's files: workers
// parse them in order, but hold no more than a window of trees the walk
// has not taken yet (slots), so that a configuration's trees are never all
// in memory at once: they were the peak of a compile (25 MiB of trees for
// 10,000 resources, and 250 MiB for 100,000, all parsed before the walk
// began).
type aheadQueue struct {
	mu    sync.Mutex
	files map[string]*aheadFile
	// slots holds a token for each file a worker started and the walk has
	// not taken yet.
	slots chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// aheadWindow is how many files may be parsed ahead of the walk and not
// taken by it yet: one a worker, and one more, so that a worker finds the
// next file ready to start while the walk reads the last one it finished.
// (A variable for the tests: 0 parses nothing ahead.)
var aheadWindow = func() int { return runtime.GOMAXPROCS(0) + 1 }

// parseAhead starts parsing the *.cairn files beneath the configuration
// (but in directories whose names start with a dot, like .git and .cairn)
// on all cores, top-level files first, then in lexical order, no more than
// aheadWindow of them ahead of the walk, which takes the files it reads
// from here (take). The errors of a file the walk never reads are never
// reported. A file the walk needs before a worker started on it, the walk
// parses itself; one never taken holds its place in the window, so that
// reading the files in another order than the workers costs at most the
// window's trees and the parallelism, never more memory.
func (c *compiler) parseAhead() {
	var top, deeper []string
	fs.WalkDir(c.fsys, ".", func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // the walk reports what it needs
		switch {
		case err != nil:
			return nil
		case d.IsDir() && p != "." && strings.HasPrefix(d.Name(), "."):
			return fs.SkipDir
		case d.Type().IsRegular() && strings.HasSuffix(p, ".cairn"): // never a FIFO: reading it would hang
			if strings.Contains(p, "/") {
				deeper = append(deeper, p)
			} else {
				top = append(top, p)
			}
		}
		return nil
	})
	names := append(top, deeper...)
	q := &aheadQueue{files: make(map[string]*aheadFile, len(names)), slots: make(chan struct{}, aheadWindow()), stop: make(chan struct{})}
	for _, name := range names {
		q.files[name] = &aheadFile{done: make(chan struct{})}
	}
	c.ahead = q
	work := make(chan string)
	for range workers(len(names)) {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for name := range work {
				q.parse(c, name)
			}
		}()
	}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		defer close(work)
		for _, name := range names {
			select {
			case q.slots <- struct{}{}:
			case <-q.stop:
				return
			}
			select {
			case work <- name:
			case <-q.stop:
				return
			}
		}
	}()
}

// parse parses one file for the queue, unless the walk claimed it first.
func (q *aheadQueue) parse(c *compiler, name string) {
	a := q.files[name] // the map is not written after parseAhead
	q.mu.Lock()
	if a.state == aheadClaimed {
		q.mu.Unlock()
		<-q.slots // the walk parses it: the window's place is free again
		return
	}
	a.state = aheadParsing
	q.mu.Unlock()
	if c.ctx.Err() == nil {
		a.r.f, a.r.err = c.parseFile(name)
	} else {
		a.r.err = c.ctx.Err()
	}
	q.mu.Lock()
	a.state = aheadDone
	q.mu.Unlock()
	close(a.done)
}

// take returns the file parsed ahead, waiting for the worker parsing it;
// ok is false when the caller must parse it itself: no worker started on
// it (it is then never parsed ahead), or it is no file of the queue, or
// it was taken before.
func (q *aheadQueue) take(name string) (r parsed, ok bool) {
	if q == nil {
		return parsed{}, false
	}
	a := q.files[name]
	if a == nil {
		return parsed{}, false
	}
	q.mu.Lock()
	state := a.state
	if state == aheadWaiting {
		a.state = aheadClaimed
	}
	q.mu.Unlock()
	switch state {
	case aheadParsing, aheadDone:
		<-a.done
		r, a.r = a.r, parsed{}
		q.mu.Lock()
		a.state = aheadClaimed // taken: a second take parses it again
		q.mu.Unlock()
		<-q.slots
		return r, true
	}
	return parsed{}, false
}

// stopParsing stops the parse-ahead; it may be called twice.
func (c *compiler) stopParsing() {
	c.ahead.close()
	c.ahead = nil
}

// close stops the workers and waits for them; the trees they parsed and
// nobody took are dropped.
func (q *aheadQueue) close() {
	if q == nil {
		return
	}
	close(q.stop)
	q.wg.Wait()
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
