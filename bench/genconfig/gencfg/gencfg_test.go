package gencfg

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/journal"
)

// TestGenerateCompiles compiles generated repositories of several shapes
// and holds the journal to the figures the generator gives.
func TestGenerateCompiles(t *testing.T) {
	tests := []struct {
		name string
		p    Params
	}{
		{"smallest", Params{Resources: 3, Dirs: 1, Modules: 1}},
		{"one module", Params{Resources: 300, Dirs: 7, Modules: 1}},
		{"uneven", Params{Resources: 777, Dirs: 41, Modules: 7}},
		{"1k", Params{Resources: 1000, Dirs: 50, Modules: 20}},
		{"dirs only", Params{Resources: 22, Dirs: 20, Modules: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := Generate(dir, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Resources != tt.p.Resources {
				t.Errorf("Resources = %d, want %d", st.Resources, tt.p.Resources)
			}
			if st.Dirs != tt.p.Dirs+1 { // and /srv
				t.Errorf("Dirs = %d, want %d", st.Dirs, tt.p.Dirs+1)
			}
			byType := st.Dirs + st.Files + st.Users + st.Groups + st.Packages + st.Services
			if byType != st.Resources {
				t.Errorf("resources by type add up to %d, want %d", byType, st.Resources)
			}
			if st.Files != st.Sources+st.Contents+st.Templates {
				t.Errorf("Files = %d, but sources+contents+templates = %d", st.Files, st.Sources+st.Contents+st.Templates)
			}
			if st.CairnFiles != tt.p.Modules+1 {
				t.Errorf("CairnFiles = %d, want %d", st.CairnFiles, tt.p.Modules+1)
			}
			res, err := compiler.Compile(context.Background(), os.DirFS(dir), compiler.Options{
				Host:  Host,
				Facts: map[string]string{"release": Release, "arch": "amd64", "codename": "bookworm"},
				Blobs: compiler.BlobDir(t.TempDir()),
				Dir:   dir,
			})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if len(res.Steps) != st.Steps {
				t.Errorf("the journal has %d steps, Stats.Steps says %d", len(res.Steps), st.Steps)
			}
			if res.Group != "web" {
				t.Errorf("host %s is in group %q, want web", Host, res.Group)
			}
			ops := map[string]int{}
			for _, s := range res.Steps {
				ops[s.Op]++
			}
			wantOps := map[string]int{
				journal.OpMkdir:         st.Dirs,
				journal.OpCopy:          st.Files - st.Skipped,
				journal.OpUseradd:       st.Users,
				journal.OpGroupadd:      st.Groups,
				journal.OpAptInstall:    st.Packages,
				journal.OpSystemdEnable: st.Services,
				journal.OpSystemdStart:  st.Services,
			}
			for op, n := range wantOps {
				if ops[op] != n {
					t.Errorf("%d %s steps, want %d", ops[op], op, n)
				}
			}
			if errs := journal.Check(res.Steps); len(errs) > 0 {
				t.Errorf("journal.Check: %v", errs)
			}
		})
	}
}

// TestGenerateMix checks that a repository of the benchmarks' shape holds
// every kind of block it promises, in the proportions of the package doc.
func TestGenerateMix(t *testing.T) {
	st, err := Generate(t.TempDir(), Params{Resources: 10000, Dirs: 500, Modules: 20})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		n        int
		min, max float64 // shares of all resources
	}{
		{"dirs", st.Dirs, 0.04, 0.06},
		{"sources", st.Sources, 0.6, 0.85},
		{"contents", st.Contents, 0.03, 0.1},
		{"templates", st.Templates, 0.03, 0.1},
		{"users, groups, packages, services", st.Users + st.Groups + st.Packages + st.Services, 0.02, 0.08},
		{"conditional", st.Conditional, 0.01, 0.08},
		{"skipped", st.Skipped, 0.005, float64(st.Conditional) / float64(st.Resources)},
	}
	for _, tt := range tests {
		share := float64(tt.n) / float64(st.Resources)
		if share < tt.min || share > tt.max {
			t.Errorf("%s: %d of %d resources (%.3f), want between %.3f and %.3f", tt.name, tt.n, st.Resources, share, tt.min, tt.max)
		}
	}
}

// TestGenerateDeterministic generates one repository twice and compares
// every file, byte for byte; the .cairn files must be in canonical style.
func TestGenerateDeterministic(t *testing.T) {
	p := Params{Resources: 1500, Dirs: 70, Modules: 6}
	a, b := t.TempDir(), t.TempDir()
	sa, err := Generate(a, p)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Generate(b, p)
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb {
		t.Errorf("two runs give different figures:\n%v\n%v", sa, sb)
	}
	ta, tb := readTree(t, a), readTree(t, b)
	if len(ta) != sa.CairnFiles+sa.DataFiles {
		t.Errorf("%d files written, the figures say %d", len(ta), sa.CairnFiles+sa.DataFiles)
	}
	if len(ta) != len(tb) {
		t.Fatalf("%d files, then %d", len(ta), len(tb))
	}
	for name, data := range ta {
		if !bytes.Equal(data, tb[name]) {
			t.Errorf("%s differs between two runs", name)
		}
		if !strings.HasSuffix(name, ".cairn") {
			continue
		}
		canon, err := syntax.FormatSource(name, string(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !bytes.Equal(canon, data) {
			t.Errorf("%s is not in cairn fmt's canonical style", name)
		}
	}
}

// readTree reads every file beneath dir, by slash path relative to dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGenerateRefuses covers the parameters and directories Generate turns
// down.
func TestGenerateRefuses(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "stale.cairn"), []byte("# old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		p    Params
		want string
	}{
		{"no module", t.TempDir(), Params{Resources: 10, Dirs: 1, Modules: 0}, "modules"},
		{"fewer dirs than modules", t.TempDir(), Params{Resources: 10, Dirs: 2, Modules: 3}, "dirs"},
		{"fewer resources than dirs", t.TempDir(), Params{Resources: 5, Dirs: 4, Modules: 1}, "resources"},
		{"directory not empty", full, Params{Resources: 10, Dirs: 1, Modules: 1}, "not empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.dir, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Generate: %v, want an error about %q", err, tt.want)
			}
		})
	}
}
