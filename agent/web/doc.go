// Package web is the agent's HTTP side (spec §6): the handler that serves
// the metrics, the health check, the status document, the trigger and a
// small page for people, and the server that runs it with TLS and basic
// auth from a Prometheus web-config file.
//
// # Endpoints
//
// [Handler] answers:
//
//	GET  /metrics  the Prometheus text format, from Options.Gatherer
//	GET  /healthz  200 "ok" while Options.Alive says the run loop is alive; 503 otherwise
//	GET  /status   the status document (package agent/status), JSON
//	POST /trigger  202; calls Options.Trigger, which starts a run or queues one
//	GET  /         an HTML page: a verdict (converged, or what is wrong),
//	               host, group, branch, applied and target commit, state
//	               and since when, held, drift, the last runs and the bad
//	               commits, and links to /metrics and /status
//
// Every GET also answers HEAD. A method a path does not take gets 405 with
// an Allow header; any other path gets 404. The answers of /healthz,
// /status and / are not cached.
//
// The page is made with html/template, which escapes every value of the
// document for where it stands, so a host name, a diff or an error text
// holding markup shows as text. It has no scripts and loads nothing from
// elsewhere: its Content-Security-Policy forbids both ("default-src
// 'none'"), allowing only its inline style and its empty data: icon (which
// keeps a browser from asking for /favicon.ico and logging the 404). It
// reloads itself every 30 seconds with a meta refresh, and says when it
// was made and how long ago each time it shows was. Tests load it in a
// real headless Chromium (internal/browsertest) and fail on any console
// error, uncaught exception, failed load or CSP violation.
//
// # Serving
//
// [Serve] listens on an address and serves a handler until its context is
// done, through github.com/prometheus/exporter-toolkit:
//
//  1. It checks the web-config file (TLS certificate and key, client CAs,
//     basic-auth users with bcrypt hashes; the format Prometheus and its
//     exporters read), and fails at once if the file is wrong.
//  2. It opens the listener, and fails if it cannot; port 0 picks a free
//     port.
//  3. It calls its ready function with the address it listens on (the
//     daemon tells systemd READY=1 after it; tests learn the port), and
//     serves. The web-config file is read again for each new connection, so
//     a renewed certificate needs no restart.
//  4. When the context is done it shuts the server down: no new
//     connections, running requests finish within [ShutdownTimeout], then
//     it returns nil.
//
// An empty address is an error: the daemon does not call Serve when
// --listen is "".
package web
