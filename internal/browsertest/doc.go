// Package browsertest loads a page in a real headless Chromium for tests
// (Debian's chromium, at [ExecPath]), driven over the DevTools protocol
// with github.com/chromedp/chromedp, and reports what a person would see
// and what the browser complained about.
//
// # Use
//
//	p := browsertest.Load(t, "http://127.0.0.1:PORT/")
//	// p.Title, p.Text (the text a person reads), p.Elements["script"],
//	// p.Problems (console errors, uncaught exceptions, failed loads and
//	// Content-Security-Policy violations), p.Screenshot (a PNG)
//
// Load starts a browser for the one page, waits for its load event and
// for the browser to settle, reads the page, and stops the browser before
// it returns. The protocol is what lets a test see the console and the
// browser's log: chromium --dump-dom prints the document and nothing of
// what went wrong making it.
//
// A problem is any of:
//
//   - a call of console.error (runtime.consoleAPICalled of type error);
//   - an exception that nothing caught (runtime.exceptionThrown);
//   - an entry of the browser's log at level error (log.entryAdded): a
//     resource that failed to load, such as a favicon that answers 404, or
//     a load the page's Content-Security-Policy refused.
//
// Warnings are not problems; [Page.Warnings] holds them for the failure
// message.
//
// # Chromium
//
// The browser runs headless, with a fresh profile in a temporary
// directory, and without its sandbox (the tests run as root, where
// Chromium refuses to start with it). A test that needs Chromium skips
// when [ExecPath] is missing, unless CI is "true": then it fails, since CI
// installs the chromium package.
package browsertest
