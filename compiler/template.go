package compiler

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// templateFuncs are the functions templates may call beyond Go's own.
var templateFuncs = template.FuncMap{
	"join":  func(sep string, items []any) string { return joinAny(sep, items) },
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		lines := strings.SplitAfter(s, "\n")
		for i, l := range lines {
			if l != "" && l != "\n" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "")
	},
}

func joinAny(sep string, items []any) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = toText(it)
	}
	return strings.Join(parts, sep)
}

// toText prints a plain value as a template's {{.}} would.
func toText(v any) string { return fmt.Sprint(v) }

// render renders a block's template with the facts, the unit's variables
// and the block's own vars. A missing key is an error, never "<no value>".
func (c *compiler) render(s *scope, b *block) ([]byte, bool) {
	name, _, ok := c.str(s, b, "template")
	if !ok {
		return nil, false
	}
	pos := b.attrs["template"].Value.Pos
	p, ok := c.repoFile(s, b, "template", name, pos)
	if !ok {
		return nil, false
	}
	t, err := c.template(p)
	if err != nil {
		c.errs = append(c.errs, s.errorf(pos, "%s: %v", describe(b, s), err))
		return nil, false
	}
	data := map[string]any{"fact": goValues(s.facts), "var": goValues(s.vars), "vars": map[string]any{}}
	if v, present := c.value(s, b, "vars", tObject); present {
		data["vars"] = v.GoValue()
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		c.errs = append(c.errs, s.errorf(pos, "%s: %v", describe(b, s), err))
		return nil, false
	}
	return out.Bytes(), true
}

func goValues(m map[string]Value) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v.GoValue()
	}
	return out
}

// template returns the parsed template at repository path p, parsed once
// per compile however many blocks render it.
func (c *compiler) template(p string) (*template.Template, error) {
	if t, ok := c.templates[p]; ok {
		return t.t, t.err
	}
	var t *template.Template
	text, err := c.readFile(p)
	if err == nil {
		t, err = template.New(p).Funcs(templateFuncs).Option("missingkey=error").Parse(string(text))
	}
	if c.templates == nil {
		c.templates = map[string]parsedTemplate{}
	}
	c.templates[p] = parsedTemplate{t, err}
	return t, err
}

// parsedTemplate is a template parsed once, or why it could not be.
type parsedTemplate struct {
	t   *template.Template
	err error
}
