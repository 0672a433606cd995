package journal

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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
	return Parse(name, data)
}

// Parse parses a journal. file names it in positions. The error, if any, is
// an ErrorList with every malformed line.
func Parse(file string, data []byte) (*Journal, error) {
	j := &Journal{File: file, Steps: make([]Step, 0, bytes.Count(data, []byte{'\n'})+1)}
	p := parser{file: file}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
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
	s, ok := p.parseLine(pos.Line, []byte(line))
	if len(p.errs) > 0 {
		return s, p.errs
	}
	if !ok {
		return s, ErrorList{{Pos: pos, Msg: "no step on this line"}}
	}
	return s, nil
}

type parser struct {
	file string
	errs ErrorList
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
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// parseLine parses one line; ok is false for blank, comment and bad lines.
func (p *parser) parseLine(lineNo int, line []byte) (Step, bool) {
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		p.errorf(lineNo, i+1, "carriage return (\\r) in line: journals use \\n line ends only")
		return Step{}, false
	}
	if !utf8.Valid(line) {
		col := 1
		for rest := line; len(rest) > 0; {
			r, n := utf8.DecodeRune(rest)
			if r == utf8.RuneError && n <= 1 {
				break
			}
			rest = rest[n:]
			col += n
		}
		p.errorf(lineNo, col, "invalid UTF-8")
		return Step{}, false
	}
	toks, comment, ok := p.tokenize(lineNo, line)
	if !ok || len(toks) == 0 {
		return Step{}, false
	}
	return p.build(lineNo, toks, comment)
}

// tokenize splits a line into words and the trailing comment.
func (p *parser) tokenize(lineNo int, line []byte) (toks []token, comment string, ok bool) {
	i, n := 0, len(line)
	for {
		for i < n && isSpace(line[i]) {
			i++
		}
		if i >= n {
			return toks, "", true
		}
		if line[i] == '#' {
			return toks, strings.TrimSpace(string(line[i+1:])), true
		}
		start := i
		t := token{col: start + 1}
		if line[i] == '"' {
			end, v, ok := p.quoted(lineNo, line, i)
			if !ok {
				return nil, "", false
			}
			t.value, t.quoted, i = v, true, end
		} else {
			for i < n && !isSpace(line[i]) && line[i] != '"' {
				i++
			}
			word := string(line[start:i])
			if eq := strings.IndexByte(word, '='); eq >= 0 {
				t.key = word[:eq]
				if !validKey(t.key) {
					p.errorf(lineNo, start+1, "invalid attribute key %q (keys are [a-z][a-z0-9_]*; a positional argument holds no '=': quote it)", t.key)
					return nil, "", false
				}
				if i < n && line[i] == '"' && eq == len(word)-1 {
					end, v, ok := p.quoted(lineNo, line, i)
					if !ok {
						return nil, "", false
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
				return nil, "", false
			}
		}
		toks = append(toks, t)
	}
}

// quoted reads the quoted string that starts at line[i] and returns the index
// just past it.
func (p *parser) quoted(lineNo int, line []byte, i int) (end int, value string, ok bool) {
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
	v, err := strconv.Unquote(string(line[i : j+1]))
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
func (p *parser) build(lineNo int, toks []token, comment string) (Step, bool) {
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
	rest := toks[1:]
	s.Args = make([]string, 0, len(sig.Args))
	for len(rest) > 0 && rest[0].key == "" {
		t := rest[0]
		rest = rest[1:]
		if len(s.Args) == len(sig.Args) {
			p.errorf(lineNo, t.col, "%s: unexpected argument %q (%s takes %s)", sig.Op, t.value, sig.Op, argNames(sig))
			continue
		}
		spec := sig.Args[len(s.Args)]
		v, err := CanonicalValue(spec.Kind, t.value)
		if err != nil {
			p.errorf(lineNo, t.col, "%s: %s: %v", sig.Op, spec.Name, err)
		}
		s.Args = append(s.Args, v)
	}
	if len(s.Args) < len(sig.Args) {
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
		p.errorf(lineNo, col, "%s: missing argument %s (%s takes %s)", sig.Op, sig.Args[len(s.Args)].Name, sig.Op, argNames(sig))
		return Step{}, false
	}
	if sig.Op == OpCheck && len(p.errs) == nerr {
		if err := checkCheckTarget(s.Args[0], s.Args[1]); err != nil {
			p.errorf(lineNo, toks[2].col, "CHECK %s: TARGET: %v", s.Args[0], err)
		}
	}
	seen := make(map[string]int, len(rest))
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
		if first, dup := seen[t.key]; dup {
			p.errorf(lineNo, t.col, "%s: attribute %s given twice (first at column %d)", sig.Op, t.key, first)
			continue
		}
		seen[t.key] = t.col
		v, err := CanonicalValue(spec.Kind, t.value)
		if err != nil {
			p.errorf(lineNo, t.col, "%s: %s: %v", sig.Op, t.key, err)
			continue
		}
		if v != spec.Default {
			s.Attrs = append(s.Attrs, Attr{Key: t.key, Value: v})
		}
	}
	for _, spec := range sig.Attrs {
		if _, ok := seen[spec.Key]; spec.Required && !ok {
			p.errorf(lineNo, opTok.col, "%s: attribute %s is required", sig.Op, spec.Key)
		}
	}
	if len(p.errs) > nerr {
		return Step{}, false
	}
	slices.SortFunc(s.Attrs, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
	return s, true
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
