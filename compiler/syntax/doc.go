// Package syntax reads the cairn configuration language: a hand-written
// lexer feeding a participle grammar, the syntax tree with a position on
// every node, string templates with ${...} interpolation, and the canonical
// formatter that keeps comments. It knows nothing of what blocks mean; the
// compiler gives them meaning. docs/language.md is the reference.
package syntax
