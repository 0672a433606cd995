package compiler_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/journal"
)

// writeTree writes files (path -> content) beneath dir; a script (content
// starting with #!) is made executable.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// compileDir compiles the configuration in dir for web-01 with fixed facts.
func compileDir(t testing.TB, dir, blobDir string) (*compiler.Result, error) {
	t.Helper()
	return compiler.Compile(context.Background(), os.DirFS(dir), compiler.Options{
		Host:  "web-01",
		Facts: map[string]string{"release": "12", "codename": "bookworm", "arch": "amd64"},
		Dir:   dir,
		Blobs: blobsAt(blobDir),
		Env:   []string{"PATH=/usr/bin:/bin"},
	})
}

func mustCompile(t *testing.T, dir, blobDir string) *compiler.Result {
	t.Helper()
	res, err := compileDir(t, dir, blobDir)
	if err != nil {
		t.Fatalf("compile %s: %v", dir, err)
	}
	return res
}

func sum(data string) string {
	h := sha256.Sum256([]byte(data))
	return hex.EncodeToString(h[:])
}

// fleet is a configuration that uses every part of the compiler: hosts,
// variables, includes, nested modules, templates, content, sources, kube,
// playbooks, a plugin, services and checks.
var fleet = map[string]string{
	"site.cairn": `
hosts {
  group "canary" {
    match  = ["web-01"]
    branch = "canary"
    vars   = { workers = 2 }
  }
  group "web" {
    match  = ["web-*"]
    branch = "main"
  }
}

variable "workers" {
  default = 4
}

group "deploy" {
  gid = 2000
}

user "deploy" {
  uid    = 2000
  gid    = "deploy"
  home   = "/home/deploy"
  groups = ["www-data"]
}

package "nginx" {}

file "/etc/nginx/nginx.conf" {
  template = "templates/nginx.conf.tmpl"
  vars     = { user = "www-data" }
}

service "nginx" {
  restart_on = ["/etc/nginx/nginx.conf"]
}

module "shop" {
  source = "modules/site"
  domain = "shop.example.org"
}

module "blog" {
  source = "modules/site"
  domain = "blog.example.org"
}

include "roles/*.cairn" {}

kube "k8s/app" {
  kustomize = true
}

playbook "playbooks/hardening.yml" {}

plugin "firewall" {
  command = "plugins/fw.sh"
  args    = ["--zone", "dmz"]
}

check "nginx-up" {
  http  = "http://127.0.0.1/"
  after = ["service.nginx", "module.shop", "module.blog"]
}
`,
	"templates/nginx.conf.tmpl": "user {{.vars.user}};\nworker_processes {{.var.workers}};\n# {{.fact.hostname}} {{.fact.branch}}\n",
	"modules/site/main.cairn": `
variable "domain" {}

dir "/srv/${var.domain}" {
  owner = "deploy"
}

file "/srv/${var.domain}/index.html" {
  source = "files/index.html"
  owner  = "deploy"
}

file "/etc/nginx/sites-enabled/${var.domain}" {
  content = <<-EOT
    server { server_name ${var.domain}; root /srv/${var.domain}; }
    EOT
}

module "tls" {
  source = "../tls"
  domain = var.domain
}
`,
	"modules/site/files/index.html": "<h1>hello</h1>\n",
	"modules/tls/main.cairn": `
variable "domain" {}

exec "cert-${var.domain}" {
  command = "certbot certonly -d ${var.domain}"
  creates = "/etc/letsencrypt/live/${var.domain}/cert.pem"
  undo    = "certbot delete --cert-name ${var.domain}"
}
`,
	"roles/base.cairn": `
package "curl" {}

unit "cleanup.timer" {
  content = "[Timer]\nOnCalendar=daily\n"
  enabled = true
}
`,
	"k8s/app/kustomization.yaml": "resources: [deployment.yaml]\n",
	"k8s/app/deployment.yaml":    "kind: Deployment\n",
	"playbooks/hardening.yml":    "- hosts: all\n",
	"plugins/fw.sh":              "#!/bin/sh\necho 'APT-INSTALL nftables'\necho \"EXEC \\\"nft -f /etc/nftables.conf $*\\\" undo=\\\"nft flush ruleset\\\"\"\n",
}

// TestDeterminism: one configuration copied to two directories of different
// names and depths compiles to byte-identical journals, and compiling one
// of them again gives the same bytes.
func TestDeterminism(t *testing.T) {
	root := t.TempDir()
	dirs := []string{
		filepath.Join(root, "checkout-a"),
		filepath.Join(root, "somewhere", "else", "entirely-different-name"),
	}
	for _, d := range dirs {
		writeTree(t, d, fleet)
	}
	first := mustCompile(t, dirs[0], filepath.Join(root, "blobs-a")).Journal()
	if len(first) == 0 || !bytes.Contains(first, []byte("modules/site/main.cairn")) {
		t.Fatalf("journal is not the fleet's:\n%s", first)
	}
	for _, tc := range []struct {
		name, dir, blobs string
	}{
		{"other directory", dirs[1], filepath.Join(root, "blobs-b")},
		{"same directory again", dirs[0], filepath.Join(root, "blobs-a")},
		{"without blobs", dirs[1], ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCompile(t, tc.dir, tc.blobs).Journal()
			if !bytes.Equal(got, first) {
				t.Errorf("journals differ:\n--- got\n%s--- want\n%s", got, first)
			}
			for _, d := range dirs {
				if bytes.Contains(got, []byte(d)) {
					t.Errorf("journal names the checkout's path %s", d)
				}
			}
		})
	}
	for _, name := range []string{"blobs-a", "blobs-b"} {
		a, b := listDir(t, filepath.Join(root, "blobs-a")), listDir(t, filepath.Join(root, name))
		if !slices.Equal(a, b) {
			t.Errorf("blob directories differ: %v and %v", a, b)
		}
	}
}

// TestJournalRoundTrip: a compiled journal parses back to the same steps,
// with their source positions, and passes the journal's static checks.
func TestJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, fleet)
	res := mustCompile(t, dir, filepath.Join(t.TempDir(), "blobs"))
	j, err := journal.Parse("web-01.journal", res.Journal())
	if err != nil {
		t.Fatalf("parse the compiled journal: %v\n%s", err, res.Journal())
	}
	if len(j.Steps) != len(res.Steps) {
		t.Fatalf("parsed %d steps, compiled %d", len(j.Steps), len(res.Steps))
	}
	for i := range j.Steps {
		got, want := &j.Steps[i], &res.Steps[i]
		if got.Canonical() != want.Canonical() || got.Source != want.Source {
			t.Errorf("step %d: parsed %q # %s, compiled %q # %s", i+1, got.Canonical(), got.Source, want.Canonical(), want.Source)
		}
		if want.Source == "" {
			t.Errorf("step %d (%s) has no source position", i+1, want.Canonical())
		}
		for _, s := range []*journal.Step{got, want} { // with a canonical form kept and without
			if line := string(s.AppendString([]byte("x"))); line != "x"+s.String() {
				t.Errorf("step %d: AppendString gives %q, String %q", i+1, line, s.String())
			}
		}
	}
	// The lines are made in the writer's buffer: a string a step would
	// cost 20,000 allocations for the 10k benchmark's journal.
	if allocs := testing.AllocsPerRun(5, func() { res.WriteJournal(io.Discard) }); allocs > 2 {
		t.Errorf("WriteJournal of %d steps: %v allocations, want at most 2 (its writer)", len(res.Steps), allocs)
	}
	if errs := journal.Check(j.Steps); errs.HasErrors() {
		t.Errorf("compiled journal fails the static checks:\n%v", errs)
	}
	// The fleet has one of each op a configuration can make but INCLUDE.
	ops := map[string]bool{}
	for _, s := range j.Steps {
		ops[s.Op] = true
	}
	for _, sig := range journal.Signatures() {
		if sig.Op != journal.OpInclude && sig.Op != journal.OpSymlink && sig.Op != journal.OpRm && !ops[sig.Op] {
			t.Errorf("the fleet makes no %s step", sig.Op)
		}
	}
}

// TestBlobs: inline content and rendered templates are written to BlobDir
// under their sha256 with exactly their bytes, source files are not, and
// with BlobDir "" nothing is written anywhere in the configuration.
func TestBlobs(t *testing.T) {
	files := map[string]string{
		"site.cairn": `
variable "name" {
  default = "cairn"
}

file "/etc/motd" {
  content = "hello ${var.name}\n"
}

file "/etc/app.conf" {
  template = "app.conf.tmpl"
  vars     = { port = 8080 }
}

file "/etc/same" {
  content = "hello cairn\n"
}

file "/etc/source" {
  source = "files/source"
}

unit "app.service" {
  content = "[Service]\nExecStart=/bin/true\n"
}
`,
		"app.conf.tmpl": "host={{.fact.hostname}} name={{.var.name}} port={{.vars.port}}\n",
		"files/source":  "from the repository\n",
	}
	want := map[string]string{}
	for _, content := range []string{
		"hello cairn\n",
		"host=web-01 name=cairn port=8080\n",
		"[Service]\nExecStart=/bin/true\n",
	} {
		want[sum(content)] = content
	}

	dir := t.TempDir()
	writeTree(t, dir, files)
	blobDir := filepath.Join(t.TempDir(), "does", "not", "exist", "yet")
	res := mustCompile(t, dir, blobDir)

	names := listDir(t, blobDir)
	if len(names) != len(want) {
		t.Errorf("blob directory holds %v, want the %d blobs %v", names, len(want), want)
	}
	for name, content := range want {
		data, err := os.ReadFile(filepath.Join(blobDir, name))
		if err != nil {
			t.Errorf("blob of %q: %v", content, err)
			continue
		}
		if string(data) != content {
			t.Errorf("blob %s holds %q, want %q", name, data, content)
		}
	}
	for _, s := range res.Steps {
		if s.Op != journal.OpCopy {
			continue
		}
		h := s.Get("sha256")
		if _, ok := want[h]; ok != (s.Args[0] == "-") {
			t.Errorf("%s: a COPY - must name a blob written, a repository COPY none", s.Canonical())
		}
	}

	before := listTree(t, dir)
	again := mustCompile(t, dir, "")
	if !bytes.Equal(again.Journal(), res.Journal()) {
		t.Errorf("the journal depends on BlobDir:\n%s\n%s", again.Journal(), res.Journal())
	}
	if after := listTree(t, dir); !slices.Equal(before, after) {
		t.Errorf("compiling with no BlobDir changed the configuration directory: %v, then %v", before, after)
	}
}

// TestKubeHash: the sha256 of a kube step changes whenever a manifest is
// changed, renamed, added or removed, and comes back with the content.
func TestKubeHash(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.cairn":                  "kube \"k8s\" {\n  kustomize = true\n}\n",
		"k8s/kustomization.yaml":      "resources: [app.yaml]\n",
		"k8s/app.yaml":                "replicas: 1\n",
		"k8s/overlays/prod/patch.yml": "replicas: 3\n",
	})
	kubeHash := func() string {
		t.Helper()
		res := mustCompile(t, dir, "")
		if len(res.Steps) != 1 || res.Steps[0].Op != journal.OpKubectlApply {
			t.Fatalf("want one KUBECTL-APPLY, got:\n%s", res.Journal())
		}
		return res.Steps[0].Get("sha256")
	}
	original := kubeHash()
	app := filepath.Join(dir, "k8s", "app.yaml")
	seen := map[string]string{original: "original"}
	for _, tc := range []struct {
		name   string
		change func() error
	}{
		{"changed manifest", func() error { return os.WriteFile(app, []byte("replicas: 2\n"), 0o644) }},
		{"changed nested manifest", func() error {
			return os.WriteFile(filepath.Join(dir, "k8s", "overlays", "prod", "patch.yml"), []byte("replicas: 4\n"), 0o644)
		}},
		{"renamed manifest", func() error { return os.Rename(app, filepath.Join(dir, "k8s", "app2.yaml")) }},
		{"added manifest", func() error {
			return os.WriteFile(filepath.Join(dir, "k8s", "extra.yaml"), []byte("kind: ConfigMap\n"), 0o644)
		}},
		{"removed manifest", func() error { return os.Remove(filepath.Join(dir, "k8s", "kustomization.yaml")) }},
	} {
		if err := tc.change(); err != nil {
			t.Fatal(err)
		}
		h := kubeHash()
		if prev, dup := seen[h]; dup {
			t.Errorf("%s: the hash is the one of %s (%s)", tc.name, prev, h)
		}
		seen[h] = tc.name
	}

	// Back to the original content: the original hash.
	for _, name := range []string{"app2.yaml", "extra.yaml"} {
		if err := os.Remove(filepath.Join(dir, "k8s", name)); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(t, dir, map[string]string{
		"k8s/kustomization.yaml":      "resources: [app.yaml]\n",
		"k8s/app.yaml":                "replicas: 1\n",
		"k8s/overlays/prod/patch.yml": "replicas: 3\n",
	})
	if h := kubeHash(); h != original {
		t.Errorf("restored manifests hash to %s, want the original %s", h, original)
	}
}

// TestHosts: Hosts reads the host groups in source order and GroupOf picks
// the first whose patterns match a host.
func TestHosts(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"a.cairn": `
hosts {
  group "canary" {
    match  = ["web-01", "db-01"]
    branch = "canary"
  }
  group "web" {
    match  = ["web-*", "lb-?"]
    branch = "main"
  }
}
`,
		"b.cairn": `
hosts {
  group "db" {
    match = ["db-[0-9]*"]
  }
}

package "not read by Hosts" {
  when = fact.nothing
}
`,
	})
	groups, err := compiler.Hosts(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		names = append(names, g.Name+"@"+g.Branch)
	}
	if want := []string{"canary@canary", "web@main", "db@"}; !slices.Equal(names, want) {
		t.Errorf("groups %v, want %v", names, want)
	}
	if want := []string{"web-*", "lb-?"}; !slices.Equal(groups[1].Match, want) {
		t.Errorf("web matches %v, want %v", groups[1].Match, want)
	}
	if groups[2].Pos.Filename != "b.cairn" || groups[2].Pos.Line != 3 {
		t.Errorf("db group at %v, want b.cairn:3", groups[2].Pos)
	}
	for _, tc := range []struct {
		host, group string
		ok          bool
	}{
		{"web-01", "canary", true}, // first match wins
		{"web-02", "web", true},
		{"lb-1", "web", true},
		{"lb-12", "", false},
		{"db-01", "canary", true},
		{"db-07", "db", true},
		{"db-x", "", false},
		{"mail-01", "", false},
	} {
		g, ok := compiler.GroupOf(groups, tc.host)
		if ok != tc.ok || g.Name != tc.group {
			t.Errorf("GroupOf(%s) = %q, %v; want %q, %v", tc.host, g.Name, ok, tc.group, tc.ok)
		}
	}
}

// TestHostsErrors: a malformed hosts block is an error list naming the
// place.
func TestHostsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"no match", "hosts {\n  group \"web\" {\n    branch = \"main\"\n  }\n}\n", `site.cairn:2:3: group block: attribute "match" is required`},
		{"bad pattern", "hosts {\n  group \"web\" {\n    match = [\"web-[\"]\n  }\n}\n", `site.cairn:3:5: bad host pattern "web-["`},
		{"twice", "hosts {\n  group \"web\" {\n    match = [\"a\"]\n  }\n  group \"web\" {\n    match = [\"b\"]\n  }\n}\n", `site.cairn:5:3: host group "web" is defined twice`},
		{"not a group", "hosts {\n  grop \"web\" {\n    match = [\"a\"]\n  }\n}\n", `did you mean "group"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"site.cairn": tc.src})
			_, err := compiler.Hosts(os.DirFS(dir))
			var list syntax.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Hosts: %v, want an error list", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not hold %q", err, tc.want)
			}
		})
	}
}

// TestCancel: a compile whose context is done returns the context's error,
// whether it is done before the compile starts or while a plugin runs.
func TestCancel(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.cairn": "package \"a\" {}\n\nplugin \"slow\" {\n  command = \"./slow.sh\"\n}\n\npackage \"b\" {}\n",
		// The shell waits for a child that holds its standard output.
		"slow.sh": "#!/bin/sh\nsleep 30\necho 'APT-INSTALL late'\n",
	})
	opts := compiler.Options{Host: "web-01", Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}}

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := compiler.Compile(ctx, os.DirFS(dir), opts)
		if !errors.Is(err, context.Canceled) || res != nil {
			t.Errorf("Compile = %v, %v; want nil, context.Canceled", res, err)
		}
	})
	t.Run("during a plugin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, err := compiler.Compile(ctx, os.DirFS(dir), opts)
		if !errors.Is(err, context.DeadlineExceeded) || res != nil {
			t.Errorf("Compile = %v, %v; want nil, context.DeadlineExceeded", res, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Compile returned %v after the deadline", d)
		}
	})
}

// listDir returns the names in dir, sorted; none if it does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// listTree returns every path beneath dir, sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReloadFollowsTheUnitFile checks that a unit file renamed with its
// content unchanged changes the SYSTEMD-RELOAD line, so that the move
// reloads systemd (which would otherwise keep the old name loaded and not
// know the new one); for a source and for inline content.
func TestReloadFollowsTheUnitFile(t *testing.T) {
	for _, body := range []string{`source = "app.service"`, `content = "[Service]\nExecStart=/bin/true\n"`} {
		reload := func(name string) string {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{
				"site.cairn":  "unit \"" + name + "\" {\n  " + body + "\n}\n",
				"app.service": "[Service]\nExecStart=/bin/true\n",
			})
			for _, st := range mustCompile(t, dir, "").Steps {
				if st.Op == journal.OpSystemdReload {
					return st.Canonical()
				}
			}
			t.Fatalf("%s: no SYSTEMD-RELOAD", name)
			return ""
		}
		a, x, again := reload("a.service"), reload("x.service"), reload("a.service")
		if a == x {
			t.Errorf("%s: renaming the unit left %q unchanged", body, a)
		}
		if a != again {
			t.Errorf("%s: the same unit gave %q and %q", body, a, again)
		}
	}
}

// blobsAt is the blob directory dir, or no blobs for "".
func blobsAt(dir string) compiler.Blobs {
	if dir == "" {
		return nil
	}
	return compiler.BlobDir(dir)
}
