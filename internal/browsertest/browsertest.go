package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cairn-cm/cairn/internal/gittest"
)

// ExecPath is where Debian's chromium package installs the browser.
const ExecPath = "/usr/bin/chromium"

// Viewport is the size of the browser's window, in CSS pixels. The
// screenshot is as wide and as tall as the whole page.
const (
	ViewportWidth  = 1024
	ViewportHeight = 768
)

// settle is how long Load waits after the load event for what the browser
// does after it, such as asking for a favicon.
const settle = time.Second

// Page is what Chromium made of a URL.
type Page struct {
	// Status and Header are the HTTP answer of the page itself.
	Status int
	Header http.Header
	// Title is the document's title; Text is the text of its body as a
	// person reads it (HTMLElement.innerText).
	Title, Text string
	// Elements counts the elements of the document by tag name ("script",
	// "img", "a", ...).
	Elements map[string]int
	// Requests are the URLs the browser asked for, in order, the page's
	// own first.
	Requests []string
	// Problems are the console errors, uncaught exceptions and browser log
	// errors of the page (see the package doc), as text; Warnings are the
	// warnings. Both are empty for a page without fault.
	Problems, Warnings []string
	// Screenshot is the whole page as a PNG.
	Screenshot []byte
}

// Load loads url in a fresh headless Chromium and returns the page; it
// fails the test if the browser cannot start or load it, and skips the
// test when Chromium is not installed (fails it if CI is "true").
func Load(t testing.TB, url string) *Page {
	t.Helper()
	gittest.NeedTool(t, ExecPath)
	profile, err := os.MkdirTemp("", "browsertest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeProfile(t, profile) })

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ExecPath),
		chromedp.NoSandbox, // the tests run as root, where Chromium will not start with its sandbox
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	p := &Page{}
	var mu sync.Mutex
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		p.event(ev)
	}); err != nil {
		t.Fatalf("start %s: %v", ExecPath, err)
	}
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("chromium: load %s: %v", url, err)
	}
	time.Sleep(settle)

	p.Status = int(resp.Status)
	p.Header = http.Header{}
	for k, v := range resp.Headers {
		p.Header.Set(k, fmt.Sprint(v))
	}
	if p.Title, err = chromedp.Run(bctx, chromedp.Title()); err != nil {
		t.Fatalf("chromium: title of %s: %v", url, err)
	}
	if p.Text, err = chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err != nil {
		t.Fatalf("chromium: text of %s: %v", url, err)
	}
	if p.Elements, err = chromedp.Run(bctx, chromedp.Evaluate[map[string]int](countElements)); err != nil {
		t.Fatalf("chromium: elements of %s: %v", url, err)
	}
	if p.Screenshot, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatalf("chromium: screenshot of %s: %v", url, err)
	}
	cancelBrowser()
	mu.Lock()
	defer mu.Unlock()
	out := *p // a copy, in case the listener still gets a late event
	return &out
}

const countElements = `(() => {
	const n = {};
	for (const e of document.querySelectorAll("*")) n[e.localName] = (n[e.localName] || 0) + 1;
	return n;
})()`

// event records what the browser reports, under the caller's lock.
func (p *Page) event(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		msg := "console." + string(ev.Type) + ": " + args(ev.Args)
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			p.Problems = append(p.Problems, msg)
		case runtime.ConsoleAPICalledTypeWarning:
			p.Warnings = append(p.Warnings, msg)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		p.Problems = append(p.Problems, fmt.Sprintf("uncaught exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
	case *log.EventEntryAdded:
		e := ev.Entry
		msg := fmt.Sprintf("log (%s): %s", e.Source, e.Text)
		if e.URL != "" {
			msg += " [" + e.URL + "]"
		}
		switch e.Level {
		case log.EntryLevelError:
			p.Problems = append(p.Problems, msg)
		case log.EntryLevelWarning:
			p.Warnings = append(p.Warnings, msg)
		}
	case *network.EventRequestWillBeSent:
		p.Requests = append(p.Requests, ev.Request.URL)
	}
}

// args is the text of a console call's arguments: strings as they are,
// other values as JSON or as their description.
func args(objs []*runtime.RemoteObject) string {
	s := make([]string, 0, len(objs))
	for _, o := range objs {
		switch {
		case o.Type == runtime.RemoteObjectTypeString && len(o.Value) > 0:
			s = append(s, strings.Trim(string(o.Value), `"`))
		case len(o.Value) > 0:
			s = append(s, string(o.Value))
		default:
			s = append(s, o.Description)
		}
	}
	return strings.Join(s, " ")
}

// removeProfile removes the browser's profile directory; Chromium's child
// processes may still write into it for a moment after the browser stops.
func removeProfile(t testing.TB, dir string) {
	var err error
	for range 50 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("remove the browser profile: %v", err)
}
