// Package compiler turns a directory of cairn configuration into one host's
// journal. Its way through, one function each:
//
//  1. read the root configuration's files and its hosts block, and settle the
//     host's group and facts (hosts.go);
//  2. walk every unit — the root and each module call — in source order,
//     expanding includes, declaring variables, and evaluating each block's
//     `when` and attributes (load.go, eval.go, schema.go);
//  3. turn each resource into a node: its journal steps, what it provides
//     and what it needs (resources.go), splicing modules and plugin output
//     in place;
//  4. order the nodes: a stable topological sort that keeps source order
//     wherever the dependencies allow, and names every block of a cycle
//     (order.go);
//  5. check that no two blocks manage one object, run the journal's own
//     static checks, and return the steps, each with its chain of source
//     positions (compile.go).
//
// The compiler reads through io/fs, so a git revision compiles without a
// checkout; it writes nothing but blobs, through the Blobs interface.
// docs/language.md is the language's reference.
package compiler
