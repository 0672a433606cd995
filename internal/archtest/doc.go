// Package archtest holds tests of the project's shape: which package may
// import which (design.md), and that every package says what it is for. It
// has no code of its own.
package archtest
