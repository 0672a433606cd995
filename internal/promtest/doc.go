// Package promtest runs a real Prometheus server for tests: the Debian
// package's /usr/bin/prometheus, on a free loopback port, with its
// configuration and storage in the test's temporary directory, scraping the
// targets the test names every second (job "cairn") and evaluating the rule
// files it names every second. The targets are read from a file that
// Prometheus watches (file_sd), so that a test can add a target while
// Prometheus runs (Server.SetTargets); discovery passes a change on within
// about 5 seconds.
//
// Without the program the test skips, unless the environment variable CI is
// "true", where a missing program is a failure. The server stops at the
// test's cleanup, and its log is written to the test's output when the test
// failed.
//
// Tests only: no package of the program imports it.
package promtest
