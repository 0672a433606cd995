package compiler

import (
	"fmt"
	"time"

	"github.com/alecthomas/participle/v2/lexer"
)

// The limits of one compile. Configuration is trusted to say what a host
// should be, not to exhaust the machine that compiles it: every input and
// every way of multiplying work is bounded, and past a bound the compile
// fails with an error naming the file and line that crossed it, within
// seconds. The figures are far above what real configurations need (the
// 100,000-resource benchmark repository stays below each, most by an order
// of magnitude); they are documented in docs/language.md (Limits) and
// docs/security.md.
const (
	// MaxInputSize is the most a file the compiler reads into memory may
	// hold: a *.cairn file, a template, the file of file(). Files copied
	// with source are hashed as they are read, and have no such bound.
	MaxInputSize = 16 << 20

	// MaxTextSize is the longest string an expression may build
	// (interpolation, join, lower, upper), the most one template may
	// render or any function inside it return, and the most a list or
	// object may hold (its strings' bytes and 16 for each element, nested
	// values counted in full).
	MaxTextSize = 16 << 20

	// MaxEvalWork bounds the work of evaluation in one compile, in bytes:
	// every byte of a string that interpolation, a function or a template
	// builds or writes, every byte file() reads or a comparison compares,
	// and 16 for every list or object element built, compared (==, !=,
	// contains) or handed to a template.
	MaxEvalWork = 256 << 20

	// MaxTemplateSteps is how many steps the templates of one compile may
	// take: each range iteration, each template call ({{template}}) and
	// each call of a function counts one.
	MaxTemplateSteps = 1_000_000

	// MaxTemplateDepth is how deep template calls may nest.
	MaxTemplateDepth = 100

	// MaxTemplateNesting is how deep a template's actions may nest:
	// {{if}}, {{range}}, {{with}}, {{block}}, {{define}}, and each
	// {{else if}} and {{else with}} of a chain.
	MaxTemplateNesting = 100

	// MaxModuleCalls is how many module calls one compile may expand; a
	// module called from a module called twice counts twice.
	MaxModuleCalls = 10_000

	// MaxBlocks is how many blocks one compile may walk, counting a
	// module's blocks once for each call of it: 2.5 times the 100,000
	// resources of the largest benchmark, reached in about ten seconds.
	MaxBlocks = 250_000

	// MaxJournalSize is the most the compiled journal's steps may hold, in
	// bytes of their arguments and attributes.
	MaxJournalSize = 256 << 20

	// PluginTimeout is how long a plugin may run before it and everything
	// it started are killed.
	PluginTimeout = 60 * time.Second

	// MaxPluginOutput is the most a plugin may print on its standard
	// output; past it the plugin is killed. Its standard error is kept up
	// to maxPluginStderr bytes, for the message.
	MaxPluginOutput = 64 << 20
)

// elemWeight is what a list or object element counts for against
// MaxTextSize and MaxEvalWork: walking one costs about as much as copying
// 16 bytes.
const elemWeight = 16

// maxPluginStderr is how much of a plugin's standard error an error quotes.
const maxPluginStderr = 4 << 10

// sizeText writes a limit in bytes the way the documentation does.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// limitError is work that passed one of the limits. spent is set when it
// is the evaluation budget and its error was returned before: the compile
// reports it once.
type limitError struct {
	msg   string
	spent bool
}

func (e *limitError) Error() string { return e.msg }

// charge charges n units of work to the evaluation budget (MaxEvalWork).
func (c *compiler) charge(n int) error {
	if c.work += int64(n); c.work <= MaxEvalWork {
		return nil
	}
	e := &limitError{msg: fmt.Sprintf("evaluation passes its limit of %s of strings built and values compared in one compile", sizeText(MaxEvalWork)), spent: c.workSpent}
	c.workSpent = true
	return e
}

// spend charges n units of evaluation work for an expression at pos. Past
// the limit it returns an error at pos, once; every later charge returns
// errReported, which adds nothing to the list.
func (s *scope) spend(pos lexer.Position, n int) error {
	err := s.c.charge(n)
	if err == nil {
		return nil
	}
	if le := err.(*limitError); le.spent {
		return errReported
	}
	return s.errorf(pos, "%v", err)
}

// checkText refuses a string of n bytes before it is built.
func (s *scope) checkText(pos lexer.Position, what string, n int) error {
	if n > MaxTextSize {
		return s.errorf(pos, "%s: the result would be %d bytes, more than the %s a string may hold", what, n, sizeText(MaxTextSize))
	}
	return s.spend(pos, n)
}

// checkValue refuses a list or object whose weight (Value.weight) passes
// MaxTextSize: walking it, comparing it or handing it to a template would
// cost more than any string may.
func (s *scope) checkValue(pos lexer.Position, what string, weight int) error {
	if weight > MaxTextSize {
		return s.errorf(pos, "the %s would hold more than %s, counting its strings' bytes and 16 for each element, nested values in full", what, sizeText(MaxTextSize))
	}
	return s.spend(pos, 0)
}
