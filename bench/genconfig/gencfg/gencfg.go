package gencfg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Params shape a repository.
type Params struct {
	// Resources is the number of resource blocks in all, the two of
	// site.cairn (dir /srv and file /etc/motd) included.
	Resources int
	// Dirs is the number of dir blocks in the modules, spread evenly over
	// them: each module's root directory and its subdirectories.
	Dirs int
	// Modules is the number of modules, each called once from site.cairn.
	Modules int
}

// Host and Release are the host name and the fact release for which
// Stats.Steps and Stats.Skipped are counted. Host falls in host group web.
const (
	Host    = "web-01"
	Release = "12"
)

// rootResources is the number of resource blocks of site.cairn.
const rootResources = 2

// Stats describe a generated repository.
type Stats struct {
	// Resources counts resource blocks; the fields after it count them by
	// type (Files split into Sources, Contents and Templates). Dirs is
	// Params.Dirs and one more, the /srv of site.cairn.
	Resources                         int
	Dirs, Files                       int
	Sources, Contents, Templates      int
	Users, Groups, Packages, Services int
	// Conditional counts the resource blocks with a when condition, and
	// Skipped those among them whose condition is false for Host.
	Conditional, Skipped int
	// Steps is the number of journal steps the repository compiles to for
	// Host with fact release=Release.
	Steps int
	// CairnFiles and CairnBytes count the .cairn files and their bytes;
	// DataFiles counts the other files (sources and templates).
	CairnFiles int
	CairnBytes int64
	DataFiles  int
}

// String gives the figures on one line, NAME=VALUE separated by spaces.
func (s Stats) String() string {
	return fmt.Sprintf("resources=%d dirs=%d files=%d sources=%d contents=%d templates=%d users=%d groups=%d packages=%d services=%d conditional=%d skipped=%d steps=%d cairn_files=%d cairn_bytes=%d data_files=%d",
		s.Resources, s.Dirs, s.Files, s.Sources, s.Contents, s.Templates, s.Users, s.Groups, s.Packages, s.Services,
		s.Conditional, s.Skipped, s.Steps, s.CairnFiles, s.CairnBytes, s.DataFiles)
}

// Check says whether p describes a repository Generate can write.
func (p Params) Check() error {
	switch {
	case p.Modules < 1:
		return fmt.Errorf("modules: want at least 1, got %d", p.Modules)
	case p.Dirs < p.Modules:
		return fmt.Errorf("dirs: want at least one per module (%d), got %d", p.Modules, p.Dirs)
	case p.Resources < p.Dirs+rootResources:
		return fmt.Errorf("resources: want at least dirs+%d (%d), got %d", rootResources, p.Dirs+rootResources, p.Resources)
	}
	return nil
}

// Generate writes the repository into dir, which must be missing or empty
// (so that nothing stale is left in it), and returns its figures.
func Generate(dir string, p Params) (Stats, error) {
	if err := p.Check(); err != nil {
		return Stats{}, err
	}
	if err := emptyDir(dir); err != nil {
		return Stats{}, err
	}
	g := &gen{dir: dir, p: p, modW: width(p.Modules - 1)}
	per := (p.Resources - rootResources + p.Modules - 1) / p.Modules
	g.fileW = max(5, width(per))
	g.dirW = max(3, width((p.Dirs+p.Modules-1)/p.Modules))
	if err := g.site(); err != nil {
		return Stats{}, err
	}
	for m := range p.Modules {
		if err := g.module(m); err != nil {
			return Stats{}, err
		}
	}
	return g.st, nil
}

// emptyDir makes dir if it is missing and fails if it holds anything.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err == nil {
		return fmt.Errorf("output directory %s is not empty", dir)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("output directory: %w", err)
	}
	return nil
}

// width is the number of decimal digits of n (at least 2).
func width(n int) int {
	return max(2, len(strconv.Itoa(max(n, 0))))
}

// share is the part of total that item i of n gets: total/n, and one more
// for the first total%n items.
func share(total, n, i int) int {
	s := total / n
	if i < total%n {
		s++
	}
	return s
}

type gen struct {
	dir               string
	p                 Params
	modW, fileW, dirW int
	st                Stats
	ids               int // the last uid or gid handed out, above 20000
}

func (g *gen) modName(m int) string { return fmt.Sprintf("m%0*d", g.modW, m) }

// write writes one file of the repository, making its directory.
func (g *gen) write(rel string, data []byte) error {
	p := filepath.Join(g.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("generate %s: %w", rel, err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("generate %s: %w", rel, err)
	}
	if strings.HasSuffix(rel, ".cairn") {
		g.st.CairnFiles++
		g.st.CairnBytes += int64(len(data))
	} else {
		g.st.DataFiles++
	}
	return nil
}

// site writes site.cairn: the hosts block, the variables, the top-level
// resources and a call of every module.
func (g *gen) site() error {
	var b strings.Builder
	fmt.Fprintf(&b, `# A generated configuration (bench/genconfig): %d resources, %d directories, %d modules.

hosts {
  group "canary" {
    match  = ["web-00"]
    branch = "canary"
    vars   = { workers = 2 }
  }
  group "web" {
    match  = ["web-*"]
    branch = "main"
    vars   = { workers = 8 }
  }
  group "db" {
    match  = ["db-*", "pg-*"]
    branch = "main"
  }
}

variable "domain" {
  default     = "example.org"
  description = "the site's domain name"
}
variable "workers" {
  default = 4
}
variable "env" {
  default = "prod"
}
variable "admins" {
  default = ["alice", "bob"]
}

dir "/srv" {}

file "/etc/motd" {
  content = "Welcome to ${fact.hostname} (${fact.group}), ${var.env} at ${var.domain}.\nAdmins: ${join(", ", var.admins)}\n"
}
`, g.p.Resources, g.p.Dirs, g.p.Modules)
	g.st.Resources += 2
	g.st.Dirs++
	g.st.Files++
	g.st.Contents++
	g.st.Steps += 2
	for m := range g.p.Modules {
		name := g.modName(m)
		fmt.Fprintf(&b, `
module %q {
  source  = "modules/%s"
  root    = "/srv/%s"
  domain  = "%s.${var.domain}"
  workers = var.workers
  env     = var.env
  index   = %d
  tags    = [%q, var.env]
`, name, name, name, name, m, name)
		if m%5 == 4 {
			b.WriteString("  when    = fact.release >= 11 && fact.group != \"db\"\n")
		}
		b.WriteString("}\n")
	}
	return g.write("site.cairn", []byte(b.String()))
}

// Templates of every module: a file block names one of them.
var templates = []struct{ name, text string }{
	{"app.conf.tmpl", `# {{.vars.name}} for {{.fact.hostname}} ({{.fact.group}}), module {{.var.index}}
server_name {{.var.domain}};
listen      {{.vars.port}};
workers     {{.var.workers}};
{{- range .vars.upstreams}}
upstream    {{.}};
{{- end}}
tags        {{join "," .var.tags}};
`},
	{"env.sh.tmpl", `# {{upper .var.env}} environment of {{.fact.hostname}}, release {{.fact.release}}
export DOMAIN={{.var.domain}}
export NAME={{.vars.name}}
export PORT={{.vars.port}}
`},
}

// modGen writes one module.
type modGen struct {
	g    *gen
	m    int
	name string
	b    strings.Builder
	// files counts the module's file blocks; user and group are the last
	// ones made, for owners; restartOn is the path of the last file block
	// without a condition, for a service's restart_on.
	files              int
	user, group        string
	restartOn, lastPkg string
}

// module writes modules/mNN: main.cairn, its source files and templates.
func (g *gen) module(m int) error {
	mg := &modGen{g: g, m: m, name: g.modName(m)}
	nd := share(g.p.Dirs, g.p.Modules, m)
	nr := share(g.p.Resources-rootResources, g.p.Modules, m)
	slots := nr - nd
	fmt.Fprintf(&mg.b, `# Module %s (generated): %d dirs, %d other resources.

variable "root" {
  description = "the directory the module manages"
}
variable "domain" {
  default = "example.org"
}
variable "workers" {
  default = 4
}
variable "env" {
  default = "prod"
}
variable "index" {
  default = 0
}
variable "tags" {
  default = []
}
`, mg.name, nd, slots)
	base := "modules/" + mg.name + "/"
	slot := 0
	for d := range nd {
		dirLabel := "${var.root}"
		if d > 0 {
			dirLabel = fmt.Sprintf("${var.root}/d%0*d", g.dirW, d)
		}
		mg.dir(d, dirLabel)
		end := slot + share(slots, nd, d)
		for ; slot < end; slot++ {
			if err := mg.slot(slot, d, dirLabel, base); err != nil {
				return err
			}
		}
	}
	for _, t := range templates {
		if err := g.write(base+"templates/"+t.name, []byte(t.text)); err != nil {
			return err
		}
	}
	return g.write(base+"main.cairn", []byte(mg.b.String()))
}

func (mg *modGen) dir(d int, label string) {
	st := &mg.g.st
	st.Resources++
	st.Dirs++
	st.Steps++
	var attrs []attr
	if d%5 == 4 {
		attrs = append(attrs, attr{"mode", `"0750"`})
	}
	if d%10 == 9 && mg.user != "" {
		attrs = append(attrs, attr{"owner", strconv.Quote(mg.user)}, attr{"group", strconv.Quote(mg.group)})
	}
	writeBlock(&mg.b, "dir", label, attrs)
}

// attr is an attribute of a block: its name and its value's source text.
type attr struct{ name, value string }

// writeBlock writes a block after a blank line, in cairn fmt's style: two
// spaces of indentation, {} when it has no attributes, and = aligned within
// each run of attributes (a value of several lines ends a run).
func writeBlock(b *strings.Builder, typ, label string, attrs []attr) {
	fmt.Fprintf(b, "\n%s %q {", typ, label)
	if len(attrs) == 0 {
		b.WriteString("}\n")
		return
	}
	b.WriteString("\n")
	for len(attrs) > 0 {
		n := 0
		for n < len(attrs) {
			n++
			if strings.Contains(attrs[n-1].value, "\n") {
				break
			}
		}
		w := 0
		for _, a := range attrs[:n] {
			w = max(w, len(a.name))
		}
		for _, a := range attrs[:n] {
			fmt.Fprintf(b, "  %-*s = %s\n", w, a.name, a.value)
		}
		attrs = attrs[n:]
	}
	b.WriteString("}\n")
}

// slot writes the module's resource j (not a dir), which lies in directory
// d: a group, a user, a package, a service, or (most often) a file.
func (mg *modGen) slot(j, d int, dirLabel, base string) error {
	g, st := mg.g, &mg.g.st
	st.Resources++
	q := strconv.Quote
	switch j % 60 {
	case 2:
		g.ids++
		mg.group = fmt.Sprintf("g-%s-%04d", mg.name, j)
		writeBlock(&mg.b, "group", mg.group, []attr{{"gid", strconv.Itoa(20000 + g.ids)}})
		st.Groups++
		st.Steps++
		return nil
	case 3:
		g.ids++
		mg.user = fmt.Sprintf("u-%s-%04d", mg.name, j)
		writeBlock(&mg.b, "user", mg.user, []attr{
			{"uid", strconv.Itoa(20000 + g.ids)},
			{"gid", q(mg.group)},
			{"home", q("${var.root}/home/" + mg.user)},
			{"shell", q("/usr/sbin/nologin")},
			{"groups", `["www-data"]`},
			{"system", "true"},
		})
		st.Users++
		st.Steps++
		return nil
	case 30:
		mg.lastPkg = fmt.Sprintf("app-%s-%04d", mg.name, j)
		var attrs []attr
		if j%120 == 30 {
			attrs = append(attrs, attr{"version", q(fmt.Sprintf("1.%d.%d-1", mg.m, j))})
		}
		writeBlock(&mg.b, "package", mg.lastPkg, attrs)
		st.Packages++
		st.Steps++
		return nil
	case 31:
		var attrs []attr
		st.Steps += 2 // SYSTEMD-ENABLE, SYSTEMD-START
		if mg.restartOn != "" {
			attrs = append(attrs, attr{"restart_on", "[" + q(mg.restartOn) + "]"})
			st.Steps++ // SYSTEMD-RESTART
		}
		writeBlock(&mg.b, "service", mg.lastPkg, attrs)
		st.Services++
		return nil
	}
	return mg.file(d, dirLabel, base)
}

// file writes a file block in directory d, and its source file if it has one.
func (mg *modGen) file(d int, dirLabel, base string) error {
	g, st := mg.g, &mg.g.st
	q := strconv.Quote
	f := mg.files
	mg.files++
	st.Files++
	fname := fmt.Sprintf("f%0*d.conf", g.fileW, f)
	label := dirLabel + "/" + fname
	var attrs []attr
	switch f % 25 {
	case 7:
		st.Contents++
		attrs = append(attrs, attr{"content", fmt.Sprintf(`"# ${var.domain} on ${fact.hostname}\nworkers = ${var.workers}\nenv     = ${upper(var.env)}\nfile    = %d\n"`, f)})
	case 19:
		st.Contents++
		attrs = append(attrs, attr{"content", fmt.Sprintf(`<<-EOT
    # generated for ${fact.hostname} (${fact.group})
    domain  = ${var.domain}
    workers = ${var.workers}
    tags    = ${join(",", var.tags)}
    file    = %d
    EOT`, f)})
	case 13, 22:
		st.Templates++
		t := templates[(f/25)%len(templates)].name
		attrs = append(attrs,
			attr{"template", q("templates/" + t)},
			attr{"vars", fmt.Sprintf(`{ name = %q, port = %d, upstreams = ["10.%d.%d.1:80", "10.%d.%d.2:80"] }`,
				fname, 8000+f%1000, mg.m%256, d%256, mg.m%256, d%256)})
	default:
		st.Sources++
		src := fmt.Sprintf("files/d%0*d/%s", g.dirW, d, fname)
		attrs = append(attrs, attr{"source", q(src)})
		if err := g.write(base+src, sourceFile(mg.name, src, f)); err != nil {
			return err
		}
	}
	if f%10 == 5 {
		attrs = append(attrs, attr{"mode", `"0640"`})
	}
	if f%20 == 9 && mg.user != "" {
		attrs = append(attrs, attr{"owner", q(mg.user)}, attr{"group", q(mg.group)})
	}
	kept := true
	switch {
	case f%50 == 17:
		attrs = append(attrs, attr{"when", "fact.release >= 12"})
	case f%50 == 41:
		attrs = append(attrs, attr{"when", `fact.group == "db"`})
		kept = false
	case f%100 == 33:
		attrs = append(attrs, attr{"when", `glob("web-*", fact.hostname) && var.env == "prod"`})
	default:
		mg.restartOn = label
	}
	if f%50 == 17 || f%50 == 41 || f%100 == 33 {
		st.Conditional++
	}
	if kept {
		st.Steps++
	} else {
		st.Skipped++
	}
	writeBlock(&mg.b, "file", label, attrs)
	return nil
}

// sourceFile is the content of a module's source file: a header and 4 to
// 15 lines of settings, 150 to 600 bytes.
func sourceFile(mod, rel string, f int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s/%s: generated by bench/genconfig\n[section]\n", mod, rel)
	for ln := range 4 + f%12 {
		sum := sha256.Sum256([]byte(mod + "/" + rel + ":" + strconv.Itoa(ln)))
		fmt.Fprintf(&b, "option_%02d = %s\n", ln, hex.EncodeToString(sum[:12]))
	}
	return []byte(b.String())
}
