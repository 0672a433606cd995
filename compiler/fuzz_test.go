package compiler_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/compiler/syntax"
)

// fuzzTime and fuzzAlloc bound one compile of FuzzCompile: the limits of
// limits.go must stop any configuration well within them (the slowest
// bombs of TestBombs take a few seconds and allocate under 1 GiB).
const (
	fuzzTime  = 30 * time.Second
	fuzzAlloc = 2 << 30
)

// FuzzCompile compiles a small in-memory configuration (a top-level file,
// a template, an included file and a module) and checks that the compile
// ends within fuzzTime, allocates at most fuzzAlloc, returns a journal
// within the limits or errors that each name a position, and never panics.
// Configurations with a plugin are passed over: a plugin is a program the
// configuration runs.
func FuzzCompile(f *testing.F) {
	seeds := [][4]string{
		{
			"variable \"n\" {\n  default = 3\n}\n\nfile \"/etc/t\" {\n  template = \"t.tmpl\"\n  vars     = { items = [\"a\", \"b\"] }\n}\n\ninclude \"inc/inc.cairn\" {}\n\nmodule \"m\" {\n  source = \"mod\"\n  name   = \"x\"\n}\n",
			"{{range .vars.items}}{{. | upper}} {{indent 2 .}}\n{{end}}{{.fact.hostname}} {{printf \"%05d\" 3}}\n",
			"dir \"/srv/${var.n}\" {}\n",
			"variable \"name\" {}\n\nfile \"/srv/${var.name}\" {\n  content = join(\",\", [lower(\"A\"), file(\"../data.txt\")])\n}\n",
		},
		{
			"file \"/x\" {\n  template = \"t.tmpl\"\n}\n",
			"{{define \"a\"}}{{template \"b\" .}}{{end}}{{define \"b\"}}{{len .var}}{{end}}{{template \"a\" .}}{{range 3}}{{range 2}}.{{end}}{{end}}",
			"", "",
		},
		{
			"variable \"a\" {\n  default = \"xy\"\n}\n\nvariable \"b\" {\n  default = \"${var.a}${var.a}\"\n}\n\nexec \"e\" {\n  command = \"echo ${var.b}\"\n  when    = var.b == \"xyxy\" && glob(\"x*\", var.a) && contains([1, 2], 2)\n}\n",
			"{{eq 1 1}}{{lt \"a\" \"b\"}}{{html \"<\"}}{{js \"'\"}}{{urlquery \"&\"}}{{println 1}}{{print 2}}{{join \",\" (slice .vars.l 0 1)}}",
			"", "",
		},
		{"include \"inc/x.cairn\" {}\n", "", "include \"y.cairn\" {}\n", ""},
		{"module \"m\" {\n  source = \"mod\"\n}\nmodule \"n\" {\n  source = \"mod\"\n}\n", "", "", "module \"m\" {\n  source = \"../mod\"\n}\n"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, site, tmpl, inc, mod string) {
		for _, s := range []string{site, tmpl, inc, mod} {
			if strings.Contains(s, "plugin") {
				t.Skip("a plugin runs a program")
			}
		}
		fsys := fstest.MapFS{
			"site.cairn":        {Data: []byte(site)},
			"t.tmpl":            {Data: []byte(tmpl)},
			"inc/inc.cairn":     {Data: []byte(inc)},
			"inc/x.cairn":       {Data: []byte(inc)},
			"mod/main.cairn":    {Data: []byte(mod)},
			"mod/t.tmpl":        {Data: []byte(tmpl)},
			"data.txt":          {Data: []byte("data\n")},
			"files/source.conf": {Data: []byte("source\n")},
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*fuzzTime)
		defer cancel()
		res, err := compiler.Compile(ctx, fsys, compiler.Options{
			Host:  "web-01",
			Facts: map[string]string{"release": "12", "codename": "bookworm", "arch": "amd64"},
			Env:   []string{"PATH=/nonexistent"},
		})
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if took > fuzzTime {
			t.Fatalf("the compile took %v", took)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > fuzzAlloc {
			t.Fatalf("the compile allocated %d MiB", alloc>>20)
		}
		if err != nil {
			var list syntax.ErrorList
			if !errors.As(err, &list) {
				if strings.Contains(err.Error(), "no *.cairn file") || strings.Contains(err.Error(), "no host") {
					return
				}
				t.Fatalf("an error that is no list of findings: %T %v", err, err)
			}
			for _, e := range list {
				if e.Pos.Filename == "" || e.Pos.Line < 1 {
					t.Fatalf("a finding without a position: %v", e)
				}
			}
			return
		}
		if n := len(res.Journal()); n > compiler.MaxJournalSize+len(res.Steps)*256 {
			t.Fatalf("a journal of %d bytes", n)
		}
	})
}
