// Package gencfg writes synthetic cairn configuration repositories for
// benchmarks of the compiler, deterministically: the same Params give the
// same bytes on every machine.
//
// A repository has a top-level site.cairn (a hosts block, a few variables,
// two resources of its own and one call of every module, each with inputs)
// and modules under modules/mNN/, each a main.cairn of dir and file blocks
// with users, groups, packages and services sprinkled in, the files its
// file blocks copy (a few hundred bytes each) and two templates. Most file
// blocks copy a file of the module; some hold inline content with
// interpolations, some render a template; a few carry a when condition.
//
// Used by the command bench/genconfig and by the compiler's benchmarks.
package gencfg
