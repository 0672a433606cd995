package journal

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Pos is a position in a file: line and column are 1-based, and the column
// counts bytes.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats p as FILE:LINE:COL.
func (p Pos) String() string {
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Attr is one KEY=VALUE attribute of a step, its value in canonical form.
type Attr struct {
	Key   string
	Value string
}

// Step is one parsed line of a journal. Args and Attrs hold canonical values;
// Attrs is sorted by key and leaves out attributes equal to their default.
type Step struct {
	Op    string
	Args  []string
	Attrs []Attr
	// Pos is where the step stands in its journal file.
	Pos Pos
	// Source holds the source positions of the trailing comment, outermost
	// first, as the compiler wrote them ("site.cairn:4:1 > web.cairn:9:3").
	Source string

	// canon caches the canonical form of a parsed step. Steps are values
	// that are not changed after parsing; one built by hand has none.
	canon string
}

// Signature returns the step's row of the table of kinds. It is nil only for
// a Step built by hand with an unknown op.
func (s *Step) Signature() *Signature { return Lookup(s.Op) }

// Lookup returns the value of attribute key as given in the journal; ok is
// false when the attribute is absent (defaults are not filled in).
func (s *Step) Lookup(key string) (value string, ok bool) {
	for _, a := range s.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// Get returns the value of attribute key, or its default.
func (s *Step) Get(key string) string {
	if v, ok := s.Lookup(key); ok {
		return v
	}
	if sig := s.Signature(); sig != nil {
		if spec := sig.Attr(key); spec != nil {
			return spec.Default
		}
	}
	return ""
}

// Object returns the path, name or unit the step manages, or "" for steps of
// kinds that manage nothing.
func (s *Step) Object() string {
	sig := s.Signature()
	if sig == nil || sig.Family == "" || sig.IdentityArg >= len(s.Args) {
		return ""
	}
	return s.Args[sig.IdentityArg]
}

// Path returns the object path of a step (§2): the managed path of MKDIR,
// COPY, SYMLINK and RM, the creates of EXEC, the target of CHECK file; "" if
// it has none.
func (s *Step) Path() string {
	switch s.Op {
	case OpMkdir, OpRm, OpCopy, OpSymlink:
		return s.Args[len(s.Args)-1]
	case OpExec:
		return s.Get("creates")
	case OpCheck:
		if s.Args[0] == "file" {
			return s.Args[1]
		}
	}
	return ""
}

// Identity returns the step's identity, FAMILY:OBJECT (§2), or "" if the step
// manages no object and may repeat.
func (s *Step) Identity() string {
	sig := s.Signature()
	if sig == nil || sig.Family == "" {
		return ""
	}
	return sig.Family + ":" + s.Args[sig.IdentityArg] // one allocation, as AppendIdentity to nil would make two
}

// AppendIdentity appends Identity to b: a key to look an identity up
// with (m[string(b)] makes no string), where Identity makes one.
func (s *Step) AppendIdentity(b []byte) []byte {
	sig := s.Signature()
	if sig == nil || sig.Family == "" {
		return b
	}
	return append(append(append(b, sig.Family...), ':'), s.Args[sig.IdentityArg]...)
}

// Canonical returns the canonical form of the step (§1): op, positional
// arguments, attributes sorted by key, single spaces, no comment. Two steps
// are the same step when their canonical forms are equal.
func (s *Step) Canonical() string {
	if s.canon != "" {
		return s.canon
	}
	return string(s.appendCanonical(make([]byte, 0, len(s.Op)+16*len(s.Args)+24*len(s.Attrs))))
}

func (s *Step) appendCanonical(b []byte) []byte {
	b = append(b, s.Op...)
	for _, a := range s.Args {
		b = append(b, ' ')
		b = appendWord(b, a, true)
	}
	for _, a := range s.Attrs {
		b = append(b, ' ')
		b = append(b, a.Key...)
		b = append(b, '=')
		b = appendWord(b, a.Value, false)
	}
	return b
}

// String returns the canonical form followed by the source positions as a
// comment, as `journal show` prints a step.
func (s *Step) String() string {
	if s.Source == "" {
		return s.Canonical()
	}
	return s.Canonical() + " # " + s.Source
}

// AppendString appends String's text to b, without the string String
// allocates for each step.
func (s *Step) AppendString(b []byte) []byte {
	if s.canon != "" {
		b = append(b, s.canon...)
	} else {
		b = s.appendCanonical(b)
	}
	if s.Source != "" {
		b = append(b, " # "...)
		b = append(b, s.Source...)
	}
	return b
}

// appendWord appends w bare where a bare word can hold it, else quoted as
// strconv.Quote does.
func appendWord(b []byte, w string, positional bool) []byte {
	if isBare(w, positional) {
		return append(b, w...)
	}
	return strconv.AppendQuote(b, w)
}

// isBare reports whether w can be written as a bare word: not empty, no
// white space or control character, no quote, not starting with '#', no '='
// in a positional argument, and only printable, valid UTF-8 beyond ASCII.
func isBare(w string, positional bool) bool {
	if w == "" || w[0] == '#' {
		return false
	}
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case c <= ' ' || c == '"' || c == 0x7f || (positional && c == '='):
			return false
		case c >= utf8.RuneSelf:
			return bareUnicode(w[i:], positional)
		}
	}
	return true
}

// bareUnicode is isBare's slow path for words beyond ASCII.
func bareUnicode(w string, positional bool) bool {
	for _, r := range w {
		switch {
		case r <= ' ' || r == '"' || r == 0x7f || (positional && r == '='):
			return false
		case r >= utf8.RuneSelf && (r == utf8.RuneError || unicode.IsSpace(r) || !strconv.IsPrint(r)):
			return false
		}
	}
	return true
}
