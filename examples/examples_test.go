package examples_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/journal"
)

// bookworm are the facts the examples' READMEs compile with.
var bookworm = map[string]string{"release": "12", "codename": "bookworm", "arch": "amd64"}

// compiled is one example compiled for one host, with its journal parsed
// back and the content of every COPY read.
type compiled struct {
	res   *compiler.Result
	text  []byte
	steps []journal.Step
	// content holds what each COPY writes, by target path.
	content map[string]string
}

// compileExample compiles the example in dir for host the way `cairn
// compile` does (plugins run in the example's directory, rendered content
// goes to a blob directory), then checks what every example's journal must
// satisfy: it parses back to the same steps, journal.Check finds nothing,
// every COPY's content is where the applier looks for it with the sha256
// the step names, and a second compile gives the same bytes.
func compileExample(t *testing.T, dir, host string, facts map[string]string) *compiled {
	t.Helper()
	res, blobs, abs := compileOnce(t, dir, host, facts)
	c := &compiled{res: res, text: res.Journal(), content: map[string]string{}}

	j, err := journal.Parse(dir+"/"+host+".journal", c.text)
	if err != nil {
		t.Fatalf("the journal of %s for %s does not parse:\n%v\n%s", dir, host, err, c.text)
	}
	c.steps = j.Steps
	if len(c.steps) != len(res.Steps) {
		t.Fatalf("the journal parses to %d steps, the compiler made %d", len(c.steps), len(res.Steps))
	}
	for i := range c.steps {
		got, want := c.steps[i].String(), res.Steps[i].String()
		if got != want {
			t.Errorf("step %d parses back as\n  %s\nnot\n  %s", i+1, got, want)
		}
	}
	// The examples are meant to be clean: no error and no warning either.
	for _, f := range journal.Check(c.steps) {
		t.Errorf("journal check: %v", f)
	}

	for _, s := range c.steps {
		if s.Op != journal.OpCopy {
			continue
		}
		src, sum := s.Args[0], s.Get("sha256")
		file := filepath.Join(abs, filepath.FromSlash(src))
		if src == "-" {
			file = filepath.Join(blobs, sum)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: its content is not where apply looks for it: %v", s.Canonical(), err)
			continue
		}
		if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: %s has sha256 %x", s.Canonical(), file, h)
		}
		c.content[s.Path()] = string(data)
	}

	again, _, _ := compileOnce(t, dir, host, facts)
	if !bytes.Equal(again.Journal(), c.text) {
		t.Errorf("two compiles of %s for %s differ:\n%s\n---\n%s", dir, host, c.text, again.Journal())
	}
	return c
}

// compileOnce runs the compiler on the example in dir, with a fresh blob
// directory, and fails the test on any error.
func compileOnce(t *testing.T, dir, host string, facts map[string]string) (res *compiler.Result, blobs, abs string) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	blobs = t.TempDir()
	res, err = compiler.Compile(context.Background(), os.DirFS(abs), compiler.Options{
		Host:  host,
		Facts: maps.Clone(facts),
		Dir:   abs,
		Blobs: compiler.BlobDir(blobs),
	})
	if err != nil {
		t.Fatalf("compile %s for %s:\n%v", dir, host, err)
	}
	return res, blobs, abs
}

// matches reports whether step s is want: its canonical form, or that form
// followed by more arguments or attributes (so that "COPY - /etc/motd"
// matches whatever its sha256).
func matches(s *journal.Step, want string) bool {
	got := s.Canonical()
	return got == want || strings.HasPrefix(got, want+" ")
}

// find returns the index of the first step that matches want, or -1.
func (c *compiled) find(want string) int {
	for i := range c.steps {
		if matches(&c.steps[i], want) {
			return i
		}
	}
	return -1
}

// must returns the first step that matches want, failing the test without.
func (c *compiled) must(t *testing.T, want string) *journal.Step {
	t.Helper()
	i := c.find(want)
	if i < 0 {
		t.Fatalf("no step %q in the journal:\n%s", want, c.text)
	}
	return &c.steps[i]
}

func (c *compiled) mustNot(t *testing.T, want string) {
	t.Helper()
	if i := c.find(want); i >= 0 {
		t.Errorf("step %d is %s; want no %q here", i+1, c.steps[i].Canonical(), want)
	}
}

// before checks that a step matching first comes before one matching then.
func (c *compiled) before(t *testing.T, first, then string) {
	t.Helper()
	i, j := c.find(first), c.find(then)
	switch {
	case i < 0 || j < 0:
		t.Errorf("want both %q (step %d) and %q (step %d) in the journal", first, i+1, then, j+1)
	case i > j:
		t.Errorf("%q is step %d, after %q (step %d)", first, i+1, then, j+1)
	}
}

// contains checks that the file a COPY writes to path holds every want.
func (c *compiled) contains(t *testing.T, path string, want ...string) {
	t.Helper()
	got, ok := c.content[path]
	if !ok {
		t.Errorf("no COPY writes %s", path)
		return
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not hold %q:\n%s", path, w, got)
		}
	}
}

func TestExamples(t *testing.T) {
	tests := []struct {
		dir   string
		host  string
		facts map[string]string
		check func(t *testing.T, c *compiled)
	}{
		{"webserver", "web-01", bookworm, checkWebserver},
		{"monitoring", "web-01", bookworm, checkMonitoring},
		{"monitoring", "web-01", map[string]string{"release": "10", "codename": "buster", "arch": "amd64"}, checkMonitoringBuster},
		{"fleet", "web-01", bookworm, checkFleetCanary},
		{"fleet", "web-02", bookworm, checkFleetWeb},
		{"fleet", "mon-01", bookworm, checkFleetMonitoring},
	}
	for _, tt := range tests {
		t.Run(tt.dir+"/"+tt.host+"/release="+tt.facts["release"], func(t *testing.T) {
			tt.check(t, compileExample(t, tt.dir, tt.host, tt.facts))
		})
	}
}

func checkWebserver(t *testing.T, c *compiled) {
	restart := c.must(t, "SYSTEMD-RESTART nginx.service")
	if on, _ := restart.Lookup("on"); len(on) != 64 {
		t.Errorf("%s: want on= a sha256 of the restart_on files", restart.Canonical())
	}
	c.must(t, "GROUPADD deploy gid=2000")
	c.must(t, "USERADD deploy gid=2000 groups=www-data home=/home/deploy shell=/bin/bash uid=2000")
	c.before(t, "USERADD deploy", "MKDIR /home/deploy group=deploy mode=0750 owner=deploy")
	c.before(t, "USERADD deploy", "MKDIR /srv/www/example.org group=deploy owner=deploy")
	c.before(t, "APT-INSTALL nginx", "COPY - /etc/nginx/nginx.conf")
	c.before(t, "APT-INSTALL nginx", "RM /etc/nginx/sites-enabled/default")
	c.before(t, "COPY - /etc/nginx/nginx.conf", "SYSTEMD-RESTART nginx.service")
	c.before(t, "COPY - /etc/nginx/sites-available/example.org", "SYSTEMD-RESTART nginx.service")
	c.before(t, "SYSTEMD-RESTART nginx.service", "CHECK http http://127.0.0.1/")
	c.before(t, "MKDIR /srv/www/example.org", "COPY files/index.html /srv/www/example.org/index.html group=deploy owner=deploy")

	link := c.must(t, "SYMLINK ../sites-available/example.org /etc/nginx/sites-enabled/example.org")
	if !strings.HasPrefix(link.Source, "main.cairn:") || !strings.Contains(link.Source, " > modules/nginx-site/main.cairn:") {
		t.Errorf("the site's link comes from %q; want the module call, then the line in modules/nginx-site", link.Source)
	}

	c.contains(t, "/etc/nginx/nginx.conf", "worker_processes 2;", "include /etc/nginx/sites-enabled/*;")
	c.contains(t, "/etc/nginx/sites-available/example.org",
		"server_name www.example.org example.org;", "root /srv/www/example.org;", "try_files $uri $uri/ =404;")
	c.contains(t, "/etc/motd", "web-01: nginx for www.example.org", "Debian 12 (bookworm, amd64)")
}

func checkMonitoring(t *testing.T, c *compiled) {
	c.before(t, "APT-INSTALL prometheus-node-exporter", "COPY - /etc/default/prometheus-node-exporter")
	c.before(t, "COPY - /etc/default/prometheus-node-exporter", "SYSTEMD-RESTART prometheus-node-exporter.service")
	restart := c.must(t, "SYSTEMD-RESTART prometheus-node-exporter.service")
	if on, _ := restart.Lookup("on"); len(on) != 64 {
		t.Errorf("%s: want on= a sha256 of the restart_on files", restart.Canonical())
	}
	c.contains(t, "/etc/default/prometheus-node-exporter",
		`ARGS="--web.listen-address=:9100 `,
		" --collector.textfile.directory=/var/lib/prometheus/node-exporter ",
		" --collector.systemd --collector.processes\"\n")
	c.before(t, "APT-INSTALL prometheus-node-exporter", "MKDIR /var/lib/prometheus/node-exporter")
	c.before(t, "SYSTEMD-START prometheus-node-exporter.service", "CHECK tcp 127.0.0.1:9100")

	// The timer and its service: unit files, a daemon-reload for each, and
	// only the timer enabled and started.
	c.before(t, "COPY files/reboot-required-metric.sh /usr/local/bin/reboot-required-metric mode=0755", "COPY - /etc/systemd/system/reboot-required-metric.service")
	c.before(t, "COPY - /etc/systemd/system/reboot-required-metric.service", "COPY - /etc/systemd/system/reboot-required-metric.timer")
	c.before(t, "COPY - /etc/systemd/system/reboot-required-metric.timer", "SYSTEMD-ENABLE reboot-required-metric.timer")
	c.before(t, "SYSTEMD-ENABLE reboot-required-metric.timer", "SYSTEMD-START reboot-required-metric.timer")
	c.mustNot(t, "SYSTEMD-ENABLE reboot-required-metric.service")
	c.mustNot(t, "SYSTEMD-START reboot-required-metric.service")
	reloads := 0
	for _, s := range c.steps {
		if s.Op == journal.OpSystemdReload {
			reloads++
		}
	}
	if reloads != 2 {
		t.Errorf("%d SYSTEMD-RELOAD steps; want one for each unit file", reloads)
	}
	c.contains(t, "/etc/systemd/system/reboot-required-metric.service",
		"ExecStart=/usr/local/bin/reboot-required-metric /var/lib/prometheus/node-exporter/reboot_required.prom\n",
		"ReadWritePaths=/var/lib/prometheus/node-exporter\n")
	c.contains(t, "/etc/systemd/system/reboot-required-metric.timer", "OnUnitActiveSec=5min\n", "WantedBy=timers.target\n")

	// when = fact.release >= 11
	c.before(t, "MKDIR /var/lib/prometheus/node-exporter", "APT-INSTALL prometheus-node-exporter-collectors")
}

func checkMonitoringBuster(t *testing.T, c *compiled) {
	c.must(t, "APT-INSTALL prometheus-node-exporter")
	c.mustNot(t, "APT-INSTALL prometheus-node-exporter-collectors")
}

// checkFleetCommon checks what every host of the fleet gets.
func checkFleetCommon(t *testing.T, c *compiled, host string) {
	t.Helper()
	c.before(t, "GROUPADD ops gid=3000", "USERADD alice gid=3000 home=/home/alice shell=/bin/bash uid=3001")
	c.before(t, "USERADD alice", "MKDIR /home/alice group=ops mode=0750 owner=alice")
	c.before(t, "APT-INSTALL sudo", "COPY - /etc/sudoers.d/ops mode=0440")
	c.contains(t, "/etc/sudoers.d/ops", "%ops ALL=(ALL:ALL) ALL\n")
	c.before(t, "COPY common/files/sshd-fleet.conf /etc/ssh/sshd_config.d/50-fleet.conf", "SYSTEMD-RESTART ssh.service")
	c.must(t, "CHECK tcp 127.0.0.1:9100")
	c.contains(t, "/etc/motd", host+": group "+c.res.Group+", following branch "+c.res.Branch+".\n")

	// The plugin's steps, for this host, at the plugin block's position.
	spool := c.must(t, "MKDIR /var/backups/spool/"+host+" group=backup mode=0750 owner=backup")
	if !strings.HasPrefix(spool.Source, "main.cairn:") {
		t.Errorf("the plugin's step comes from %q; want the plugin block in main.cairn", spool.Source)
	}
	c.before(t, "MKDIR /var/backups/spool group=backup mode=0750 owner=backup", "MKDIR /var/backups/spool/"+host)
}

// checkFleetWebRole checks what the web role gives web servers and the canary.
func checkFleetWebRole(t *testing.T, c *compiled) {
	t.Helper()
	exec := c.must(t, "EXEC")
	if exec.Get("creates") != "/etc/nginx/dhparam.pem" || !strings.Contains(exec.Get("undo"), "rm -f") {
		t.Errorf("%s: want creates=/etc/nginx/dhparam.pem and an undo that removes it", exec.Canonical())
	}
	c.before(t, "APT-INSTALL openssl", "EXEC")
	c.before(t, "EXEC", "SYSTEMD-RESTART nginx.service")
	site := c.must(t, "COPY - /etc/nginx/sites-available/example.org")
	if !strings.HasPrefix(site.Source, "roles/web.cairn:") || !strings.Contains(site.Source, " > modules/nginx-site/main.cairn:") {
		t.Errorf("the site comes from %q; want the module call in roles/web.cairn, then the module", site.Source)
	}
	c.before(t, "MKDIR /srv/www/example.org group=www-data owner=www-data", "COPY roles/files/index.html /srv/www/example.org/index.html")
	c.before(t, "SYSTEMD-RESTART nginx.service", "CHECK http http://127.0.0.1/")
	c.mustNot(t, "APT-INSTALL prometheus")
}

func checkFleetCanary(t *testing.T, c *compiled) {
	if c.res.Group != "canary" || c.res.Branch != "canary" {
		t.Errorf("web-01 is in group %q following %q; want canary, canary", c.res.Group, c.res.Branch)
	}
	checkFleetCommon(t, c, "web-01")
	checkFleetWebRole(t, c)
	c.contains(t, "/etc/nginx/nginx.conf", "worker_processes 2;", "error_log /var/log/nginx/error.log info;")
	c.before(t, "CHECK http http://127.0.0.1/", `CHECK command "curl -fsS`)

	// The canary's journal is not the other web servers'.
	web02 := compileExample(t, "fleet", "web-02", bookworm)
	if bytes.Equal(c.text, web02.text) {
		t.Errorf("web-01 and web-02 get the same journal")
	}
}

func checkFleetWeb(t *testing.T, c *compiled) {
	if c.res.Group != "web" || c.res.Branch != "main" {
		t.Errorf("web-02 is in group %q following %q; want web, main", c.res.Group, c.res.Branch)
	}
	checkFleetCommon(t, c, "web-02")
	checkFleetWebRole(t, c)
	c.contains(t, "/etc/nginx/nginx.conf", "worker_processes 4;", "error_log /var/log/nginx/error.log warn;")
	c.mustNot(t, "CHECK command")
	c.mustNot(t, "MKDIR /var/backups/spool/web-01")
}

func checkFleetMonitoring(t *testing.T, c *compiled) {
	if c.res.Group != "monitoring" || c.res.Branch != "main" {
		t.Errorf("mon-01 is in group %q following %q; want monitoring, main", c.res.Group, c.res.Branch)
	}
	checkFleetCommon(t, c, "mon-01")
	c.mustNot(t, "APT-INSTALL nginx")
	c.mustNot(t, "EXEC")
	c.before(t, "APT-INSTALL prometheus", "COPY - /etc/prometheus/prometheus.yml")
	c.before(t, "COPY - /etc/prometheus/prometheus.yml", "SYSTEMD-RESTART prometheus.service")
	c.before(t, "SYSTEMD-RESTART prometheus.service", "CHECK http http://127.0.0.1:9090/-/ready")
	c.contains(t, "/etc/prometheus/prometheus.yml",
		"- job_name: node\n", `- "web-01:9100"`, `- "web-02:9100"`, `- "web-03:9100"`, `- "mon-01:9100"`)
}

// TestFleetRefusesUnknownHost: with a hosts block, a host no group matches
// gets no journal.
func TestFleetRefusesUnknownHost(t *testing.T) {
	abs, err := filepath.Abs("fleet")
	if err != nil {
		t.Fatal(err)
	}
	_, err = compiler.Compile(context.Background(), os.DirFS(abs), compiler.Options{
		Host: "db-01", Facts: maps.Clone(bookworm), Dir: abs, Blobs: compiler.BlobDir(t.TempDir()),
	})
	if err == nil || !strings.Contains(err.Error(), `host "db-01" matches no group`) {
		t.Errorf("compile for db-01: got %v; want an error that it matches no group", err)
	}
}

// TestEveryExampleIsCompiled keeps TestExamples complete: every directory
// here with *.cairn files at its top is an example it compiles.
func TestEveryExampleIsCompiled(t *testing.T) {
	tested := []string{"fleet", "monitoring", "webserver"}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := os.ReadDir(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.Type().IsRegular() && strings.HasSuffix(f.Name(), ".cairn") {
				found = append(found, e.Name())
				break
			}
		}
	}
	if !slices.Equal(found, tested) {
		t.Errorf("the example configurations here are %v; TestExamples compiles %v", found, tested)
	}
}

// TestExamplesAreFormatted: every .cairn file of the examples is in the
// canonical style of `cairn fmt`, as a copied repository should start.
func TestExamplesAreFormatted(t *testing.T) {
	n := 0
	for _, dir := range []string{"fleet", "monitoring", "webserver"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cairn") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n++
			got, err := syntax.FormatSource(p, string(src))
			if err != nil {
				t.Errorf("%v", err)
				return nil
			}
			if !bytes.Equal(got, src) {
				t.Errorf("%s is not in canonical style; cairn fmt makes it:\n%s", p, got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 10 {
		t.Errorf("found %d .cairn files in the examples; want every one of them", n)
	}
}

// TestFleetWithoutPackages compiles the fleet with its packages variable
// false, as make demo does for its scratch roots: no package, unit or EXEC
// step and no check that talks to a service is left, everything else is,
// and the canary checks its page on disk instead.
func TestFleetWithoutPackages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fleet")
	if err := os.CopyFS(dir, os.DirFS("fleet")); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.cairn")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	const on = "variable \"packages\" {\n  default     = true\n"
	if !bytes.Contains(src, []byte(on)) {
		t.Fatalf("main.cairn has no %q", on)
	}
	if err := os.WriteFile(main, bytes.Replace(src, []byte(on), []byte(strings.Replace(on, "true", "false", 1)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"web-01", "web-02", "mon-01"} {
		t.Run(host, func(t *testing.T) {
			c := compileExample(t, dir, host, bookworm)
			for _, s := range c.steps {
				switch op := string(s.Op); {
				case strings.HasPrefix(op, "APT-"), strings.HasPrefix(op, "SYSTEMD-"), op == "EXEC":
					t.Errorf("step %s with packages = false", s.Canonical())
				case op == "CHECK" && s.Args[0] != "command":
					t.Errorf("check %s talks to a service", s.Canonical())
				}
			}
			c.must(t, "USERADD alice gid=3000 home=/home/alice shell=/bin/bash uid=3001")
			c.must(t, "COPY - /etc/sudoers.d/ops mode=0440")
			c.must(t, "COPY common/files/sshd-fleet.conf /etc/ssh/sshd_config.d/50-fleet.conf")
			c.must(t, "MKDIR /var/backups/spool/"+host)
			if host == "mon-01" {
				c.must(t, "COPY - /etc/prometheus/prometheus.yml")
				return
			}
			c.must(t, "COPY - /etc/nginx/nginx.conf")
			c.must(t, "SYMLINK ../sites-available/example.org /etc/nginx/sites-enabled/example.org")
			if host == "web-01" {
				c.before(t, "COPY roles/files/index.html /srv/www/example.org/index.html", `CHECK command "grep -q '<title>example.org</title>'`)
			} else {
				c.mustNot(t, "CHECK")
			}
		})
	}
}
