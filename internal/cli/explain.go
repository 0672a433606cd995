package cli

import (
	"bufio"
	"fmt"
	"io/fs"
	"strings"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
)

type explainCmd struct {
	hostFlags
	What string `arg:"" name:"WHAT" help:"A journal line, a path (/etc/motd), or a user, group, package or unit name."`
	Path string `arg:"" optional:"" default:"." help:"The configuration: a directory, or one file."`
}

// Run compiles the configuration, finds the steps WHAT names and prints,
// for each, the chain of source positions with the source line at each.
// Nothing found is exit 1.
func (c *explainCmd) Run(e *env) error {
	res, dir, err := compileAt(e, &c.hostFlags, c.Path, false, "")
	if err != nil {
		return err
	}
	matches, how := findSteps(res.Steps, c.What)
	if len(matches) == 0 {
		fmt.Fprintf(e.stderr, "cairn explain: no step of %s's journal %s\n", res.Host, how)
		return exitCode(exitDiffers)
	}
	// The source lines are read as the compiler read them: beneath the
	// configuration, regular files only.
	fsys, err := treefs.OpenDir(dir)
	if err != nil {
		return err
	}
	defer fsys.Close()
	w := bufio.NewWriter(e.stdout)
	for i, st := range matches {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, st.Canonical())
		for depth, pos := range strings.Split(st.Source, " > ") {
			fmt.Fprintf(w, "  %s%s", strings.Repeat("  ", depth), pos)
			if line := sourceLine(fsys, pos); line != "" {
				fmt.Fprintf(w, "\t%s", line)
			}
			fmt.Fprintln(w)
		}
	}
	return w.Flush()
}

// findSteps returns the steps that what names, and how it was read (for
// the message when nothing matches). A journal line matches its canonical
// form, or else its identity; a path matches the steps that manage it;
// another word matches users, groups, packages and units by name.
func findSteps(steps []journal.Step, what string) ([]journal.Step, string) {
	var out []journal.Step
	if st, err := journal.ParseStep(journal.Pos{File: "WHAT", Line: 1, Col: 1}, what); err == nil {
		for _, s := range steps {
			if s.Canonical() == st.Canonical() {
				out = append(out, s)
			}
		}
		if len(out) == 0 && st.Identity() != "" {
			for _, s := range steps {
				if s.Identity() == st.Identity() {
					out = append(out, s)
				}
			}
		}
		return out, "is " + st.Canonical()
	}
	if strings.HasPrefix(what, "/") {
		for _, s := range steps {
			if s.Path() == what || s.Object() == what {
				out = append(out, s)
			}
		}
		return out, "manages " + what
	}
	for _, s := range steps {
		switch s.Op {
		case journal.OpUseradd, journal.OpGroupadd, journal.OpAptInstall,
			journal.OpSystemdEnable, journal.OpSystemdStart, journal.OpSystemdRestart:
			if obj := s.Args[0]; obj == what || obj == what+".service" {
				out = append(out, s)
			}
		}
	}
	return out, "names a user, group, package or unit " + what
}

// sourceLine returns the trimmed source line at FILE:LINE:COL, or "".
func sourceLine(fsys fs.FS, pos string) string {
	file, rest, ok := strings.Cut(pos, ":")
	if !ok {
		return ""
	}
	lineText, _, _ := strings.Cut(rest, ":")
	var line int
	if _, err := fmt.Sscanf(lineText, "%d", &line); err != nil {
		return ""
	}
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(syntax.LineAt(string(data), line))
}
