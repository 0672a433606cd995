// Package journal is cairn's low-level language: a plain-text list of atomic
// steps, one a line, that describes the whole managed state of one host.
//
// The package owns the syntax and nothing of the host:
//
//  1. the table of step signatures (arguments, attributes and their defaults,
//     identity family), in signature.go;
//  2. parsing with FILE:LINE:COL errors and printing in canonical form;
//  3. INCLUDE expansion with cycle detection;
//  4. the static checks of the spec (§4);
//  5. the line diff of two journals and the plan that moves a host from one
//     to the other (§5), computed as data and rendered elsewhere.
//
// The contract is ../shared/spec/journal.md; section numbers in comments refer
// to it.
package journal
