package journal

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Journal is a parsed journal file: its steps in file order, INCLUDE steps
// kept as steps until Expand splices them in.
type Journal struct {
	File  string
	Steps []Step
}

// ParseFile reads and parses the journal at name.
func ParseFile(name string) (*Journal, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return parseText(name, bytesToString(data))
}

// bytesToString views data as a string without copying it; data must not
// change afterwards, which holds for a buffer that only the caller has.
func bytesToString(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	return unsafe.String(&data[0], len(data))
}

// Parse parses a journal. file names it in positions. The error, if any, is
// an ErrorList with every malformed line.
func Parse(file string, data []byte) (*Journal, error) {
	return parseText(file, string(data))
}

// parseText parses a journal held in text; every word and canonical line of
// the result that needs no unquoting is a substring of it.
func parseText(file, text string) (*Journal, error) {
	// Count the lines (a fast scan): a guess too large costs more in
	// clearing and scanning a big slice than the count does.
	j := &Journal{File: file, Steps: make([]Step, 0, strings.Count(text, "\n")+1)}
	p := parser{file: file}
	lineNo := 0
	for len(text) > 0 {
		lineNo++
		var line string
		line, text = cutLine(text)
		if s, ok := p.parseLine(lineNo, line); ok {
			j.Steps = append(j.Steps, s)
		}
	}
	if len(p.errs) > 0 {
		return j, p.errs
	}
	return j, nil
}

// ParseStep parses a single step line, for tests and tools; pos is its
// position.
func ParseStep(pos Pos, line string) (Step, error) {
	p := parser{file: pos.File}
	s, ok := p.parseLine(pos.Line, line)
	if len(p.errs) > 0 {
		return s, p.errs
	}
	if !ok {
		return s, ErrorList{{Pos: pos, Msg: "no step on this line"}}
	}
	return s, nil
}

// ParseSteps parses lines that hold one step each, as a state directory
// stores an applied journal, sharing one parser's slabs. Line i is line i+1
// of name in positions; a blank or comment line is an error.
func ParseSteps(name string, lines []string) ([]Step, error) {
	p := parser{file: name}
	out := make([]Step, len(lines))
	for i, line := range lines {
		s, ok := p.parseLine(i+1, line)
		if !ok && len(p.errs) == 0 {
			p.errorf(i+1, 1, "no step on this line")
		}
		out[i] = s
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return out, nil
}

type parser struct {
	file string
	errs ErrorList
	toks []token // reused from line to line
	// Slabs that the Args and Attrs of many steps share, so that a step
	// costs a few allocations per thousand lines instead of a few each.
	args  []string
	attrs []Attr
	canon []byte // the canonical form of the step being built
}

func (p *parser) errorf(line, col int, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: Pos{p.file, line, col}, Msg: fmt.Sprintf(format, args...)})
}

// token is one word of a step line.
type token struct {
	col    int    // 1-based byte column of its first byte
	key    string // attribute key, "" for a positional word
	value  string // unquoted value
	quoted bool
	plain  bool // bare and printable ASCII: written the same in canonical form
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// parseLine parses one line; ok is false for blank, comment and bad lines.
func (p *parser) parseLine(lineNo int, line string) (Step, bool) {
	if i := strings.IndexByte(line, '\r'); i >= 0 {
		p.errorf(lineNo, i+1, "carriage return (\\r) in line: journals use \\n line ends only")
		return Step{}, false
	}
	if !utf8.ValidString(line) {
		col := 1
		for rest := line; len(rest) > 0; {
			r, n := utf8.DecodeRuneInString(rest)
			if r == utf8.RuneError && n <= 1 {
				break
			}
			rest = rest[n:]
			col += n
		}
		p.errorf(lineNo, col, "invalid UTF-8")
		return Step{}, false
	}
	toks, comment, body, ok := p.tokenize(lineNo, line)
	if !ok || len(toks) == 0 {
		return Step{}, false
	}
	return p.build(lineNo, toks, comment, body)
}

// tokenize splits a line into words and the trailing comment; body is the
// line without leading white space and without the comment, or "" if its
// words are not separated by single spaces.
func (p *parser) tokenize(lineNo int, line string) (toks []token, comment, body string, ok bool) {
	toks = p.toks[:0]
	defer func() { p.toks = toks[:0] }()
	i, n := 0, len(line)
	first, last := -1, 0
	single := true // words are separated by exactly one space
	for {
		ws := i
		for i < n && isSpace(line[i]) {
			i++
		}
		if len(toks) > 0 && i < n && line[i] != '#' && (i-ws != 1 || line[ws] != ' ') {
			single = false
		}
		if i >= n {
			break
		}
		if line[i] == '#' {
			comment = strings.TrimSpace(line[i+1:])
			break
		}
		start := i
		if first < 0 {
			first = start
		}
		t := token{col: start + 1}
		if line[i] == '"' {
			end, v, ok := p.quoted(lineNo, line, i)
			if !ok {
				return nil, "", "", false
			}
			t.value, t.quoted, i = v, true, end
		} else {
			t.plain = true
			for ; i < n && !isSpace(line[i]) && line[i] != '"'; i++ {
				if c := line[i]; c < ' ' || c >= 0x7f {
					t.plain = false
				}
			}
			word := line[start:i]
			if eq := strings.IndexByte(word, '='); eq >= 0 {
				t.key = word[:eq]
				if !validKey(t.key) {
					p.errorf(lineNo, start+1, "invalid attribute key %q (keys are [a-z][a-z0-9_]*; a positional argument holds no '=': quote it)", t.key)
					return nil, "", "", false
				}
				if i < n && line[i] == '"' && eq == len(word)-1 {
					end, v, ok := p.quoted(lineNo, line, i)
					if !ok {
						return nil, "", "", false
					}
					t.value, t.quoted, i = v, true, end
				} else {
					t.value = word[eq+1:]
				}
			} else {
				t.value = word
			}
			if i < n && line[i] == '"' {
				p.errorf(lineNo, i+1, "unexpected '\"' inside a bare word")
				return nil, "", "", false
			}
		}
		last = i
		toks = append(toks, t)
	}
	if first >= 0 && single {
		body = line[first:last]
	}
	return toks, comment, body, true
}

// quoted reads the quoted string that starts at line[i] and returns the index
// just past it.
func (p *parser) quoted(lineNo int, line string, i int) (end int, value string, ok bool) {
	j := i + 1
	for ; j < len(line); j++ {
		if line[j] == '\\' {
			j++
			continue
		}
		if line[j] == '"' {
			break
		}
	}
	if j >= len(line) {
		p.errorf(lineNo, i+1, "unterminated quoted string")
		return 0, "", false
	}
	v, err := strconv.Unquote(line[i : j+1])
	if err != nil {
		p.errorf(lineNo, i+1, "invalid quoted string %s: %v", line[i:j+1], err)
		return 0, "", false
	}
	if j+1 < len(line) && !isSpace(line[j+1]) {
		p.errorf(lineNo, j+2, "expected white space after quoted string")
		return 0, "", false
	}
	return j + 1, v, true
}

func validKey(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validOp(op string) bool {
	for i := 0; i < len(op); i++ {
		c := op[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return op != ""
}

var opNames = func() []string {
	names := make([]string, len(signatures))
	for i, s := range signatures {
		names[i] = s.Op
	}
	return names
}()

// build checks the words of a step line against its signature.
func (p *parser) build(lineNo int, toks []token, comment, body string) (Step, bool) {
	opTok := toks[0]
	if opTok.key != "" || opTok.quoted || !validOp(opTok.value) {
		p.errorf(lineNo, opTok.col, "invalid op %q: an op is upper-case letters, digits and '-'%s", opTok.value, didYouMean(opTok.value, opNames))
		return Step{}, false
	}
	sig := Lookup(opTok.value)
	if sig == nil {
		p.errorf(lineNo, opTok.col, "unknown op %s%s", opTok.value, didYouMean(opTok.value, opNames))
		return Step{}, false
	}
	s := Step{Op: sig.Op, Pos: Pos{p.file, lineNo, opTok.col}, Source: comment}
	nerr := len(p.errs)
	// inPlace stays true while the line as written is its canonical form:
	// single spaces, bare words, canonical values, no defaults, sorted.
	inPlace := len(body) == tokensLen(toks)
	rest := toks[1:]
	args := take(&p.args, len(sig.Args))
	for len(rest) > 0 && rest[0].key == "" {
		t := rest[0]
		rest = rest[1:]
		if len(args) == len(sig.Args) {
			p.errorf(lineNo, t.col, "%s: unexpected argument %q (%s takes %s)", sig.Op, t.value, sig.Op, argNames(sig))
			continue
		}
		spec := sig.Args[len(args)]
		v, err := CanonicalValue(spec.Kind, t.value)
		if err != nil {
			p.errorf(lineNo, t.col, "%s: %s: %v", sig.Op, spec.Name, err)
		}
		inPlace = inPlace && t.plain && v == t.value
		args = append(args, v)
	}
	if len(args) < len(sig.Args) {
		for _, t := range rest {
			if t.key == "" {
				p.errorf(lineNo, t.col, "%s: positional argument %q after attributes (arguments come first)", sig.Op, t.value)
				return Step{}, false
			}
		}
		col := opTok.col
		if len(toks) > 1 {
			col = toks[len(toks)-1].col
		}
		p.errorf(lineNo, col, "%s: missing argument %s (%s takes %s)", sig.Op, sig.Args[len(args)].Name, sig.Op, argNames(sig))
		return Step{}, false
	}
	s.Args = args
	if sig.Op == OpCheck && len(p.errs) == nerr {
		if err := CheckTarget(s.Args[0], s.Args[1]); err != nil {
			p.errorf(lineNo, toks[2].col, "CHECK %s: TARGET: %v", s.Args[0], err)
		}
	}
	attrs := take(&p.attrs, len(rest))
	var seenBuf [8]token
	seen := seenBuf[:0]
attrs:
	for _, t := range rest {
		if t.key == "" {
			p.errorf(lineNo, t.col, "%s: positional argument %q after attributes (arguments come first)", sig.Op, t.value)
			continue
		}
		spec := sig.Attr(t.key)
		if spec == nil {
			p.errorf(lineNo, t.col, "%s: unknown attribute %q%s", sig.Op, t.key, didYouMean(t.key, attrKeys(sig)))
			continue
		}
		for _, first := range seen {
			if first.key == t.key {
				p.errorf(lineNo, t.col, "%s: attribute %s given twice (first at column %d)", sig.Op, t.key, first.col)
				continue attrs
			}
		}
		seen = append(seen, t)
		v, err := CanonicalValue(spec.Kind, t.value)
		if err != nil {
			p.errorf(lineNo, t.col, "%s: %s: %v", sig.Op, t.key, err)
			continue
		}
		if v != spec.Default {
			inPlace = inPlace && t.plain && v == t.value
			attrs = append(attrs, Attr{Key: spec.Key, Value: v})
		} else {
			inPlace = false
		}
	}
	for _, spec := range sig.Attrs {
		if spec.Required && !slices.ContainsFunc(seen, func(t token) bool { return t.key == spec.Key }) {
			p.errorf(lineNo, opTok.col, "%s: attribute %s is required", sig.Op, spec.Key)
		}
	}
	if len(p.errs) > nerr {
		return Step{}, false
	}
	if !slices.IsSortedFunc(attrs, compareAttrs) {
		slices.SortFunc(attrs, compareAttrs)
		inPlace = false
	}
	if len(attrs) > 0 {
		s.Attrs = attrs
	}
	// Keep the canonical form: most lines are already canonical, and then
	// it is a substring of the file and costs nothing.
	if inPlace {
		s.canon = body
	} else {
		p.canon = s.appendCanonical(p.canon[:0])
		s.canon = string(p.canon)
	}
	return s, true
}

// tokensLen is the length of the words of a line joined by single spaces,
// as written (a quoted word's length is not known here: such a line is
// never taken as canonical in place anyway).
func tokensLen(toks []token) int {
	n := len(toks) - 1
	for _, t := range toks {
		n += len(t.value)
		if t.key != "" {
			n += len(t.key) + 1
		}
	}
	return n
}

func compareAttrs(a, b Attr) int { return strings.Compare(a.Key, b.Key) }

// take returns an empty slice with room for n elements, cut from the end
// of a slab that many steps share; a new slab is made when it runs out.
func take[T any](slab *[]T, n int) []T {
	if cap(*slab)-len(*slab) < n {
		*slab = make([]T, 0, max(1024, n))
	}
	l := len(*slab)
	*slab = (*slab)[:l+n]
	return (*slab)[l : l : l+n]
}

func argNames(sig *Signature) string {
	if len(sig.Args) == 0 {
		return "no arguments"
	}
	names := make([]string, len(sig.Args))
	for i, a := range sig.Args {
		names[i] = a.Name
	}
	return strings.Join(names, " ")
}

func attrKeys(sig *Signature) []string {
	keys := make([]string, len(sig.Attrs))
	for i, a := range sig.Attrs {
		keys[i] = a.Key
	}
	return keys
}

// Format returns the canonical form of every step, one a line.
func (j *Journal) Format() []byte {
	var b bytes.Buffer
	for i := range j.Steps {
		b.WriteString(j.Steps[i].Canonical())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// cutLine returns the first line of text, without its newline, and the
// rest after it (the walk of parse and of PlanPair through a journal's text).
func cutLine(text string) (line, rest string) {
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		return text[:i], text[i+1:]
	}
	return text, ""
}
