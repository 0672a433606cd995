package compiler

import (
	"strings"
	"testing"
)

// TestTemplateNesting: the nesting of a template's actions is counted as
// text/template parses them, strings and comments passed over.
func TestTemplateNesting(t *testing.T) {
	deep := strings.Repeat("{{if 1}}\n", MaxTemplateNesting+1)
	for _, tc := range []struct {
		text string
		line int // 0: not too deep
	}{
		{strings.Repeat("{{if 1}}", MaxTemplateNesting) + strings.Repeat("{{end}}", MaxTemplateNesting), 0},
		{deep, MaxTemplateNesting + 1},
		{strings.Repeat("{{- range .x -}}\n", MaxTemplateNesting+1), MaxTemplateNesting + 1},
		{strings.Repeat("{{with 1}}{{end}}", 10*MaxTemplateNesting), 0},
		// An else-if chain nests one deeper at each link, and one {{end}} closes it.
		{"{{if 1}}" + strings.Repeat("{{else if 2}}", MaxTemplateNesting-1) + "{{end}}{{if 1}}{{end}}", 0},
		{"{{if 1}}\n" + strings.Repeat("{{else with 2}}\n", MaxTemplateNesting) + "{{end}}", MaxTemplateNesting + 1},
		// Strings, characters, raw strings and comments hold no actions.
		{strings.Repeat(`{{print "}}{{if" '}' `+"`{{if`"+` }}{{/* {{if */}}`, 2*MaxTemplateNesting), 0},
		{strings.Repeat("{{define \"a\"}}", MaxTemplateNesting+1), 1},
		// Unterminated strings and actions (text/template's errors).
		{"{{\"", 0}, {"{{'", 0}, {"{{`", 0}, {"{{\"\\", 0}, {"{{if", 0}, {"{{/*", 0}, {"{{- ", 0},
	} {
		line, deep := templateNesting(tc.text)
		if deep != (tc.line > 0) || line != tc.line {
			t.Errorf("templateNesting(%.40q...) = line %d, %v; want line %d", tc.text, line, deep, tc.line)
		}
	}
}
