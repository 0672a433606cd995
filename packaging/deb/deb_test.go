package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/cairn-cm/cairn/internal/cli"
)

func model(t *testing.T) *kong.Application {
	t.Helper()
	app, err := cli.Model()
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// TestDefaultFileIsGenerated: the /etc/default/cairn the package ships is
// what the command line's model makes now, so a setting added to cairn
// agent cannot be missing from it. go run ./packaging/deb -default
// packaging/deb/cairn.default rewrites it.
func TestDefaultFileIsGenerated(t *testing.T) {
	shipped, err := os.ReadFile("cairn.default")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := defaultText(model(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, fresh) {
		t.Errorf("packaging/deb/cairn.default is not what the command line makes: run go run ./packaging/deb -default packaging/deb/cairn.default\n--- shipped\n%s\n--- fresh\n%s", shipped, fresh)
	}
	// Every setting of cairn agent, commented out, and nothing set.
	for _, name := range []string{"CAIRN_REPO", "CAIRN_TRUST", "CAIRN_ALLOW_UNSIGNED", "CAIRN_INTERVAL", "CAIRN_SPLAY",
		"CAIRN_CONFIRM", "CAIRN_LISTEN", "CAIRN_WEB_CONFIG", "CAIRN_DRIFT", "CAIRN_MAX_REMOVAL", "CAIRN_FACT",
		"CAIRN_LOG_FORMAT", "CAIRN_LOG_LEVEL", "CAIRN_ONCE", "CAIRN_BRANCH", "CAIRN_ROOT", "CAIRN_STATE"} {
		if !bytes.Contains(shipped, []byte("\n#"+name+"=")) {
			t.Errorf("cairn.default has no line #%s=", name)
		}
	}
	for _, line := range strings.Split(string(shipped), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			t.Errorf("cairn.default sets something: %q", line)
		}
	}
	for _, want := range []string{"#CAIRN_BRANCH=main\n", "#CAIRN_CONFIRM=30s\n", "#CAIRN_LISTEN=127.0.0.1:9479\n", "#CAIRN_ALLOW_UNSIGNED=false\n"} {
		if !bytes.Contains(shipped, []byte(want)) {
			t.Errorf("cairn.default lacks the default %q", want)
		}
	}
}

// generate writes the manual pages and completions into a new directory.
func generate(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := writeTree(model(t), root, "1.0~test", "2026-01-02"); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestManPages: one page for cairn and for each of its commands and
// sub-commands, each of which man renders without a warning, with its
// flags.
func TestManPages(t *testing.T) {
	dir := filepath.Join(generate(t), "usr/share/man/man1")
	var want []string
	var walk func(prefix string, n *kong.Node)
	walk = func(prefix string, n *kong.Node) {
		want = append(want, prefix+".1")
		for _, c := range n.Children {
			if c.Type == kong.CommandNode && !c.Hidden {
				walk(prefix+"-"+c.Name, c)
			}
		}
	}
	walk("cairn", model(t).Node)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("manual pages %v, want %v", got, want)
	}
	for _, name := range []string{"cairn.1", "cairn-agent.1", "cairn-journal.1", "cairn-journal-apply.1", "cairn-apply.1", "cairn-fleet.1"} {
		if !slices.Contains(got, name) {
			t.Errorf("no manual page %s", name)
		}
	}

	agent, err := os.ReadFile(filepath.Join(dir, "cairn-agent.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.TH "CAIRN\-AGENT" 1 "2026\-01\-02" "cairn 1.0~test"`, ".SH NAME\ncairn\\-agent \\- run the agent",
		`\fB\-\-repo\fR=\fIURL\fR`, "Environment: CAIRN_REPO.", "Default: 30s.", ".SH FILES", "/etc/default/cairn", ".SH EXIT STATUS", `\fB\%cairn\fR(1)`} {
		if !bytes.Contains(agent, []byte(want)) {
			t.Errorf("cairn-agent.1 lacks %q", want)
		}
	}

	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man (man-db) is not installed: the pages are not rendered")
	}
	for _, name := range got {
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", filepath.Join(dir, name))
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=80")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil || len(out) == 0 {
			t.Errorf("man -l %s: %v: %s", name, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("man -l %s warns: %s", name, stderr.String())
		}
	}
	out, err := exec.Command("man", "-l", filepath.Join(dir, "cairn-journal-apply.1")).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cairn-journal-apply - move the host from the applied journal to FILE", "--dry-run", "cairn journal apply [OPTIONS] FILE"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("man -l cairn-journal-apply.1 does not show %q:\n%s", want, out)
		}
	}
}

// TestBashCompletion sources the completion in bash and completes, as a
// <TAB> would, the words of a command line.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	script := filepath.Join(generate(t), "usr/share/bash-completion/completions/cairn")
	out, err := exec.Command("bash", "-c", `source "$1" && complete -p cairn`, "bash", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "complete -o bashdefault -o default -F _cairn cairn" {
		t.Fatalf("complete -p cairn: %v: %q", err, out)
	}
	files := t.TempDir()
	if err := os.Mkdir(filepath.Join(files, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"web.journal", "db.journal"} {
		if err := os.WriteFile(filepath.Join(files, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		line string // the words typed; the last is being completed
		want string // COMPREPLY, sorted, space-separated
	}{
		{"cairn ag", "agent"},
		{"cairn a", "agent apply"},
		{"cairn jo", "journal"},
		{"cairn fl", "fleet"},
		{"cairn fleet --pr", "--prometheus"},
		{"cairn journal ap", "apply"},
		{"cairn journal ", "apply check diff drift fmt kept show"},
		{"cairn agent --dr", "--drift"},
		{"cairn agent --allow-", "--allow-unsigned"},
		{"cairn --log-level=debug agent --on", "--once"},
		{"cairn agent --drift ", "repair report"},
		{"cairn agent --drift r", "repair report"},
		{"cairn agent --drift = rep", "repair report"},
		{"cairn agent --drift =", "repair report"},
		{"cairn agent --log-format j", "journal json"},
		{"cairn --log-level w", "warn"},
		{"cairn agent --repo ag", ""},                                   // a URL: nothing from the commands
		{"cairn agent --repo x --br", "--branch"},                       // the value x is no command
		{"cairn journal check " + files + "/w", files + "/web.journal"}, // an argument: files
		{"cairn journal apply --root " + files + "/d", files + "/data"}, // a DIR: directories only
	} {
		words := strings.Split(tc.line, " ")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := `source "$1"; COMP_WORDS=(` + strings.Join(quoted, " ") + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cairn; printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' '`
		out, err := exec.Command("bash", "-c", prog, "bash", script).CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v: %s", tc.line, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%q<TAB>: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestZshCompletion: the zsh completion parses, and completes in an
// interactive zsh (on a pseudo-terminal, zsh/zpty) as a <TAB> would: the
// widget bound to ^T prints the line after each <TAB>.
func TestZshCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed")
	}
	dir := filepath.Join(generate(t), "usr/share/zsh/vendor-completions")
	if out, err := exec.Command("zsh", "-n", filepath.Join(dir, "_cairn")).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n _cairn: %v: %s", err, out)
	}
	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "web.journal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ line, want string }{
		{"cairn ag", "cairn agent "},
		{"cairn journal ap", "cairn journal apply "},
		{"cairn fleet --prom", "cairn fleet --prometheus="},
		{"cairn agent --dri", "cairn agent --drift="},
		{"cairn agent --drift=repa", "cairn agent --drift=repair "},
		{"cairn agent --log-f", "cairn agent --log-format="},
		{"cairn --log-level=w", "cairn --log-level=warn "},
		{"cairn journal check " + files + "/w", "cairn journal check " + files + "/web.journal "},
	}
	script := `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D; cairn() { :; }"
zpty -w z "L='<''<' R='>''>'; show() { print -r -- \"\$L\$BUFFER\$R\" >/dev/tty; BUFFER=; }; zle -N show; bindkey '^T' show"
shift
for line in "$@"; do
	zpty -w -n z "$line"$'\t\x14'
	zpty -r z out '*<<*>>*' && print -r -- "$out" | grep -ao '<<[^>]*>>'
done
zpty -d z
`
	args := []string{"-f", "-c", script, "zsh", dir}
	for _, tc := range tests {
		args = append(args, tc.line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "zsh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		got = append(got, strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "<<"), ">>"))
	}
	for i, tc := range tests {
		if i >= len(got) {
			t.Errorf("%q<TAB>: no line (zsh printed %q)", tc.line, out)
			continue
		}
		if got[i] != tc.want {
			t.Errorf("%q<TAB>: %q, want %q", tc.line, got[i], tc.want)
		}
	}
}

// TestDebVersion: git describe's output becomes a Debian version that
// sorts as the commits do.
func TestDebVersion(t *testing.T) {
	for _, tc := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git4.gabc1234+dirty"},
		{"abc1234", "0~git19700102102000.abc1234"},
		{"abc1234-dirty", "0~git19700102102000.abc1234.dirty"},
	} {
		cmd := exec.Command("./debversion.sh", tc.describe)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=123600")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("debversion.sh %s: %v", tc.describe, err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("debversion.sh %s = %s, want %s", tc.describe, got, tc.want)
		}
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		return
	}
	order := []string{"0~git19700102102000.abc1234", "1.2.3~rc1", "1.2.3", "1.2.3+git4.gabc1234", "1.2.3+git4.gabc1234+dirty", "1.2.4"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg does not sort %s before %s", order[i-1], order[i])
		}
	}
}

// buildDeb builds the package with build.sh (as make deb does) at version,
// into a new directory, and returns the .deb's path. It skips the test
// where dpkg-deb is missing.
func buildDeb(t *testing.T, version string) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed: the package is not built")
	}
	out := t.TempDir()
	cmd := exec.Command("./build.sh")
	cmd.Env = append(os.Environ(), "VERSION="+version, "OUT="+out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(stdout))
	if !filepath.IsAbs(deb) {
		deb = filepath.Join("../..", deb)
	}
	arch, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "cairn_" + version + "_" + strings.TrimSpace(string(arch)) + ".deb"; filepath.Base(deb) != want {
		t.Fatalf("build.sh made %s, want %s", deb, want)
	}
	return deb
}

// TestPackage builds the package and checks it as a Debian maintainer
// would: lintian's verdict, its files and their modes, the conffile, the
// control fields, and that the binary reports the package's version.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the package is not built")
	}
	deb := buildDeb(t, "1.0~test1")

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian is not installed: the package is not linted")
	} else {
		cmd := exec.Command("lintian", "--pedantic", "--fail-on", "error,warning", deb)
		out, err := cmd.CombinedOutput()
		var tags []string
		for _, line := range strings.Split(string(out), "\n") {
			if len(line) > 2 && line[1] == ':' && strings.Contains("EWP", line[:1]) {
				tags = append(tags, line)
			}
		}
		if err != nil || len(tags) > 0 {
			t.Errorf("lintian: %v\n%s", err, out)
		}
	}

	// The files, their modes and owners.
	listing, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{} // path -> mode and owner
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: %q", line)
		}
		files[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"/usr/bin/cairn":                               "-rwxr-xr-x root/root",
		"/lib/systemd/system/cairn.service":            "-rw-r--r-- root/root",
		"/etc/default/cairn":                           "-rw-r--r-- root/root",
		"/usr/share/man/man1/cairn.1.gz":               "-rw-r--r-- root/root",
		"/usr/share/man/man1/cairn-agent.1.gz":         "-rw-r--r-- root/root",
		"/usr/share/man/man1/cairn-journal-apply.1.gz": "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/cairn": "-rw-r--r-- root/root",
		"/usr/share/zsh/vendor-completions/_cairn":     "-rw-r--r-- root/root",
		"/usr/share/doc/cairn/copyright":               "-rw-r--r-- root/root",
		"/usr/share/doc/cairn/changelog.gz":            "-rw-r--r-- root/root",
		"/usr/share/lintian/overrides/cairn":           "-rw-r--r-- root/root",
		"/usr/share/man/man1/":                         "drwxr-xr-x root/root",
	} {
		if got, ok := files[path]; !ok {
			t.Errorf("the package lacks %s", path)
		} else if got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	for path, mode := range files {
		if strings.HasPrefix(path, "/var/lib/cairn") {
			t.Errorf("the package ships %s: postinst makes the state directory (0700), and purge removes it", path)
		}
		if strings.Contains(mode, "rwxrwx") || strings.Contains(mode, "rw-rw-") {
			t.Errorf("%s is group-writable: %s", path, mode)
		}
	}
	// The alert rules and dashboards of the tree, where docs/operations.md
	// says they are; promtool's tests of the rules stay behind.
	shipped := 0
	for _, pattern := range []string{"../../prometheus/*.yml", "../../grafana/*.json"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.yml") {
				continue
			}
			rel, _ := filepath.Rel("../..", m)
			if _, ok := files["/usr/share/cairn/"+rel]; !ok {
				t.Errorf("%s is in the tree but the package lacks /usr/share/cairn/%s", rel, rel)
			}
			shipped++
		}
	}
	if _, err := os.Stat("../../prometheus/alerts.yml"); err == nil {
		if _, ok := files["/usr/share/cairn/prometheus/alerts.yml"]; !ok {
			t.Error("prometheus/alerts.yml is in the tree but the package lacks /usr/share/cairn/prometheus/alerts.yml")
		}
	}
	for path := range files {
		if strings.HasPrefix(path, "/usr/share/cairn/") && strings.HasSuffix(path, "_test.yml") {
			t.Errorf("the package ships promtool's test file %s", path)
		}
	}
	t.Logf("%d alert rule and dashboard files shipped", shipped)

	// The control area.
	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v: %s", err, out)
	}
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil || string(conffiles) != "/etc/default/cairn\n" {
		t.Errorf("conffiles: %q, %v; want /etc/default/cairn alone", conffiles, err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want mode 0755", s, fi, err)
		}
	}
	md5sums, err := os.ReadFile(filepath.Join(ctl, "md5sums"))
	if err != nil || !bytes.Contains(md5sums, []byte("  usr/bin/cairn\n")) || bytes.Contains(md5sums, []byte("etc/default")) {
		t.Errorf("md5sums: %v\n%s", err, md5sums)
	}
	arch, _ := exec.Command("dpkg", "--print-architecture").Output()
	for field, want := range map[string]string{
		"Package":      "cairn",
		"Version":      "1.0~test1",
		"Architecture": strings.TrimSpace(string(arch)),
		"Section":      "admin",
		"Priority":     "optional",
		"Homepage":     "https://github.com/cairn-cm/cairn",
	} {
		out, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("control field %s: %q (%v), want %q", field, got, err, want)
		}
	}
	for _, field := range []string{"Maintainer", "Installed-Size", "Description"} {
		out, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
		if err != nil || len(bytes.TrimSpace(out)) == 0 {
			t.Errorf("control field %s is missing", field)
		}
	}

	// The binary is the package's version.
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract: %v: %s", err, out)
	}
	out, err := exec.Command(filepath.Join(root, "usr/bin/cairn"), "version").Output()
	if err != nil || string(out) != "cairn 1.0~test1\n" {
		t.Errorf("cairn version: %q, %v; want cairn 1.0~test1", out, err)
	}
	if shipped, err := os.ReadFile(filepath.Join(root, "etc/default/cairn")); err != nil || !bytes.Equal(shipped, mustRead(t, "cairn.default")) {
		t.Errorf("/etc/default/cairn in the package is not packaging/deb/cairn.default (%v)", err)
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackageReproducible: two builds of one tree at one version are the
// same bytes (every file's time is SOURCE_DATE_EPOCH, the commit's; the
// binary is built with -trimpath), so a package can be rebuilt and checked.
func TestPackageReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the package is not built")
	}
	a := mustRead(t, buildDeb(t, "1.0~repro"))
	b := mustRead(t, buildDeb(t, "1.0~repro"))
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same tree differ")
	}
}
