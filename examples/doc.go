// Package examples holds the example configuration repositories a new user
// can copy (webserver, monitoring, fleet) and the hand-written journal
// example (journal). It has no code of its own: its test compiles every
// example configuration and checks the journal it gives.
package examples
