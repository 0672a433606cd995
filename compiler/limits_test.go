package compiler_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bombs are configurations built to exhaust the compiler, each with the
// error it must stop with instead (the first line of it, with its
// position), and how much it may allocate on the way.
var bombs = []struct {
	name  string
	files map[string]string
	want  string
	alloc int64 // bytes the compile may allocate
}{
	{
		name: "indent",
		files: map[string]string{
			"site.cairn": "file \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"t.tmpl":     "{{indent 99999999999 \"x\"}}\n",
		},
		want:  `site.cairn:2:14: file "/etc/x": template: t.tmpl:1:2: executing "t.tmpl" at <indent 99999999999 "x">: error calling indent: indent 99999999999: the result would pass the 16 MiB a string may hold`,
		alloc: 64 << 20,
	},
	{
		name: "nested range",
		files: map[string]string{
			"site.cairn": "file \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"t.tmpl":     "{{range 100000}}{{range 100000}}{{range 100000}}{{end}}{{end}}{{end}}\n",
		},
		want:  `site.cairn:2:14: file "/etc/x": template: t.tmpl:1:40: executing "t.tmpl" at <range>: error calling range: templates take more than 1000000 steps (range iterations, template and function calls) in one compile`,
		alloc: 1 << 30,
	},
	{
		name: "output",
		files: map[string]string{
			"site.cairn": "file \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"t.tmpl":     "{{range 1000}}{{printf \"%01000000d\" 1}}{{end}}\n",
		},
		want:  `site.cairn:2:14: file "/etc/x": the template renders more than the 16 MiB a file may hold`,
		alloc: 256 << 20,
	},
	{
		name: "template recursion",
		files: map[string]string{
			"site.cairn": "file \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"t.tmpl":     "{{define \"a\"}}{{template \"a\" .}}{{template \"a\" .}}{{end}}{{template \"a\" .}}\n",
		},
		want:  `site.cairn:2:14: file "/etc/x": template: t.tmpl:1:14: executing "a" at <template>: error calling template: template calls nest more than 100 deep`,
		alloc: 64 << 20,
	},
	{
		name: "template nesting",
		files: map[string]string{
			"site.cairn": "file \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"t.tmpl":     strings.Repeat("{{if 1}}", 1<<20),
		},
		want:  `site.cairn:2:14: file "/etc/x": t.tmpl:1: actions nest more than 100 deep`,
		alloc: 64 << 20,
	},
	{
		name:  "template fan-out",
		files: templateFanOut(30),
		want:  `site.cairn:2:14: file "/etc/x": template: t.tmpl:1:1878: executing "a30" at <template>: error calling template: templates take more than 1000000 steps (range iterations, template and function calls) in one compile`,
		alloc: 1 << 30,
	},
	{
		name: "printf of a list",
		files: map[string]string{
			"site.cairn": "variable \"l\" {\n  default = [\"" + strings.Repeat("x", 1000) + "\"]\n}\nfile \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"t.tmpl":     "{{range 100000}}{{$x := printf \"%v%v%v%v%v%v%v%v\" $.var.l $.var.l $.var.l $.var.l $.var.l $.var.l $.var.l $.var.l}}{{end}}\n",
		},
		want:  `evaluation passes its limit of 256 MiB of strings built and values compared in one compile`,
		alloc: 2 << 30,
	},
	{
		name: "comparisons",
		files: map[string]string{
			"site.cairn": "variable \"a\" {\n  default = file(\"big\")\n}\nvariable \"b\" {\n  default = file(\"big\")\n}\nfile \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
			"big":        strings.Repeat("y", 4<<20),
			"t.tmpl":     "{{range 100000}}{{if eq $.var.a $.var.b}}{{end}}{{end}}\n",
		},
		want:  `evaluation passes its limit of 256 MiB of strings built and values compared in one compile`,
		alloc: 256 << 20,
	},
	{
		name:  "string doubling",
		files: map[string]string{"site.cairn": doubling(40, `"${var.v%d}${var.v%d}"`, `"`+strings.Repeat("x", 1000)+`"`)},
		want:  `site.cairn:47:13: interpolation: the result would be 32768000 bytes, more than the 16 MiB a string may hold`,
		alloc: 256 << 20,
	},
	{
		name:  "list doubling",
		files: map[string]string{"site.cairn": doubling(60, `[var.v%d, var.v%d]`, `["x"]`)},
		want:  `site.cairn:59:13: the list would hold more than 16 MiB, counting its strings' bytes and 16 for each element, nested values in full`,
		alloc: 64 << 20,
	},
	{
		name:  "equality of shared lists",
		files: map[string]string{"site.cairn": doubling(16, `[var.v%d, var.v%d]`, `["x"]`) + manyExec(2, "var.v16 == var.v16")},
		want:  "",
		alloc: 64 << 20,
	},
	{
		name: "many comparisons",
		files: map[string]string{"site.cairn": doubling(16, `[var.v%d, var.v%d]`, `["x"]`) +
			manyExec(200, "var.v16 == var.v16")},
		want:  `evaluation passes its limit of 256 MiB of strings built and values compared in one compile`,
		alloc: 256 << 20,
	},
	{
		name: "budget",
		files: map[string]string{"site.cairn": "variable \"big\" {\n  default = file(\"big\")\n}\n" +
			manyFiles(100, "\"${var.big}${var.big}\""), "big": strings.Repeat("z", 2<<20)},
		want:  `evaluation passes its limit of 256 MiB of strings built and values compared in one compile`,
		alloc: 1 << 30,
	},
	{
		name:  "glob",
		files: map[string]string{"site.cairn": "variable \"s\" {\n  default = file(\"big\")\n}\n" + manyExec(1, `glob("`+strings.Repeat("*x", 1000)+`", var.s)`), "big": strings.Repeat("x", 1<<20)},
		want:  `evaluation passes its limit of 256 MiB of strings built and values compared in one compile`,
		alloc: 64 << 20,
	},
	{
		name:  "module calls",
		files: moduleBomb(16, ""),
		want:  `main.cairn:4:1: module "b": more than 10000 module calls in one compile (a module called from a module called twice counts twice): the compile stops here (module "b" called at site.cairn:1:1 > modules/m0/main.cairn:1:1`,
		alloc: 2 << 30,
	},
	{
		name:  "blocks",
		files: moduleBomb(13, strings.Repeat("dir \"/d\" {\n  when = false\n}\n", 200)),
		want:  `modules/m13/main.cairn:283:1: more than 250000 blocks in one compile, a module's counted once for each call of it: the compile stops here`,
		alloc: 2 << 30,
	},
	{
		name:  "journal size",
		files: moduleBomb(9, "exec \"big\" {\n  command = \"echo "+strings.Repeat("j", 1<<20)+"\"\n}\n"),
		want:  `exec "big": the journal passes the 256 MiB it may hold here: the compile stops`,
		alloc: 2 << 30,
	},
	{
		name:  "input size",
		files: map[string]string{"site.cairn": "file \"/x\" {\n  content = file(\"big\")\n}\n", "big": strings.Repeat("b", 16<<20+1)},
		want:  `site.cairn:2:18: file("big"): big: 16777217 bytes, more than the 16 MiB a configuration file may hold`,
		alloc: 64 << 20,
	},
	{
		name:  "include twice",
		files: includeTwice(30),
		want:  `i1.inc:2:9: include "i2.inc": i2.inc is already part of this configuration (a top-level file, or included before)`,
		alloc: 64 << 20,
	},
}

// doubling declares variables v0 (first) to vN, each vI built from v(I-1)
// twice by format.
func doubling(n int, format, first string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "variable \"v0\" {\n  default = %s\n}\n", first)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "variable \"v%d\" {\n  default = %s\n}\n", i, fmt.Sprintf(format, i-1, i-1))
	}
	return b.String()
}

// manyExec is n exec blocks, each kept when cond holds.
func manyExec(n int, cond string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "exec \"e%d\" {\n  command = \"true\"\n  when    = %s\n}\n", i, cond)
	}
	return b.String()
}

// manyFiles is n file blocks with content.
func manyFiles(n int, content string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "file \"/f%d\" {\n  content = %s\n}\n", i, content)
	}
	return b.String()
}

// templateFanOut is a template whose n templates each call the next twice.
func templateFanOut(n int) map[string]string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{{define \"a%d\"}}{{template \"a%d\" .}}{{template \"a%d\" .}}{{end}}", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "{{define \"a%d\"}}x{{end}}{{template \"a0\" .}}\n", n)
	return map[string]string{
		"site.cairn": "file \"/etc/x\" {\n  template = \"t.tmpl\"\n}\n",
		"t.tmpl":     b.String(),
	}
}

// moduleBomb is a configuration of n modules, each calling the next twice;
// the last holds body.
func moduleBomb(n int, body string) map[string]string {
	files := map[string]string{"site.cairn": "module \"a\" {\n  source = \"modules/m0\"\n}\n"}
	for i := range n {
		files[fmt.Sprintf("modules/m%d/main.cairn", i)] = fmt.Sprintf("module \"a\" {\n  source = \"../m%d\"\n}\nmodule \"b\" {\n  source = \"../m%d\"\n}\n", i+1, i+1)
	}
	files[fmt.Sprintf("modules/m%d/main.cairn", n)] = body + "dir \"/m\" {\n  when = false\n}\n"
	return files
}

// includeTwice is site.cairn including i1, each iN including i(N+1) twice.
func includeTwice(n int) map[string]string {
	files := map[string]string{"site.cairn": "include \"i1.inc\" {}\n"}
	for i := 1; i < n; i++ {
		files[fmt.Sprintf("i%d.inc", i)] = fmt.Sprintf("include \"i%d.inc\" {}\ninclude \"i%d.inc\" {}\n", i+1, i+1)
	}
	files[fmt.Sprintf("i%d.inc", n)] = "dir \"/i\" {}\n"
	return files
}

// TestBombs: each bomb stops with its error within seconds, having
// allocated no more than it may.
func TestBombs(t *testing.T) {
	for _, tc := range bombs {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.files)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := compileWithin(t, 60*time.Second, dir)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := int64(after.TotalAlloc - before.TotalAlloc)
			t.Logf("%v, %d MiB allocated", took.Round(time.Millisecond), alloc>>20)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want a journal: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
			if err != nil && strings.Count(err.Error(), "evaluation passes its limit") > 1 {
				t.Errorf("the evaluation budget is reported more than once:\n%v", err)
			}
			if alloc > tc.alloc {
				t.Errorf("allocated %d MiB, more than %d MiB", alloc>>20, tc.alloc>>20)
			}
		})
	}
}

// TestPluginOutputCap: a plugin that prints more than MaxPluginOutput is
// killed once it passes it, and the error names the plugin block; what it
// printed is never held whole.
func TestPluginOutputCap(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.cairn": "dir \"/a\" {}\n\nplugin \"loud\" {\n  command = \"./loud.sh\"\n}\n",
		"loud.sh":    "#!/bin/sh\nexec yes 'MKDIR /x'\n",
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := compileWithin(t, 30*time.Second, dir)
	runtime.ReadMemStats(&after)
	want := `site.cairn:3:1: plugin "loud": ./loud.sh: killed: it printed more than the 64 MiB its standard output may hold`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
		t.Errorf("allocated %d MiB", alloc>>20)
	}
}
