package syntax

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Template is a string's text split into literal parts and interpolations.
type Template struct {
	Parts []Part
}

// Part is literal text, or an interpolated expression when Expr is set.
type Part struct {
	Lit  string
	Expr *Expr
}

// Literal returns the template's text and true when it holds no
// interpolation.
func (t *Template) Literal() (string, bool) {
	switch {
	case len(t.Parts) == 0:
		return "", true
	case len(t.Parts) == 1 && t.Parts[0].Expr == nil:
		return t.Parts[0].Lit, true
	}
	return "", false
}

// readTemplate splits a String or Heredoc token's raw text into parts,
// parsing each ${...} with the expression grammar at its own position.
func readTemplate(raw string, pos lexer.Position, src string) (*Template, error) {
	if strings.HasPrefix(raw, "<<") {
		return readHeredoc(raw, pos, src)
	}
	body := raw[1 : len(raw)-1]
	if !strings.ContainsAny(body, `\$`) {
		// No escape and no interpolation: the text as written. Most strings
		// of a configuration are like this (modes, paths, names).
		if body == "" {
			return &Template{}, nil
		}
		return &Template{Parts: []Part{{Lit: body}}}, nil
	}
	t := &Template{}
	lit := strings.Builder{}
	flush := func(segStart, segEnd int) error {
		seg := body[segStart:segEnd]
		if seg == "" {
			return nil
		}
		s, err := strconv.Unquote(`"` + seg + `"`)
		if err != nil {
			at := segStart + badEscape(seg)
			return errorAt(pos, 1+at, src, "invalid escape in string %s", raw)
		}
		lit.WriteString(s)
		return nil
	}
	segStart := 0
	for k := 0; k < len(body); k++ {
		switch body[k] {
		case '\\':
			k++
		case '$':
			if k+1 >= len(body) || body[k+1] != '{' {
				continue
			}
			if err := flush(segStart, k); err != nil {
				return nil, err
			}
			if k > 0 && body[k-1] == '$' {
				// $${ is a literal ${: the first $ was already written.
				s := lit.String()
				lit.Reset()
				lit.WriteString(s[:len(s)-1])
				lit.WriteString("${")
				segStart = k + 2
				k++
				continue
			}
			end := strings.IndexByte(body[k:], '}')
			if end < 0 {
				return nil, errorAt(pos, 1+k, src, "interpolation ${ is not closed")
			}
			if lit.Len() > 0 {
				t.Parts = append(t.Parts, Part{Lit: lit.String()})
				lit.Reset()
			}
			inner := body[k+2 : k+end]
			e, err := parseInterpolation(inner, advance(pos, 1+k+2), src)
			if err != nil {
				return nil, err
			}
			t.Parts = append(t.Parts, Part{Expr: e})
			k += end
			segStart = k + 1
		}
	}
	if err := flush(segStart, len(body)); err != nil {
		return nil, err
	}
	if lit.Len() > 0 {
		t.Parts = append(t.Parts, Part{Lit: lit.String()})
	}
	return t, nil
}

// readHeredoc reads <<NAME\n...NAME or <<-NAME (indentation removed). Its
// lines are literal except for ${...}; $${ is a literal ${.
func readHeredoc(raw string, pos lexer.Position, src string) (*Template, error) {
	nl := strings.IndexByte(raw, '\n')
	strip := strings.HasPrefix(raw, "<<-")
	lastNL := strings.LastIndexByte(raw, '\n')
	text := ""
	bodyStart := nl + 1
	if lastNL > nl {
		text = raw[bodyStart : lastNL+1]
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	indent := 0
	if strip {
		indent = commonIndent(lines)
	}
	t := &Template{}
	var lit strings.Builder
	line := pos.Line + 1
	lineOff := pos.Offset + bodyStart // offset of the line in the file
	for _, ln := range lines {
		cut := min(indent, len(strings.TrimRight(ln, "\n")))
		rest := ln[cut:]
		col := cut + 1
		for {
			k := strings.Index(rest, "${")
			if k < 0 {
				lit.WriteString(rest)
				break
			}
			if k > 0 && rest[k-1] == '$' {
				lit.WriteString(rest[:k-1])
				lit.WriteString("${")
				rest = rest[k+2:]
				col += k + 2
				continue
			}
			end := strings.IndexByte(rest[k:], '}')
			if end < 0 {
				return nil, errorAt(lexer.Position{Filename: pos.Filename, Offset: lineOff + col - 1 + k, Line: line, Column: col + k}, 0, src, "interpolation ${ is not closed on its line")
			}
			lit.WriteString(rest[:k])
			if lit.Len() > 0 {
				t.Parts = append(t.Parts, Part{Lit: lit.String()})
				lit.Reset()
			}
			epos := lexer.Position{Filename: pos.Filename, Offset: lineOff + col - 1 + k + 2, Line: line, Column: col + k + 2}
			e, err := parseInterpolation(rest[k+2:k+end], epos, src)
			if err != nil {
				return nil, err
			}
			t.Parts = append(t.Parts, Part{Expr: e})
			rest = rest[k+end+1:]
			col += k + end + 1
		}
		line++
		lineOff += len(ln)
	}
	if lit.Len() > 0 {
		t.Parts = append(t.Parts, Part{Lit: lit.String()})
	}
	return t, nil
}

// badEscape returns the offset in seg of the first escape that Go's string
// syntax rejects, or 0.
func badEscape(seg string) int {
	for k := 0; k < len(seg); {
		if seg[k] != '\\' {
			k++
			continue
		}
		_, _, tail, err := strconv.UnquoteChar(seg[k:], '"')
		if err != nil {
			return k
		}
		k = len(seg) - len(tail)
	}
	return 0
}

func commonIndent(lines []string) int {
	best := -1
	for _, ln := range lines {
		if strings.TrimSpace(ln) == "" {
			continue
		}
		n := len(ln) - len(strings.TrimLeft(ln, " \t"))
		if best < 0 || n < best {
			best = n
		}
	}
	return max(best, 0)
}

// advance moves a position n bytes to the right on its line.
func advance(p lexer.Position, n int) lexer.Position {
	p.Column += n
	p.Offset += n
	return p
}

func errorAt(p lexer.Position, cols int, src string, format string, args ...any) *Error {
	p = advance(p, cols)
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...), Line: LineAt(src, p.Line)}
}
