package compiler

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestParseAheadWindow compiles a configuration whose module calls read
// the files in another order than the parse-ahead's workers do (the
// modules are called in reverse, one twice, and files no call reads lie
// about, one of them broken), with windows from none to more than the
// files: every compile gives the same journal, the broken file that
// nobody reads is never reported, and no worker outlives its compile.
func TestParseAheadWindow(t *testing.T) {
	dir := t.TempDir()
	var site strings.Builder
	site.WriteString("variable \"root\" {\n  default = \"/srv\"\n}\n")
	files := map[string]string{"unused/broken.cairn": "x = = 1\n", "unused/fine.cairn": "dir \"/x\" {}\n"}
	const modules = 12
	for i := modules - 1; i >= 0; i-- {
		fmt.Fprintf(&site, "module \"m%02d\" {\n  source = \"modules/m%02d\"\n  root   = \"${var.root}/m%02d\"\n}\n", i, i, i)
		files[fmt.Sprintf("modules/m%02d/main.cairn", i)] = fmt.Sprintf(
			"variable \"root\" {}\ndir \"${var.root}\" {}\nfile \"${var.root}/a\" {\n  content = \"m%02d\\n\"\n}\n", i)
		files[fmt.Sprintf("modules/m%02d/more.cairn", i)] = "dir \"${var.root}/d\" {}\n"
	}
	site.WriteString("module \"again\" {\n  source = \"modules/m03\"\n  root   = \"/again\"\n}\n")
	files["site.cairn"] = site.String()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer func(w func() int) { aheadWindow = w }(aheadWindow)
	before := runtime.NumGoroutine()
	var first []byte
	for _, window := range []int{0, 1, 2, 3, 100} {
		aheadWindow = func() int { return window }
		res, err := Compile(context.Background(), os.DirFS(dir), Options{Host: "web-01", Dir: dir})
		if err != nil {
			t.Fatalf("window %d: %v", window, err)
		}
		if got := len(res.Steps); got != 3*(modules+1) {
			t.Errorf("window %d: %d steps, want %d", window, got, 3*(modules+1))
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

// TestParseAheadTake checks the queue's hand-over on its own: a file the
// walk claims before a worker starts on it is parsed by the walk (take
// says so) and skipped by the workers, a file taken twice is parsed again
// the second time, and a file of no queue is the walk's to parse.
func TestParseAheadTake(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.cairn", "b.cairn", "c.cairn"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("dir \"/"+name+"\" {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer func(w func() int) { aheadWindow = w }(aheadWindow)
	aheadWindow = func() int { return 1 }
	c := &compiler{ctx: context.Background(), fsys: os.DirFS(dir)}
	c.parseAhead()
	defer c.stopParsing()
	// With a window of one, a worker parses a.cairn, then waits for the
	// walk to take it before it starts on b.cairn: c.cairn is claimed
	// first, so the walk parses it itself.
	if _, ok := c.ahead.take("c.cairn"); ok {
		t.Error("take(c.cairn) before any worker reached it: the queue handed a tree over")
	}
	<-c.ahead.files["a.cairn"].done
	r, ok := c.ahead.take("a.cairn")
	if !ok || r.err != nil || r.f == nil || r.f.Name != "a.cairn" {
		t.Fatalf("take(a.cairn) = %v, %v, %v", r.f, r.err, ok)
	}
	<-c.ahead.files["b.cairn"].done // started once a.cairn was taken
	r, ok = c.ahead.take("b.cairn")
	if !ok || r.err != nil || r.f == nil || r.f.Name != "b.cairn" {
		t.Fatalf("take(b.cairn) = %v, %v, %v", r.f, r.err, ok)
	}
	if _, ok := c.ahead.take("a.cairn"); ok {
		t.Error("a.cairn taken twice from the queue")
	}
	if _, ok := c.ahead.take("nowhere.cairn"); ok {
		t.Error("take of a file the queue does not hold succeeded")
	}
}
