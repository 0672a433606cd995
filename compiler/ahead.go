package compiler

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
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
// parsed, parsed (done is closed), or claimed by the walk, which parses it
// itself or took it.
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

// aheadQueue is the parse-ahead of the configuration's files. The walk
// says which directories' files it will read (want: the top level at the
// start, a module's directory as soon as a call of it is read, long before
// the call is compiled), and workers parse their *.cairn files in that
// order, but hold no more than a window of trees the walk has not taken
// (slots): every file of the configuration was parsed before the walk
// began, and their trees were the peak of a compile (25 MiB of trees for
// 10,000 resources, 250 MiB for 100,000), and the directory walk that
// found them read every directory of the repository (a tenth of the
// compile's time) before the walk could start.
type aheadQueue struct {
	mu    sync.Mutex
	files map[string]*aheadFile
	dirs  map[string]bool // the directories wanted so far
	// forgotten are the directories given up (forget): a file of theirs
	// the lister finds only now, having read the directory before the
	// forget, is not parsed, as it would keep its window place for good.
	forgotten map[string]bool
	todo      []string      // wanted directories the lister has not read
	wake      chan struct{} // a directory was added to todo
	// slots holds a token for each file a worker started and the walk has
	// not taken yet.
	slots chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
	taken int // files handed over to the walk, for the tests
}

// aheadWindow is how many files may be parsed ahead of the walk and not
// taken by it yet: one a worker, and one more, so that a worker finds the
// next file ready to start while the walk reads the last one it finished.
// (A variable for the tests: 0 parses nothing ahead.)
var aheadWindow = func() int { return runtime.GOMAXPROCS(0) + 1 }

// parseAhead starts the parse-ahead (aheadQueue) with the top level of the
// configuration wanted: a lister that reads each wanted directory and
// hands its *.cairn files to workers on all cores. The walk takes the
// files it reads from here (take); one it needs before a worker started
// on it, it parses itself, so that a wrong guess costs parallelism, never
// memory, and the errors of a file the walk never reads are never
// reported.
func (c *compiler) parseAhead() {
	q := &aheadQueue{files: map[string]*aheadFile{}, dirs: map[string]bool{}, forgotten: map[string]bool{}, wake: make(chan struct{}, 1),
		slots: make(chan struct{}, aheadWindow()), stop: make(chan struct{})}
	c.ahead = q
	work := make(chan string)
	for range runtime.GOMAXPROCS(0) {
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
		for {
			dir, ok := q.nextDir()
			if !ok {
				return
			}
			entries, _ := fs.ReadDir(c.fsys, dir) // the walk reports what it needs
			for _, e := range entries {
				// Regular files only: reading a FIFO would hang.
				if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".cairn") {
					continue
				}
				name := path.Join(dir, e.Name())
				if !q.add(name) {
					continue
				}
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
		}
	}()
	if c.opts.File == "" {
		q.want(".")
	}
}

// want asks for the *.cairn files of directory dir, a path of the
// repository, to be parsed ahead.
func (q *aheadQueue) want(dir string) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dirs[dir] {
		return
	}
	q.dirs[dir] = true
	q.todo = append(q.todo, dir)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// forget gives up the files of dir, which the walk will not read after
// all (a module call whose condition is false), so that they do not hold
// places in the window.
func (q *aheadQueue) forget(dir string) {
	if q == nil {
		return
	}
	q.mu.Lock()
	q.forgotten[dir] = true
	q.todo = slices.DeleteFunc(q.todo, func(d string) bool { return d == dir })
	var names []string
	for name := range q.files {
		if path.Dir(name) == dir {
			names = append(names, name)
		}
	}
	q.mu.Unlock()
	for _, name := range names {
		q.take(name) // nobody reads the tree: it is dropped
	}
}

// moduleDir returns the directory a module block's source names, when
// that is a literal string, for the parse-ahead.
func (c *compiler) moduleDir(s *scope, b *block) (string, bool) {
	it := b.attrs["source"]
	if it == nil || it.Value == nil {
		return "", false
	}
	e := it.Value
	if e.Right != nil || e.Left.Right != nil || e.Left.Left.Op != "" {
		return "", false
	}
	p := e.Left.Left.Left.Primary
	if p == nil || p.Str == nil || p.Str.Template == nil {
		return "", false
	}
	src, ok := p.Str.Template.Literal()
	if !ok {
		return "", false
	}
	dir, err := c.repoPath(s.file, src)
	return dir, err == nil
}

// nextDir waits for the next wanted directory; false once the queue stops.
func (q *aheadQueue) nextDir() (string, bool) {
	for {
		q.mu.Lock()
		if len(q.todo) > 0 {
			dir := q.todo[0]
			q.todo = q.todo[1:]
			q.mu.Unlock()
			return dir, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-q.stop:
			return "", false
		}
	}
}

// add enters a file into the queue, waiting; false when it is known
// already (wanted before, or claimed by the walk).
func (q *aheadQueue) add(name string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.files[name] != nil {
		return false
	}
	if q.forgotten[path.Dir(name)] {
		q.files[name] = &aheadFile{state: aheadClaimed}
		return false
	}
	q.files[name] = &aheadFile{done: make(chan struct{})}
	return true
}

// parse parses one file for the queue, unless the walk claimed it first.
func (q *aheadQueue) parse(c *compiler, name string) {
	q.mu.Lock()
	a := q.files[name]
	if a.state == aheadClaimed {
		q.mu.Unlock()
		q.free() // the walk parses it: the window's place is free again
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
	if a.state == aheadParsing { // not claimed by the walk meanwhile: a take while it was parsing made it the walk's for good
		a.state = aheadDone
	}
	q.mu.Unlock()
	close(a.done)
}

// take returns the file parsed ahead, waiting for the worker parsing it;
// ok is false when the caller must parse it itself: no worker started on
// it, or it was taken before. Either way the file is the walk's from here
// on: the queue never parses it again.
func (q *aheadQueue) take(name string) (r parsed, ok bool) {
	if q == nil {
		return parsed{}, false
	}
	q.mu.Lock()
	a := q.files[name]
	if a == nil {
		q.files[name] = &aheadFile{state: aheadClaimed}
		q.mu.Unlock()
		return parsed{}, false
	}
	state := a.state
	a.state = aheadClaimed
	q.mu.Unlock()
	if state != aheadParsing && state != aheadDone {
		return parsed{}, false
	}
	<-a.done
	r, a.r = a.r, parsed{}
	q.free()
	q.mu.Lock()
	q.taken++
	q.mu.Unlock()
	return r, true
}

// free gives a file's place in the window back. It never waits: every
// place it frees was taken by the worker that parsed the file, and should
// a bookkeeping error ever free one twice, the window is one place larger
// for the rest of the compile; a receive that waited would hang the
// compile, deaf to its context.
func (q *aheadQueue) free() {
	select {
	case <-q.slots:
	default:
	}
}

// stopParsing stops the parse-ahead; it may be called twice.
func (c *compiler) stopParsing() {
	c.ahead.close()
	c.ahead = nil
}

// close stops the lister and the workers and waits for them; the trees
// they parsed and nobody took are dropped.
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
