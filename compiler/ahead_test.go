package compiler

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// mapFS is a file system of files (path -> content).
func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

// TestParseAheadWindow compiles a configuration of module calls (in
// another order than the directories', one module called twice, one call
// whose condition is false, one whose source is interpolated, and files no
// call reads, one of them broken) with windows from none to more than the
// files: every compile gives the same journal, the broken file nobody reads
// is never reported, and no worker outlives its compile.
func TestParseAheadWindow(t *testing.T) {
	var site strings.Builder
	site.WriteString("variable \"root\" {\n  default = \"/srv\"\n}\nvariable \"mod\" {\n  default = \"m05\"\n}\n")
	files := map[string]string{"unused/broken.cairn": "x = = 1\n", "unused/fine.cairn": "dir \"/x\" {}\n"}
	const modules = 12
	for i := modules - 1; i >= 0; i-- {
		fmt.Fprintf(&site, "module \"m%02d\" {\n  source = \"modules/m%02d\"\n  root   = \"${var.root}/m%02d\"\n}\n", i, i, i)
		files[fmt.Sprintf("modules/m%02d/main.cairn", i)] = fmt.Sprintf(
			"variable \"root\" {}\ndir \"${var.root}\" {}\nfile \"${var.root}/a\" {\n  content = \"m%02d\\n\"\n}\n", i)
		files[fmt.Sprintf("modules/m%02d/more.cairn", i)] = "dir \"${var.root}/d\" {}\n"
	}
	site.WriteString("module \"again\" {\n  source = \"modules/m03\"\n  root   = \"/again\"\n}\n")
	site.WriteString("module \"off\" {\n  source = \"modules/off\"\n  when   = false\n}\n")
	site.WriteString("module \"interpolated\" {\n  source = \"modules/${var.mod}\"\n  root   = \"/i\"\n}\n")
	files["modules/off/main.cairn"] = "dir \"/off\" {}\n"
	files["site.cairn"] = site.String()
	fsys := mapFS(files)
	defer func(w func() int) { aheadWindow = w }(aheadWindow)
	before := runtime.NumGoroutine()
	var first []byte
	for _, window := range []int{0, 1, 2, 3, 100} {
		aheadWindow = func() int { return window }
		res, err := Compile(context.Background(), fsys, Options{Host: "web-01"})
		if err != nil {
			t.Fatalf("window %d: %v", window, err)
		}
		if got := len(res.Steps); got != 3*(modules+2) {
			t.Errorf("window %d: %d steps, want %d", window, got, 3*(modules+2))
		}
		text := res.Journal()
		if first == nil {
			first = text
		} else if !bytes.Equal(text, first) {
			t.Errorf("window %d: the journal differs from window 0's:\n%s\n--- window 0:\n%s", window, text, first)
		}
		// Every worker is gone once Compile returns: the goroutines
		// left are the test's own (and the runtime's, which settle).
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("window %d: %d goroutines after the compile, %d before", window, n, before)
		}
	}
}

// waitAdded waits until the queue's lister has entered name.
func waitAdded(t *testing.T, q *aheadQueue, name string) *aheadFile {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		q.mu.Lock()
		a := q.files[name]
		q.mu.Unlock()
		if a != nil {
			return a
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s never entered the queue", name)
	return nil
}

// TestParseAheadTake checks the queue's hand-over on its own: a file the
// walk claims before a worker starts on it is the walk's to parse (and the
// workers pass over it), one parsed is handed over once, a wanted
// directory's files are parsed, a forgotten one's free their places in
// the window, and a file of no wanted directory is the walk's.
func TestParseAheadTake(t *testing.T) {
	fsys := mapFS(map[string]string{
		"a.cairn": "dir \"/a\" {}\n", "b.cairn": "dir \"/b\" {}\n", "c.cairn": "dir \"/c\" {}\n",
		"m/x.cairn": "dir \"/x\" {}\n", "n/y.cairn": "dir \"/y\" {}\n", "n/z.cairn": "dir \"/z\" {}\n",
		"m2/w.cairn": "dir \"/w\" {}\n",
	})
	defer func(w func() int) { aheadWindow = w }(aheadWindow)
	aheadWindow = func() int { return 1 }
	c := &compiler{ctx: context.Background(), fsys: fsys}
	c.parseAhead()
	defer c.stopParsing()
	q := c.ahead
	// With a window of one, a worker parses a.cairn, then waits for the
	// walk to take it before it starts on b.cairn: c.cairn is claimed
	// first, so the walk parses it itself.
	if _, ok := q.take("c.cairn"); ok {
		t.Error("take(c.cairn) before any worker reached it: the queue handed a tree over")
	}
	<-waitAdded(t, q, "a.cairn").done
	r, ok := q.take("a.cairn")
	if !ok || r.err != nil || r.f == nil || r.f.Name != "a.cairn" {
		t.Fatalf("take(a.cairn) = %v, %v, %v", r.f, r.err, ok)
	}
	<-waitAdded(t, q, "b.cairn").done // started once a.cairn was taken
	if r, ok = q.take("b.cairn"); !ok || r.f == nil || r.f.Name != "b.cairn" {
		t.Fatalf("take(b.cairn) = %v, %v, %v", r.f, r.err, ok)
	}
	if _, ok := q.take("a.cairn"); ok {
		t.Error("a.cairn taken twice from the queue")
	}
	if _, ok := q.take("m/x.cairn"); ok {
		t.Error("take of a file of no wanted directory succeeded")
	}
	// n is wanted, then forgotten: its files hold no place in the window,
	// and m2's file, wanted after, is parsed.
	q.want("n")
	<-waitAdded(t, q, "n/y.cairn").done
	q.forget("n")
	q.want("m2")
	<-waitAdded(t, q, "m2/w.cairn").done
	if r, ok = q.take("m2/w.cairn"); !ok || r.f == nil || r.f.Name != "m2/w.cairn" {
		t.Fatalf("take(m2/w.cairn) after n was forgotten = %v, %v, %v", r.f, r.err, ok)
	}
	if _, ok := q.take("n/z.cairn"); ok {
		t.Error("a file of a forgotten directory was handed over")
	}
}

// gateFS is an fs.FS whose Open of gated waits until gate is closed.
type gateFS struct {
	fstest.MapFS
	gated string
	gate  chan struct{}
}

func (g gateFS) Open(name string) (fs.File, error) {
	if name == g.gated {
		<-g.gate
	}
	return g.MapFS.Open(name)
}

// TestParseAheadTakeWhileParsing checks that a file the walk takes while a
// worker parses it stays the walk's once the worker is done: the worker
// marked it parsed again, and a later forget of its directory (a call of
// the module whose condition is false, after a true one) took it a second
// time and waited for a place in the window that the first take had freed
// already: the compile hung, SIGTERM or not.
func TestParseAheadTakeWhileParsing(t *testing.T) {
	g := gateFS{MapFS: mapFS(map[string]string{"m/x.cairn": "dir \"/x\" {}\n"}), gated: "m/x.cairn", gate: make(chan struct{})}
	defer func(w func() int) { aheadWindow = w }(aheadWindow)
	aheadWindow = func() int { return 1 }
	c := &compiler{ctx: context.Background(), fsys: g}
	c.parseAhead()
	defer c.stopParsing()
	q := c.ahead
	q.want("m")
	state := func() int {
		q.mu.Lock()
		defer q.mu.Unlock()
		if a := q.files["m/x.cairn"]; a != nil {
			return a.state
		}
		return -1
	}
	waitState := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); state() != want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("state of m/x.cairn %d, want %d", state(), want)
			}
		}
	}
	waitState(aheadParsing)
	took := make(chan bool)
	go func() {
		r, ok := q.take("m/x.cairn")
		took <- ok && r.f != nil
	}()
	waitState(aheadClaimed)
	close(g.gate)
	if !<-took {
		t.Fatal("take of the file being parsed handed no tree over")
	}
	if got := state(); got != aheadClaimed {
		t.Errorf("state of the taken file %d, want aheadClaimed (%d)", got, aheadClaimed)
	}
	forgot := make(chan struct{})
	go func() { q.forget("m"); close(forgot) }()
	select {
	case <-forgot:
	case <-time.After(5 * time.Second):
		t.Fatal("forget of a directory whose file the walk took hangs")
	}
	if _, ok := q.take("m/x.cairn"); ok {
		t.Error("a file taken from the queue was handed over again")
	}
}

// TestParseAheadForgetBeforeAdd checks that a file of a directory given up
// (forget) after the lister read the directory but before it entered the
// file is not entered: parsed, it would never be taken and would keep its
// window place for the rest of the compile.
func TestParseAheadForgetBeforeAdd(t *testing.T) {
	defer func(w func() int) { aheadWindow = w }(aheadWindow)
	aheadWindow = func() int { return 1 }
	c := &compiler{ctx: context.Background(), fsys: mapFS(map[string]string{"top.cairn": "dir \"/x\" {}\n"})}
	c.parseAhead()
	defer c.stopParsing()
	q := c.ahead
	q.forget("m")
	if q.add("m/x.cairn") {
		t.Fatal("a file of a forgotten directory was entered into the parse-ahead")
	}
	if _, ok := q.take("m/x.cairn"); ok {
		t.Error("a file of a forgotten directory was handed over")
	}
}
