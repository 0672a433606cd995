package compiler

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
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

// statCountFS is an fstest.MapFS that counts the Stat calls of each path.
type statCountFS struct {
	fstest.MapFS
	stats map[string]int
}

func (s statCountFS) Stat(name string) (fs.FileInfo, error) {
	s.stats[name]++
	return s.MapFS.Stat(name)
}

// TestTemplateReadOnce: a template that many blocks render is looked at
// once per compile, as a source file is hashed once: 660 of the 700
// renders of the 10k benchmark stated one of 40 templates again.
func TestTemplateReadOnce(t *testing.T) {
	stats := func(blocks int) int {
		files := map[string]string{"t.tmpl": "{{.fact.hostname}}\n"}
		var site strings.Builder
		for i := range blocks {
			fmt.Fprintf(&site, "file \"/etc/f%d\" {\n  template = \"t.tmpl\"\n}\n", i)
		}
		files["site.cairn"] = site.String()
		fsys := statCountFS{MapFS: mapFS(files), stats: map[string]int{}}
		res, err := Compile(context.Background(), fsys, Options{Host: "web-01", Facts: map[string]string{"hostname": "web-01"}})
		if err != nil || len(res.Steps) != blocks {
			t.Fatalf("%d blocks: %v steps, %v", blocks, res, err)
		}
		return fsys.stats["t.tmpl"]
	}
	one, many := stats(1), stats(5)
	if one == 0 {
		t.Fatal("the template is never stated through the file system: the test counts nothing")
	}
	if many != one {
		t.Errorf("the template is stated %d times for 5 blocks that render it, %d for one", many, one)
	}
}
