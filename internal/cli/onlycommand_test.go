package cli

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/alecthomas/kong"
)

// parsed is what a parse of a command line gives run: the error, the
// command, the global flag and the values of the command's own struct.
type parsed struct {
	err      string
	command  string
	logLevel string
	values   any
}

// parseWith parses args as run does, with opts besides the usual ones.
func parseWith(t *testing.T, args []string, opts ...kong.Option) parsed {
	t.Helper()
	var c CLI
	parser, err := newParser(&c, append([]kong.Option{
		kong.Writers(io.Discard, io.Discard),
		kong.Exit(func(code int) { t.Fatalf("%q: kong exited with %d", args, code) }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	emptyEnvUnset(parser.Model.Node)
	kctx, err := parser.Parse(args)
	var p parsed
	if err != nil {
		p.err = err.Error()
	}
	if kctx != nil {
		p.command = kctx.Command()
		if sel := kctx.Selected(); sel != nil {
			p.values = sel.Target.Interface()
		}
	}
	p.logLevel = c.LogLevel
	return p
}

// TestOnlyCommandParsesAlike: a parser without the commands that the
// command line does not take parses it as the whole tree does: the same
// command, the same values (defaults and variables included) and the same
// errors, whatever the CAIRN_* variables of other commands hold.
func TestOnlyCommandParsesAlike(t *testing.T) {
	lines := [][]string{
		{"version"},
		{"version", "extra"},
		{"version", "--bogus"},
		{"versio"},
		{"--log-level", "debug", "version"},
		{"--log-level=info", "version"},
		{"--log-level", "bogus", "version"},
		{"--log-level"},
		{"journal"},
		{"journal", "difff"},
		{"journal", "diff"},
		{"journal", "diff", "--plan", "a", "b"},
		{"journal", "diff", "--json", "--repo", "r", "--fact", "k=v", "a", "b"},
		{"journal", "--log-level", "warn", "diff", "a", "b"},
		{"journal", "diff", "a", "b", "--log-level=error"},
		{"journal", "apply", "--root", "/r", "--state", "/s", "--source", "src", "f"},
		{"journal", "apply", "--repair", "--rehash-every", "x", "f"},
		{"journal", "apply", "--bogus", "f"},
		{"journal", "check", "a", "b"},
		{"journal", "drift"},
		{"journal", "show"},
		{"journal", "kept", "/etc/x"},
		{"journal", "fmt", "f"},
		{"compile", "--host", "web-01", "--fact", "release=12", "dir"},
		{"compile"},
		{"explain", "x"},
		{"fmt", "--check", "."},
		{"agent", "--once"},
		{"agent", "--interval", "soon"},
		{"status"},
		{"plan"},
		{"apply", "--to", "HEAD"},
		{"rollback"},
		{"resume"},
		{"fleet"},
		{"promote", "--from", "a", "--to", "b"},
		{"lock", "g"},
		{"unlock", "g"},
		{"--", "version"},
		{},
	}
	envs := []map[string]string{
		{},
		{"CAIRN_DRIFT": "bogus", "CAIRN_INTERVAL": "soon", "CAIRN_MIN_HOSTS": "x", "CAIRN_LOG_LEVEL": "info"},
		{"CAIRN_ROOT": "/srv/root", "CAIRN_STATE": "/srv/state", "CAIRN_HOST": "web-02", "CAIRN_LOG_FORMAT": "bogus"},
	}
	for i, env := range envs {
		for k, v := range env {
			t.Setenv(k, v)
		}
		for _, args := range lines {
			t.Run(fmt.Sprintf("env%d/%q", i, args), func(t *testing.T) {
				whole := parseWith(t, args)
				only := parseWith(t, args, onlyCommand(args))
				if !reflect.DeepEqual(only, whole) {
					t.Errorf("only the command's tree:\n%+v\nthe whole tree:\n%+v", only, whole)
				}
			})
		}
	}
}

// TestOnlyCommandPrunes: the parser of a command line has only the commands
// it takes, where it names them before anything else, and the whole tree
// where it may show more (help, a flag it does not know, no command).
func TestOnlyCommandPrunes(t *testing.T) {
	all := func(node *kong.Node) []string {
		var names []string
		for _, c := range node.Children {
			names = append(names, c.Name)
		}
		return names
	}
	var c CLI
	whole, err := newParser(&c)
	if err != nil {
		t.Fatal(err)
	}
	journal := func(app *kong.Application) *kong.Node {
		for _, n := range app.Children {
			if n.Name == "journal" {
				return n
			}
		}
		return nil
	}
	allRoot, allJournal := all(whole.Model.Node), all(journal(whole.Model))
	for _, tc := range []struct {
		args          []string
		root, journal []string
	}{
		{[]string{"version"}, []string{"version"}, nil},
		{[]string{"--log-level", "debug", "version", "x"}, []string{"version"}, nil},
		{[]string{"journal", "diff", "a", "b"}, []string{"journal"}, []string{"diff"}},
		{[]string{"--log-level=info", "journal", "--log-level", "warn", "apply", "f"}, []string{"journal"}, []string{"apply"}},
		{[]string{"journal", "--plan", "diff"}, []string{"journal"}, allJournal},
		{[]string{"journal", "bogus"}, []string{"journal"}, allJournal},
		{[]string{"journal"}, []string{"journal"}, allJournal},
		{[]string{"help", "journal", "apply"}, allRoot, allJournal},
		{[]string{"version", "--help"}, allRoot, allJournal},
		{[]string{"journal", "diff", "-h"}, allRoot, allJournal},
		{[]string{"journal", "diff", "--help=true"}, allRoot, allJournal},
		{[]string{"journal", "diff", "-xh"}, allRoot, allJournal},
		{[]string{"--bogus", "version"}, allRoot, allJournal},
		{[]string{"--", "version"}, allRoot, allJournal},
		{[]string{"bogus"}, allRoot, allJournal},
		{nil, allRoot, allJournal},
	} {
		var c CLI
		parser, err := newParser(&c, onlyCommand(tc.args))
		if err != nil {
			t.Fatal(err)
		}
		root := all(parser.Model.Node)
		var sub []string
		if j := journal(parser.Model); j != nil {
			sub = all(j)
		}
		if !slices.Equal(root, tc.root) || !slices.Equal(sub, tc.journal) {
			t.Errorf("%q: commands %q, journal's %q; want %q and %q", tc.args, root, sub, tc.root, tc.journal)
		}
	}
}

// BenchmarkParser: making the parser and parsing a one-shot command line,
// with only the command's tree and with the whole tree, as run did before.
func BenchmarkParser(b *testing.B) {
	args := []string{"journal", "diff", "--plan", "a.journal", "b.journal"}
	for _, bc := range []struct {
		name string
		opts func() []kong.Option
	}{
		{"only", func() []kong.Option { return []kong.Option{onlyCommand(args)} }},
		{"whole", func() []kong.Option { return nil }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				var c CLI
				parser, err := newParser(&c, bc.opts()...)
				if err != nil {
					b.Fatal(err)
				}
				emptyEnvUnset(parser.Model.Node)
				if _, err := parser.Parse(args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// digitCommands is a command tree whose command names have digits, which
// kong's namer splits off with a dash: Ec2 is "ec-2", not "ec2".
type digitCommands struct {
	Ec2   ec2Cmd   `cmd:""`
	Other otherCmd `cmd:""`
}

type (
	ec2Cmd   struct{}
	otherCmd struct{}
)

// TestPickCommandAsKongNames: pickCommand picks a command for a word only
// when kong names that command the word, for names with digits too;
// otherwise it would prune the siblings that kong's "did you mean" lists
// for the word it does not know.
func TestPickCommandAsKongNames(t *testing.T) {
	var c digitCommands
	parser, err := kong.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[digitCommands]()
	for _, word := range []string{"ec2", "ec-2", "other"} {
		chosen, _ := pickCommand(typ, word)
		if chosen == nil {
			continue
		}
		for _, n := range parser.Model.Children {
			if n.Target.Type() == chosen && n.Name != word {
				t.Errorf("pickCommand picks for %q the command kong names %q", word, n.Name)
			}
		}
	}
}

// unnamedCommands is a command tree whose journal command has a struct
// type without a name, as is its apply's, which has a flag --check.
type unnamedCommands struct {
	Journal struct {
		Apply struct {
			Check bool
		} `cmd:""`
		Check struct{} `cmd:""`
	} `cmd:""`
	Version struct{} `cmd:""`
}

// TestOnlyCommandUnnamedTypes: a command tree of struct types without a
// name parses alike pruned and whole: kong tells fields apart by
// "Type.Field", and the pattern that left out journal's command Check, had
// it been ".Check", would have left out apply's flag --check too.
func TestOnlyCommandUnnamedTypes(t *testing.T) {
	args := []string{"journal", "apply", "--check"}
	parse := func(opts ...kong.Option) string {
		var c unnamedCommands
		parser, err := kong.New(&c, append([]kong.Option{kong.Writers(io.Discard, io.Discard)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(args); err != nil {
			return err.Error()
		}
		return fmt.Sprint(c.Journal.Apply.Check)
	}
	whole, only := parse(), parse(onlyCommandOf(reflect.TypeFor[unnamedCommands](), args))
	if only != whole {
		t.Errorf("%q: pruned %s, whole %s", args, only, whole)
	}
}
