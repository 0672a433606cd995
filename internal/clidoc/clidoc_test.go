package clidoc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// tool is a small command tree with what the renderers must handle: a
// sub-command group, a hidden command, enums, durations, bools, defaults,
// environment variables, arguments, and help that roff would misread.
type tool struct {
	Verbose bool `help:"Say more." short:"v" env:"TOOL_VERBOSE"`

	Run struct {
		Mode    string        `help:"How to run: fast or safe." enum:"fast,safe" default:"safe" env:"TOOL_MODE"`
		Wait    time.Duration `help:"How long to wait." default:"30s" env:"TOOL_WAIT"`
		Config  string        `help:"The settings file." placeholder:"FILE" env:"TOOL_CONFIG"`
		Plain   string        `help:"A value without a default." env:"TOOL_PLAIN"`
		NoEnv   string        `help:"Only a flag." name:"no-env"`
		Unicode string        `help:".starts with a dot; 'quoted; a back\\slash and a-hyphen." name:"odd"`
	} `cmd:"" help:"Run the thing. Then stop."`
	Files struct {
		List struct {
			Paths []string `arg:"" optional:"" help:"The files to list." name:"file"`
		} `cmd:"" help:"List files."`
	} `cmd:"" help:"Work on files."`
	Secret struct{} `cmd:"" hidden:"" help:"Not shown."`
}

func model(t *testing.T) *kong.Application {
	t.Helper()
	var cli tool
	k, err := kong.New(&cli, kong.Name("tool"), kong.Description("tool does things."), kong.Exit(func(int) { t.Fatal("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	return k.Model
}

func TestManPages(t *testing.T) {
	pages := ManPages(model(t), Meta{Version: "tool 1.0", Date: "2026-01-02", Manual: "tool manual",
		Sections: []Section{{Title: "exit status", Text: "\t0\nSuccess.\n\n\t1\nFailure."}},
		Extra:    map[string][]Section{"tool run": {{Title: "FILES", Text: "Nothing -here."}}}})
	var names []string
	byName := map[string]string{}
	for _, p := range pages {
		names = append(names, p.Name)
		byName[p.Name] = string(p.Text)
	}
	if got, want := strings.Join(names, " "), "tool.1 tool-run.1 tool-files.1 tool-files-list.1"; got != want {
		t.Errorf("pages %s, want %s (the hidden command has none)", got, want)
	}
	run := byName["tool-run.1"]
	for _, want := range []string{
		`.TH "TOOL\-RUN" 1 "2026\-01\-02" "tool 1.0" "tool manual"`,
		".SH NAME\ntool\\-run \\- run the thing\n",
		".SH SYNOPSIS\n.B tool run\n[\\fIOPTIONS\\fR]\n",
		"\\fB\\-\\-mode\\fR=\\fIfast|safe\\fR\nHow to run: fast or safe. Default: safe. Environment: TOOL_MODE.\n",
		"\\fB\\-\\-wait\\fR=\\fID\\fR\nHow long to wait. Default: 30s. Environment: TOOL_WAIT.\n",
		"\\fB\\-v\\fR, \\fB\\-\\-verbose\\fR\nSay more. Environment: TOOL_VERBOSE.\n",
		"\\fB\\-\\-config\\fR=\\fIFILE\\fR\n",
		"\\fB\\-\\-odd\\fR=\\fIODD\\fR\n\\&.starts with a dot; 'quoted; a back\\eslash and a\\-hyphen.\n",
		".SH EXIT STATUS\n.TP\n0\nSuccess.\n.TP\n1\nFailure.\n",
		".SH FILES\nNothing \\-here.\n",
		".SH SEE ALSO\n\\fB\\%tool\\fR(1)\n",
	} {
		if !strings.Contains(run, want) {
			t.Errorf("tool-run.1 lacks %q:\n%s", want, run)
		}
	}
	if strings.Contains(byName["tool.1"], "FILES") {
		t.Error("an Extra section of tool run is on tool.1 too")
	}
	root := byName["tool.1"]
	for _, want := range []string{".SH NAME\ntool \\- does things\n", ".SH COMMANDS\n.TP\n.B tool run\nRun the thing. Then stop. See \\fB\\%tool\\-run\\fR(1).\n", "\\fB\\%tool\\-run\\fR(1),\n\\fB\\%tool\\-files\\fR(1)\n"} {
		if !strings.Contains(root, want) {
			t.Errorf("tool.1 lacks %q:\n%s", want, root)
		}
	}
	if strings.Contains(root, "secret") {
		t.Error("tool.1 names the hidden command")
	}
	list := byName["tool-files-list.1"]
	if !strings.Contains(list, ".B tool files list\n[\\fIOPTIONS\\fR]\n[\\fIFILE\\fR ...]\n") {
		t.Errorf("tool-files-list.1's synopsis:\n%s", list)
	}

	// man renders every page without a warning.
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man (man-db) is not installed")
	}
	dir := t.TempDir()
	for _, p := range pages {
		file := filepath.Join(dir, p.Name)
		if err := os.WriteFile(file, p.Text, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("man", "--warnings", "-l", "-Tutf8", "-Z", file)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v %s", p.Name, err, stderr.String())
		}
	}
	out, err := exec.Command("man", "-l", filepath.Join(dir, "tool-run.1")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(".starts with a dot; 'quoted; a back\\slash and a-hyphen.")) {
		t.Errorf("man shows the odd help wrongly:\n%s", out)
	}
}

func TestEnvFile(t *testing.T) {
	var run *kong.Node
	for _, c := range model(t).Children {
		if c.Name == "run" {
			run = c
		}
	}
	var b bytes.Buffer
	if err := EnvFile(&b, run); err != nil {
		t.Fatal(err)
	}
	want := `
# --verbose: Say more.
#TOOL_VERBOSE=false

# --mode fast|safe: How to run: fast or safe.
#TOOL_MODE=safe

# --wait D: How long to wait.
#TOOL_WAIT=30s

# --config FILE: The settings file.
#TOOL_CONFIG=

# --plain PLAIN: A value without a default.
#TOOL_PLAIN=
`
	if b.String() != want {
		t.Errorf("EnvFile:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		text  string
		width int
		want  []string
	}{
		{"a b c", 3, []string{"a b", "c"}},
		{"a b c", 80, []string{"a b c"}},
		{"averyverylongword b", 4, []string{"averyverylongword", "b"}},
		{"", 10, nil},
	} {
		if got := wrap(tc.text, tc.width); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.text, tc.width, got, tc.want)
		}
	}
}
