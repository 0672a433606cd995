package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/testhost"
)

// The tutorial's hosts. Its addresses (TEST-NET-1, which the reader
// replaces with real ones) are 192.0.2.11 and 192.0.2.12, and 192.0.2.1 is
// the workstation's.
const (
	canary = "canary-01"
	web    = "web-01"
)

// block is a shell block of the tutorial: where it runs (its first line,
// "# on the workstation", "# on canary-01", "# on web-01" or "# on each
// host"), its commands, and the output the text block after it shows.
type block struct {
	line       int      // of the opening fence, in tutorial.md
	end        int      // the index of the closing fence's line
	where      []string // "workstation", or host names
	background bool     // "in a second terminal": it keeps running
	script     string
	expect     []string // the lines of the text block that follows, if any
}

// whereLine is the first line of every shell block.
var whereLine = regexp.MustCompile(`^# on (the workstation|canary-01|web-01|each host)\b(.*)$`)

// parseTutorial returns the shell blocks (```sh) of a Markdown page, in
// order, each with the text block (```text) right after it as its
// expected output. A shell block that does not say where it runs is an
// error.
func parseTutorial(md string) ([]block, error) {
	var blocks []block
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("tutorial.md:%d: a fenced block that does not end", start+1)
		}
		switch lang := strings.Fields(info + " x")[0]; lang {
		case "sh", "bash", "shell":
			m := whereLine.FindStringSubmatch(firstLine(body))
			if m == nil {
				return nil, fmt.Errorf("tutorial.md:%d: a shell block must start with a line saying where it runs (%s), not %q", start+1, whereLine, firstLine(body))
			}
			b := block{line: start + 1, end: i, script: strings.Join(body, "\n") + "\n", background: strings.Contains(m[2], "second terminal")}
			switch m[1] {
			case "the workstation":
				b.where = []string{"workstation"}
			case "each host":
				b.where = []string{canary, web}
			default:
				b.where = []string{m[1]}
			}
			blocks = append(blocks, b)
		case "text":
			// The output of the shell block just before, with only
			// blank lines between them.
			j := start - 1
			for j >= 0 && strings.TrimSpace(lines[j]) == "" {
				j--
			}
			if len(blocks) > 0 && blocks[len(blocks)-1].end == j {
				b := &blocks[len(blocks)-1]
				if b.background {
					return nil, fmt.Errorf("tutorial.md:%d: the output of a block that keeps running is not checked", start+1)
				}
				b.expect = append([]string{}, body...)
			}
		}
	}
	return blocks, nil
}

func firstLine(body []string) string {
	if len(body) == 0 {
		return ""
	}
	return body[0]
}

// hexRun is what a commit hash (or an abbreviation of one) looks like.
var hexRun = regexp.MustCompile(`\b[0-9a-f]{7,40}\b`)

// expectLine turns a line of expected output into a regular expression:
// "…" stands for anything, a run of white space for any white space, and
// a commit hash for any hash (they differ at every run).
func expectLine(line string) *regexp.Regexp {
	var re strings.Builder
	for i, piece := range strings.Split(strings.TrimSpace(line), "…") {
		if i > 0 {
			re.WriteString(".*")
		}
		last := 0
		for _, m := range hexRun.FindAllStringIndex(piece, -1) {
			re.WriteString(quoteSpace(piece[last:m[0]]))
			re.WriteString(`[0-9a-f]{7,40}`)
			last = m[1]
		}
		re.WriteString(quoteSpace(piece[last:]))
	}
	return regexp.MustCompile(re.String())
}

// quoteSpace quotes s for a regular expression in which each run of white
// space matches any run of white space.
func quoteSpace(s string) string {
	parts := space.Split(s, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, `\s+`)
}

var space = regexp.MustCompile(`\s+`)

// matchOutput checks that every non-blank line of expect matches a line of
// out, in order (lines of out may come between them), and returns the
// first that does not.
func matchOutput(expect []string, out string) (missing string, ok bool) {
	got := strings.Split(out, "\n")
	at := 0
	for _, want := range expect {
		if strings.TrimSpace(want) == "" {
			continue
		}
		re := expectLine(want)
		for at < len(got) && !re.MatchString(got[at]) {
			at++
		}
		if at == len(got) {
			return want, false
		}
		at++
	}
	return "", true
}

func TestParseAndMatch(t *testing.T) {
	md := "x\n```sh\n# on each host\nls\n```\n\n```text\nfoo … bar\n  a 3f2a9c1 b\n```\n```sh\n# on the workstation, in a second terminal\ngit daemon\n```\n```cairn\nfile {}\n```\n```text\nnot an output\n```\n"
	blocks, err := parseTutorial(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || len(blocks[0].where) != 2 || blocks[0].where[0] != canary || !blocks[1].background || blocks[1].where[0] != "workstation" {
		t.Fatalf("parsed %+v", blocks)
	}
	if got := strings.Join(blocks[0].expect, "|"); got != "foo … bar|  a 3f2a9c1 b" {
		t.Errorf("expect %q", got)
	}
	if _, err := parseTutorial("```sh\nls\n```\n"); err == nil {
		t.Error("a shell block that does not say where it runs was taken")
	}
	for _, c := range []struct {
		expect []string
		out    string
		ok     bool
	}{
		{[]string{"foo … bar", "a 3f2a9c1 b"}, "foo 1 2 bar\nzz\na   0123456789abcdef b\n", true},
		{[]string{"a 3f2a9c1 b", "foo … bar"}, "foo 1 2 bar\na 0123456 b\n", false}, // order
		{[]string{"converged: yes"}, "converged: no\n", false},
		{[]string{"held:       at 3f2a9c1 (since …): testing"}, "held:     at 89abcde (since 2026-12-03 16:00:00 UTC, 3s ago): testing\n", true},
		{[]string{"port = 8081"}, "port = 8080\n", false},
		{[]string{"x (y) [z] $ ^ *"}, "x (y) [z] $ ^ *\n", true},
	} {
		if missing, ok := matchOutput(c.expect, c.out); ok != c.ok {
			t.Errorf("matchOutput(%q, %q) = %v (missing %q), want %v", c.expect, c.out, ok, missing, c.ok)
		}
	}
}

// tutorialRun is the tutorial being followed: the workstation (this
// machine, a scratch home directory) and the two hosts.
type tutorialRun struct {
	t     *testing.T
	home  string // the workstation's home directory
	env   []string
	hosts map[string]*testhost.Host
	// subst replaces the tutorial's stand-in addresses with the test's,
	// for the workstation and for each host.
	subst map[string]*strings.Replacer
	// listen is each host's agent address.
	listen map[string]string
}

// TestTutorial follows docs/tutorial.md: every shell block runs where its
// first line says, in order, and must exit 0 and print what the text block
// after it shows.
//
//   - "workstation" blocks run here with bash -e -o pipefail, in a scratch
//     home directory (HOME) holding ~/cairn, this source tree (links to
//     its entries, but its own bin and dist: the tutorial builds the
//     package there with make deb). A block "in a second terminal" (git
//     daemon, Prometheus) is started and left running until the test ends.
//   - Host blocks run the same way as root in /root of two systemd test
//     hosts (internal/testhost), canary-01 and web-01. The tutorial copies
//     files to them with scp; the hosts run no sshd, so an scp in PATH
//     copies into their roots instead.
//   - The tutorial's addresses stand for the reader's machines (192.0.2.1
//     the workstation, .11 and .12 the hosts); the test hosts share this
//     machine's network, so each server gets a free loopback port: git
//     daemon's (the tutorial's git://192.0.2.1/), each agent's (0.0.0.0:9479,
//     192.0.2.11:9479 and .12:9479) and Prometheus's (127.0.0.1:9090). The
//     same replacements apply to the expected output. Host blocks get
//     CAIRN_LISTEN set to their agent's address, as the default
//     127.0.0.1:9479 reaches the agent on a real host.
//
// It takes about two minutes, half of it make deb; the tutorial's waits are
// bounded (timeout 60), and each block by blockTimeout. It skips without
// the tools (root, systemd-nspawn, debootstrap, dpkg-deb, prometheus, ...),
// except in CI.
func TestTutorial(t *testing.T) {
	md, err := os.ReadFile("tutorial.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseTutorial(string(md))
	if err != nil {
		t.Fatal(err)
	}
	for tool, pkg := range map[string]string{"dpkg-deb": "dpkg", "prometheus": "prometheus", "git": "git", "ssh-keygen": "openssh-client",
		"curl": "curl", "make": "make", "bash": "bash", "timeout": "coreutils"} {
		if _, err := exec.LookPath(tool); err != nil {
			debroot.SkipUnlessCI(t, "the tutorial needs %s (apt-get install %s)", tool, pkg)
		}
	}
	src, err := debroot.RepoFile(".")
	if err != nil {
		t.Fatal(err)
	}

	r := &tutorialRun{t: t, home: t.TempDir(), hosts: map[string]*testhost.Host{}, subst: map[string]*strings.Replacer{}, listen: map[string]string{}}
	for _, name := range []string{canary, web} {
		r.hosts[name] = testhost.Boot(t, testhost.Options{})
		r.listen[name] = gittest.FreeAddr(t)
	}
	git, prometheus := gittest.FreeAddr(t), gittest.FreeAddr(t)
	_, gitPort, _ := net.SplitHostPort(git)
	common := []string{
		"git://192.0.2.1/", "git://" + git + "/",
		"--listen=192.0.2.1", "--listen=127.0.0.1 --port=" + gitPort,
		"192.0.2.11:9479", r.listen[canary],
		"192.0.2.12:9479", r.listen[web],
		"127.0.0.1:9090", prometheus,
	}
	r.subst["workstation"] = strings.NewReplacer(common...)
	for name, addr := range r.listen {
		r.subst[name] = strings.NewReplacer(append([]string{"0.0.0.0:9479", addr, "127.0.0.1:9479", addr}, common...)...)
	}

	// The workstation: a home of its own, ~/cairn the source tree, and
	// the scp of the test hosts. ~/cairn links to each entry of the
	// source tree but bin and dist, which make build and make deb write:
	// the tutorial's build leaves the tree's own alone.
	checkout := filepath.Join(r.home, "cairn")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(checkout, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "bin" || e.Name() == "dist" {
			continue
		}
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(checkout, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	bin := t.TempDir()
	scp := fmt.Sprintf(`#!/bin/bash
# scp for the tutorial's test: the test hosts run no sshd, so this copies
# into their roots. Usage as the tutorial's: scp FILE... root@ADDRESS:[DIR]
set -eu
dest=${@: -1}
case $dest in
root@192.0.2.11:*) root=%q ;;
root@192.0.2.12:*) root=%q ;;
*) echo "scp (tutorial test): unknown destination $dest" >&2; exit 1 ;;
esac
dir=${dest#*:}
case $dir in "") dir=/root ;; /*) ;; *) dir=/root/$dir ;; esac
for f in "${@:1:$#-1}"; do
	case $f in -*) continue ;; esac
	cp -v "$f" "$root$dir/"
done
`, r.hosts[canary].Root(), r.hosts[web].Root())
	if err := os.WriteFile(filepath.Join(bin, "scp"), []byte(scp), 0o755); err != nil {
		t.Fatal(err)
	}
	path := bin + ":" + os.Getenv("PATH")
	if _, err := exec.LookPath("go"); err != nil {
		path += ":/usr/local/go/bin"
	}
	r.env = []string{"HOME=" + r.home, "PATH=" + path, "LANG=C.UTF-8", "TERM=dumb", "GIT_CONFIG_NOSYSTEM=1",
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOFLAGS=" + os.Getenv("GOFLAGS"), "GOTOOLCHAIN=local"}
	for _, v := range []string{"CI", "TMPDIR", "GOPROXY"} {
		if val, ok := os.LookupEnv(v); ok {
			r.env = append(r.env, v+"="+val)
		}
	}
	t.Cleanup(r.logAgents)

	start := time.Now()
	for i, b := range blocks {
		for _, where := range b.where {
			r.run(i, b, where)
		}
	}
	t.Logf("the tutorial's %d blocks ran in %v", len(blocks), time.Since(start).Round(time.Second))
}

func goEnv(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// blockTimeout bounds a block: make deb on a busy machine is the longest.
const blockTimeout = 4 * time.Minute

// run runs block b (the i-th) at where and checks what it printed.
func (r *tutorialRun) run(i int, b block, where string) {
	t := r.t
	t.Helper()
	script := r.subst[where].Replace(b.script)
	expect := make([]string, len(b.expect))
	for j, l := range b.expect {
		expect[j] = r.subst[where].Replace(l)
	}
	what := fmt.Sprintf("tutorial.md:%d (on %s)", b.line, where)

	if where == "workstation" && b.background {
		r.background(i, what, script)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	started := time.Now()
	var out string
	var code int
	if where == "workstation" {
		file := filepath.Join(t.TempDir(), fmt.Sprintf("block-%d.sh", i))
		if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-e", "-o", "pipefail", file)
		cmd.Dir, cmd.Env = r.home, r.env
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		out, code = buf.String(), cmd.ProcessState.ExitCode()
		if ctx.Err() != nil {
			t.Fatalf("%s: still running after %v:\n%s\n--- output:\n%s", what, blockTimeout, script, out)
		} else if err != nil && code == -1 {
			t.Fatalf("%s: %v", what, err)
		}
	} else {
		if b.background {
			t.Fatalf("%s: only the workstation runs commands in a second terminal", what)
		}
		h := r.hosts[where]
		// /run inside is a tmpfs of the host's own, out of the machine's reach.
		name := fmt.Sprintf("/var/tmp/tutorial-block-%d.sh", i)
		// As a root shell on the host: in root's home, stderr with stdout
		// as a terminal shows them, and cairn's host commands reaching
		// the agent as 127.0.0.1:9479 would on a real host.
		h.WriteFile(name, []byte("exec 2>&1\ncd /root\nexport CAIRN_LISTEN="+r.listen[where]+"\n"+script), 0o644)
		res, err := h.Exec(ctx, "bash", "--noprofile", "--norc", "-e", "-o", "pipefail", name)
		if err != nil {
			t.Fatalf("%s: %v\n%s\n--- output:\n%s", what, err, script, res.Stdout+res.Stderr)
		}
		out, code = res.Stdout+res.Stderr, res.Code
	}
	t.Logf("%s: exit %d in %v\n%s", what, code, time.Since(started).Round(time.Millisecond), indent(out))
	if code != 0 {
		t.Fatalf("%s: exit code %d\n%s\n--- output:\n%s", what, code, script, out)
	}
	if missing, ok := matchOutput(expect, out); !ok {
		t.Fatalf("%s: the output lacks the line %q (or the lines before it come after it)\n--- output:\n%s", what, missing, out)
	}
}

// background starts a block that keeps running (a server in a second
// terminal), stops it when the test ends, and fails the test if it exits
// early.
func (r *tutorialRun) background(i int, what, script string) {
	t := r.t
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, fmt.Sprintf("block-%d.sh", i))
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-e", "-o", "pipefail", file)
	cmd.Dir, cmd.Env = r.home, r.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	output := func() string {
		b, _ := os.ReadFile(log.Name())
		return string(b)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		t.Logf("%s, which ran in the background, printed:\n%s", what, indent(output()))
	})
	select {
	case <-done:
		t.Fatalf("%s: exited at once (it should keep running):\n%s", what, output())
	case <-time.After(time.Second):
	}
}

// logAgents logs each host's agent journal when the test failed.
func (r *tutorialRun) logAgents() {
	if !r.t.Failed() {
		return
	}
	for name, h := range r.hosts {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := h.Exec(ctx, "journalctl", "-u", "cairn", "--no-pager", "-n", "60")
		cancel()
		if err == nil {
			r.t.Logf("%s: journalctl -u cairn:\n%s", name, indent(res.Stdout))
		}
	}
}

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString("    | " + sc.Text() + "\n")
	}
	return b.String()
}
