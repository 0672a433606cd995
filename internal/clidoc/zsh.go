package clidoc

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// Zsh writes a zsh completion script for app (#compdef; installed as _NAME
// in a directory of $fpath such as /usr/share/zsh/vendor-completions): one
// function a command, with _arguments specs for its flags (and their help),
// its arguments, and its sub-commands with their help.
func Zsh(w io.Writer, app *kong.Application) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef %s\n# zsh completion for %[1]s. Generated from its command line (package clidoc); do not edit.\n\n", app.Name)
	for _, node := range commands(app.Node) {
		zshFunction(&b, node)
	}
	// The file is autoloaded as the function _NAME: its body defines the
	// functions above, then completes.
	fmt.Fprintf(&b, "%s \"$@\"\n", zshFunc(app.Node))
	_, err := io.WriteString(w, b.String())
	return err
}

// zshFunc is the name of a command's completion function:
// _cairn_journal_apply.
func zshFunc(node *kong.Node) string {
	return "_" + shellName(strings.Join(words(node), "_"))
}

func zshFunction(b *strings.Builder, node *kong.Node) {
	subs := subcommands(node)
	fmt.Fprintf(b, "%s() {\n", zshFunc(node))
	if len(subs) > 0 {
		fmt.Fprintf(b, "\tlocal curcontext=$curcontext state line ret=1\n\ttypeset -A opt_args\n\t_arguments -C -s -S \\\n")
	} else {
		fmt.Fprintf(b, "\t_arguments -s -S \\\n")
	}
	for _, f := range flags(node) {
		fmt.Fprintf(b, "\t\t%s \\\n", zshFlag(f))
	}
	if len(subs) > 0 {
		fmt.Fprintf(b, "\t\t'1: :->command' \\\n\t\t'*:: :->args' && ret=0\n")
		fmt.Fprintf(b, "\tcase $state in\n\tcommand)\n\t\tlocal -a commands=(\n")
		for _, c := range subs {
			fmt.Fprintf(b, "\t\t\t%s\n", shellQuote(c.Name+":"+firstSentence(c.Help)))
		}
		fmt.Fprintf(b, "\t\t)\n\t\t_describe -t commands %s commands && ret=0\n\t\t;;\n", shellQuote(strings.Join(words(node), " ")+" command"))
		fmt.Fprintf(b, "\targs)\n\t\tcurcontext=${curcontext%%:*:*}:%s-$words[1]:\n\t\tcase $words[1] in\n", strings.Join(words(node), "-"))
		for _, c := range subs {
			fmt.Fprintf(b, "\t\t%s) %s && ret=0 ;;\n", c.Name, zshFunc(c))
		}
		fmt.Fprintf(b, "\t\tesac\n\t\t;;\n\tesac\n\treturn ret\n}\n\n")
		return
	}
	for i, a := range node.Positional {
		action := " "
		if files, dirs := completesFiles(a.Name); files {
			action = "_files"
		} else if dirs {
			action = "_files -/"
		}
		pos := fmt.Sprint(i + 1)
		if a.IsCumulative() {
			pos = "*"
		}
		opt := ""
		if !a.Required && !a.IsCumulative() {
			opt = ":"
		}
		fmt.Fprintf(b, "\t\t%s \\\n", shellQuote(pos+":"+opt+zshEscape(strings.ToLower(a.Name))+":"+action))
	}
	fmt.Fprintf(b, "\n}\n\n")
}

// zshFlag is the _arguments spec of a flag: '--drift=[What a run does
// ...]:drift:(report repair)'.
func zshFlag(f *kong.Flag) string {
	help := zshEscape(firstSentence(f.Help))
	if !takesValue(f) {
		spec := "--" + f.Name + "[" + help + "]"
		if f.IsCumulative() {
			spec = "*" + spec
		}
		if f.Short != 0 {
			return "'(-" + string(f.Short) + " --" + f.Name + ")'{-" + string(f.Short) + ",--" + f.Name + "}" + shellQuote("["+help+"]")
		}
		return shellQuote(spec)
	}
	action := " "
	if f.Enum != "" {
		action = "(" + strings.Join(enum(f), " ") + ")"
	} else if files, dirs := completesFiles(placeholder(f)); files {
		action = "_files"
	} else if dirs {
		action = "_files -/"
	}
	spec := "--" + f.Name + "=[" + help + "]:" + zshEscape(strings.ToLower(placeholder(f))) + ":" + action
	if f.IsCumulative() {
		spec = "*" + spec
	}
	return shellQuote(spec)
}

// zshEscape escapes what _arguments reads specially in a description or a
// message: brackets and colons.
func zshEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`)
	return r.Replace(s)
}
