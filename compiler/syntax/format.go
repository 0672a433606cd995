package syntax

import (
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// FormatSource parses src and returns it in canonical style. The error is
// Parse's, an *Error that already names the file and position.
func FormatSource(name, src string) ([]byte, error) {
	f, err := Parse(name, src)
	if err != nil {
		return nil, err
	}
	return Format(f), nil
}

// Format prints a parsed file in canonical style, keeping every comment:
//
//   - two spaces of indentation per block, one item a line;
//   - "=" aligned within a run of consecutive one-line attributes (a blank
//     line, a comment line, a block or a multi-line attribute ends a run),
//     and the trailing comments of a run aligned too;
//   - one blank line where the source had one or more between two items or
//     comments, none after "{" or before "}", none at the start of the file;
//   - single spaces around binary operators, none after "!", "f(a, b)";
//     lists and objects on one line, "[a, b]" and "{ a = 1, b = 2 }", unless
//     they spanned lines, then one element a line with a trailing comma (an
//     object's "key = value" lines take no comma);
//   - strings, heredocs and numbers exactly as written;
//   - a comment on a line of its own stays there, re-indented; a comment
//     after code stays at the end of that line; a comment in the middle of
//     an expression printed on one line moves to the end of that line (or,
//     when a "#" or "//" comment already ends it, to a line of its own just
//     after).
//
// The output ends in one newline, or is empty when the file holds nothing.
// f must come from Parse; when its Src does not lex, Format returns it as is.
func Format(f *File) []byte {
	toks, err := Lex(f.Name, f.Src)
	if err != nil {
		return []byte(f.Src)
	}
	p := &printer{}
	for _, t := range toks {
		if t.Type == Comment {
			p.comments = append(p.comments, t)
		} else {
			p.toks = append(p.toks, t)
		}
	}
	out := layout(p.rows(nil, p.itemUnits(f.Items), math.MaxInt, 0), 0)
	if out == "" {
		return []byte{}
	}
	return []byte(out + "\n")
}

// printer holds what formatting one file needs: its code tokens, to find
// closing brackets and commas the syntax tree does not record, and its
// comments, handed out in source order.
type printer struct {
	toks     []lexer.Token
	comments []lexer.Token
	next     int // the first comment not yet placed
	// lastLine is the line on which the last source token or comment
	// placed so far ends: the reference for blank lines and for comments
	// that trail a line.
	lastLine int
}

// row is one entry of a sequence of items, elements or comments printed
// one under another.
type row struct {
	blank bool   // a blank line comes before it
	text  string // the entry; a line ends it unless it holds a newline
	// key is the byte length of an attribute's name when the row is an
	// attribute on one line, which aligns its "=" with its neighbours'.
	key   int
	trail string // comments at the end of its last line
}

// unit is one entry of a sequence: an item, a list element, an object item.
type unit struct {
	start  lexer.Position
	end    lexer.Token // its last token, a separating comma included
	render func(b *builder) (key int)
}

// builder collects the text of one unit.
type builder struct {
	p     *printer
	depth int
	sb    strings.Builder
	// pend are comments met inside the unit, waiting for the end of the
	// line they will trail.
	pend []lexer.Token
	// heredoc is set just after a heredoc: its closing marker must be
	// alone on its line, so whatever follows starts a new line.
	heredoc bool
}

func indent(depth int) string { return strings.Repeat("  ", depth) }

func endLine(t lexer.Token) int { return t.Pos.Line + strings.Count(t.Value, "\n") }

func isLineComment(c lexer.Token) bool { return !strings.HasPrefix(c.Value, "/*") }

// take hands out the comments that start before offset off.
func (p *printer) take(off int) []lexer.Token {
	start := p.next
	for p.next < len(p.comments) && p.comments[p.next].Pos.Offset < off {
		p.lastLine = max(p.lastLine, endLine(p.comments[p.next]))
		p.next++
	}
	return p.comments[start:p.next]
}

// trailing adds to pend the comments that start on the line the last
// placed token or comment ends on, before offset limit.
func (p *printer) trailing(pend []lexer.Token, limit int) []lexer.Token {
	for p.next < len(p.comments) {
		c := p.comments[p.next]
		if c.Pos.Offset >= limit || c.Pos.Line != p.lastLine {
			break
		}
		pend = append(pend, c)
		p.lastLine = endLine(c)
		p.next++
	}
	return pend
}

// hasComment reports whether a comment starts between offsets from and to.
func (p *printer) hasComment(from, to int) bool {
	i := sort.Search(len(p.comments), func(i int) bool { return p.comments[i].Pos.Offset > from })
	return i < len(p.comments) && p.comments[i].Pos.Offset < to
}

// index returns the index of the code token at offset off.
func (p *printer) index(off int) int {
	return sort.Search(len(p.toks), func(i int) bool { return p.toks[i].Pos.Offset >= off })
}

// lastBefore returns the last code token that starts before offset off:
// given a node's EndPos, which is where the next token starts, the node's
// last token.
func (p *printer) lastBefore(off int) lexer.Token {
	return p.toks[max(p.index(off)-1, 0)]
}

// commaAfter returns the comma that follows a node ending before offset
// off, and whether there is one.
func (p *printer) commaAfter(off int) (lexer.Token, bool) {
	i := p.index(off)
	if i < len(p.toks) && p.toks[i].Type == Punct && p.toks[i].Value == "," {
		return p.toks[i], true
	}
	return lexer.Token{}, false
}

// rows lays out units one under another after the rows already in rs, with
// the comments between them and those that come before offset closeOff.
func (p *printer) rows(rs []row, units []unit, closeOff, depth int) []row {
	for i, u := range units {
		rs = p.commentRows(rs, u.start.Offset)
		blank := len(rs) > 0 && u.start.Line > p.lastLine+1
		b := &builder{p: p, depth: depth}
		key := u.render(b)
		b.pull(u.end.Pos.Offset + 1)
		p.lastLine = max(p.lastLine, endLine(u.end))
		limit := closeOff
		if i+1 < len(units) {
			limit = units[i+1].start.Offset
		}
		trail, over := split(p.trailing(b.pend, limit), b.heredoc)
		r := row{blank: blank, text: b.sb.String(), trail: trail}
		if !strings.Contains(r.text, "\n") {
			r.key = key
		}
		rs = append(rs, r)
		rs = append(rs, over...)
	}
	return p.commentRows(rs, closeOff)
}

// commentRows adds a row for every comment that starts before offset off.
func (p *printer) commentRows(rs []row, off int) []row {
	for p.next < len(p.comments) && p.comments[p.next].Pos.Offset < off {
		c := p.comments[p.next]
		rs = append(rs, row{blank: len(rs) > 0 && c.Pos.Line > p.lastLine+1, text: c.Value})
		p.lastLine = endLine(c)
		p.next++
	}
	return rs
}

// split divides the comments that end a line into those that stay on it
// and those that need lines of their own: after a "#" or "//" comment, or
// after a heredoc's closing marker, nothing may follow on the line.
func split(pend []lexer.Token, afterHeredoc bool) (trail string, over []row) {
	var on []string
	for i, c := range pend {
		if afterHeredoc || (i > 0 && isLineComment(pend[i-1])) {
			for _, c := range pend[i:] {
				over = append(over, row{text: c.Value})
			}
			break
		}
		on = append(on, c.Value)
	}
	return strings.Join(on, " "), over
}

// layout prints rows at depth, aligning the "=" of runs of one-line
// attributes and their trailing comments. It returns no final newline.
func layout(rs []row, depth int) string {
	ind := indent(depth)
	lines := make([]string, len(rs))
	for i := 0; i < len(rs); {
		j := i + 1
		if rs[i].key > 0 {
			for j < len(rs) && rs[j].key > 0 && !rs[j].blank {
				j++
			}
		}
		alignKeys(rs[i:j], lines[i:j], ind)
		i = j
	}
	var out strings.Builder
	for i, r := range rs {
		if i > 0 {
			out.WriteByte('\n')
		}
		if r.blank && i > 0 {
			out.WriteByte('\n')
		}
		out.WriteString(lines[i])
	}
	return out.String()
}

// alignKeys prints a run of rows into lines: when they are attributes, their
// names padded to the longest; then trailing comments of consecutive rows
// lined up.
func alignKeys(rs []row, lines []string, ind string) {
	width := 0
	for _, r := range rs {
		width = max(width, utf8.RuneCountInString(r.text[:r.key]))
	}
	for i, r := range rs {
		text := r.text
		if r.key > 0 {
			pad := width - utf8.RuneCountInString(text[:r.key])
			text = text[:r.key] + strings.Repeat(" ", pad) + text[r.key:]
		}
		lines[i] = ind + text
	}
	for i := 0; i < len(rs); {
		if rs[i].trail == "" {
			i++
			continue
		}
		j, col := i, 0
		for ; j < len(rs) && rs[j].trail != ""; j++ {
			col = max(col, utf8.RuneCountInString(finalLine(lines[j])))
		}
		for k := i; k < j; k++ {
			pad := col - utf8.RuneCountInString(finalLine(lines[k]))
			lines[k] += strings.Repeat(" ", pad+1) + rs[k].trail
		}
		i = j
	}
}

// finalLine returns the last line of s.
func finalLine(s string) string { return s[strings.LastIndexByte(s, '\n')+1:] }

// itemUnits makes units of a file's or a block's items.
func (p *printer) itemUnits(items []*Item) []unit {
	us := make([]unit, len(items))
	for i, it := range items {
		us[i] = unit{start: it.Pos, end: p.lastBefore(it.EndPos.Offset), render: func(b *builder) int { return b.item(it) }}
	}
	return us
}

// pull moves the comments that start before offset off to pend.
func (b *builder) pull(off int) { b.pend = append(b.pend, b.p.take(off)...) }

// write adds text, on a new line if a heredoc just ended: one indented
// like the line the heredoc started on.
func (b *builder) write(s string) {
	if b.heredoc {
		b.heredoc = false
		b.sb.WriteString("\n" + indent(b.depth))
		s = strings.TrimLeft(s, " ")
	}
	b.sb.WriteString(s)
}

// tok writes the text of the token at pos, after taking up the comments
// before it.
func (b *builder) tok(pos lexer.Position, s string) {
	b.pull(pos.Offset)
	b.write(s)
	b.p.lastLine = max(b.p.lastLine, pos.Line+strings.Count(s, "\n"))
}

// endLineWith ends the current line with the pending comments, if any.
func (b *builder) endLineWith(trail string) {
	if trail == "" {
		return
	}
	if s := b.sb.String(); s != "" && !strings.HasSuffix(s, " ") {
		b.sb.WriteByte(' ')
	}
	b.sb.WriteString(trail)
}

// breakLine ends the current line with the pending comments and goes on
// on the next, one level deeper.
func (b *builder) breakLine() {
	ind := indent(b.depth + 1)
	trail, over := split(b.pend, b.heredoc)
	b.pend, b.heredoc = nil, false
	b.endLineWith(trail)
	for _, r := range over {
		b.sb.WriteString("\n" + ind + r.text)
	}
	b.sb.WriteString("\n" + ind)
}

// nested writes a bracketed sequence one entry a line: the opening token,
// the comments trailing it, the units, and the closing token on a line of
// its own.
func (b *builder) nested(open lexer.Token, units []unit, close lexer.Token) {
	b.tok(open.Pos, open.Value)
	limit := close.Pos.Offset
	if len(units) > 0 {
		limit = units[0].start.Offset
	}
	trail, over := split(b.p.trailing(b.pend, limit), false)
	b.pend = nil
	b.endLineWith(trail)
	rs := b.p.rows(over, units, close.Pos.Offset, b.depth+1)
	if len(rs) > 0 {
		b.sb.WriteString("\n" + layout(rs, b.depth+1))
	}
	b.sb.WriteString("\n" + indent(b.depth) + close.Value)
	b.p.lastLine = max(b.p.lastLine, close.Pos.Line)
}

// item writes an attribute or a block; it returns the length of an
// attribute's name.
func (b *builder) item(it *Item) int {
	b.tok(it.Pos, it.Name)
	if !it.IsBlock() {
		b.write(" = ")
		b.expr(it.Value)
		return len(it.Name)
	}
	for _, l := range it.Labels {
		b.write(" ")
		b.str(l)
	}
	b.write(" ")
	open := b.p.toks[b.p.index(it.Pos.Offset)+1+len(it.Labels)]
	close := lexer.Token{Type: Punct, Value: "}", Pos: it.Close.Pos}
	if len(it.Body) == 0 && !b.p.hasComment(open.Pos.Offset, close.Pos.Offset) {
		b.tok(open.Pos, "{")
		b.tok(close.Pos, "}")
		return 0
	}
	b.nested(open, b.p.itemUnits(it.Body), close)
	return 0
}

// str writes a string or a heredoc as written.
func (b *builder) str(s *Str) {
	if !strings.HasPrefix(s.Raw, "<<") {
		b.tok(s.Pos, s.Raw)
		return
	}
	b.pull(s.Pos.Offset)
	if len(b.pend) > 0 {
		b.breakLine() // nothing may follow the marker on its line
	}
	b.tok(s.Pos, s.Raw)
	b.heredoc = true
}

func (b *builder) expr(e *Expr) {
	b.and(e.Left)
	for _, r := range e.Right {
		b.write(" || ")
		b.and(r)
	}
}

func (b *builder) and(a *And) {
	b.compare(a.Left)
	for _, r := range a.Right {
		b.write(" && ")
		b.compare(r)
	}
}

func (b *builder) compare(c *Compare) {
	b.unary(c.Left)
	if c.Right != nil {
		b.write(" " + c.Op + " ")
		b.unary(c.Right)
	}
}

func (b *builder) unary(u *Unary) {
	if u.Not != nil {
		b.tok(u.Pos, "!")
		b.unary(u.Not)
		return
	}
	b.primary(u.Primary)
}

func (b *builder) primary(pr *Primary) {
	closing := func() lexer.Token { return b.p.lastBefore(pr.EndPos.Offset) }
	switch {
	case pr.Number != nil:
		b.tok(pr.Pos, *pr.Number)
	case pr.Str != nil:
		b.str(pr.Str)
	case pr.Bool != nil:
		b.tok(pr.Pos, *pr.Bool)
	case pr.List != nil:
		b.list(pr.List)
	case pr.Object != nil:
		b.object(pr.Object)
	case pr.Call != nil:
		b.tok(pr.Call.Pos, pr.Call.Name)
		b.write("(")
		for i, a := range pr.Call.Args {
			if i > 0 {
				b.write(", ")
			}
			b.expr(a)
		}
		b.tok(closing().Pos, ")")
	case pr.Ref != nil:
		b.tok(pr.Ref.Pos, strings.Join(pr.Ref.Parts, "."))
	case pr.Paren != nil:
		b.tok(pr.Pos, "(")
		b.expr(pr.Paren)
		b.tok(closing().Pos, ")")
	}
}

// multiLine reports whether a bracketed list or object is printed one
// element a line: when it spanned lines and holds something.
func (b *builder) multiLine(open, close lexer.Token, n int) bool {
	return open.Pos.Line != close.Pos.Line && (n > 0 || b.p.hasComment(open.Pos.Offset, close.Pos.Offset))
}

func (b *builder) list(l *List) {
	open := lexer.Token{Type: Punct, Value: "[", Pos: l.Pos}
	close := b.p.lastBefore(l.EndPos.Offset)
	if !b.multiLine(open, close, len(l.Items)) {
		b.tok(open.Pos, "[")
		for i, x := range l.Items {
			if i > 0 {
				b.write(", ")
			}
			b.expr(x)
		}
		b.tok(close.Pos, "]")
		return
	}
	units := make([]unit, len(l.Items))
	for i, x := range l.Items {
		last := i == len(l.Items)-1
		end := b.p.lastBefore(x.EndPos.Offset)
		comma, ok := b.p.commaAfter(x.EndPos.Offset)
		if ok {
			end = comma
		}
		units[i] = unit{start: x.Pos, end: end, render: func(b *builder) int {
			b.expr(x)
			switch {
			case last && b.heredoc:
				// A comma would need a line of its own; the last may go.
			case ok:
				b.tok(comma.Pos, ",")
			default:
				b.write(",")
			}
			return 0
		}}
	}
	b.nested(open, units, close)
}

func (b *builder) object(o *Object) {
	open := lexer.Token{Type: Punct, Value: "{", Pos: o.Pos}
	close := b.p.lastBefore(o.EndPos.Offset)
	// The key as written: the parser keeps a quoted key unquoted.
	key := func(it *ObjectItem) string { return b.p.toks[b.p.index(it.Pos.Offset)].Value }
	if !b.multiLine(open, close, len(o.Items)) {
		b.tok(open.Pos, "{")
		for i, it := range o.Items {
			if i > 0 {
				b.write(",")
			}
			b.write(" ")
			b.tok(it.Pos, key(it))
			b.write(" = ")
			b.expr(it.Value)
		}
		if len(o.Items) > 0 {
			b.write(" ")
		}
		b.tok(close.Pos, "}")
		return
	}
	units := make([]unit, len(o.Items))
	for i, it := range o.Items {
		end := b.p.lastBefore(it.Value.EndPos.Offset)
		if comma, ok := b.p.commaAfter(it.Value.EndPos.Offset); ok {
			end = comma
		}
		units[i] = unit{start: it.Pos, end: end, render: func(b *builder) int {
			k := key(it)
			b.tok(it.Pos, k)
			b.write(" = ")
			b.expr(it.Value)
			return len(k)
		}}
	}
	b.nested(open, units, close)
}
