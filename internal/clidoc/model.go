package clidoc

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// commands returns node and every command beneath it that is not hidden,
// parents before their children, in the order the model declares them.
func commands(node *kong.Node) []*kong.Node {
	out := []*kong.Node{node}
	for _, c := range node.Children {
		if c.Hidden || c.Type != kong.CommandNode {
			continue
		}
		out = append(out, commands(c)...)
	}
	return out
}

// subcommands returns the commands directly beneath node that are not
// hidden.
func subcommands(node *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range node.Children {
		if !c.Hidden && c.Type == kong.CommandNode {
			out = append(out, c)
		}
	}
	return out
}

// flags returns the flags a command takes, its ancestors' first, without
// the hidden ones.
func flags(node *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, group := range node.AllFlags(true) {
		out = append(out, group...)
	}
	return out
}

// words is a command's path as words: "cairn journal apply" is [cairn journal
// apply].
func words(node *kong.Node) []string { return strings.Fields(node.FullPath()) }

// takesValue says whether a flag is followed by a value.
func takesValue(f *kong.Flag) bool { return !f.IsBool() && !f.IsCounter() }

// placeholder names a flag's value in the documents: the flag's own
// placeholder (URL, FILE), else its choices (report|repair), else its kind
// (D for a duration, N for a number), else its name in capitals. (Kong's
// help shows a default instead, as "report": the documents show defaults
// apart.)
func placeholder(f *kong.Flag) string {
	switch {
	case f.PlaceHolder != "":
		return f.PlaceHolder
	case f.Enum != "":
		return strings.Join(enum(f), "|")
	case f.Target.Type() == reflect.TypeFor[time.Duration]():
		return "D"
	case f.Target.CanFloat() || f.Target.CanInt() || f.Target.CanUint():
		return "N"
	}
	return strings.ToUpper(f.Name)
}

// enum is the values an enum flag takes, without the empty one (which
// means the flag's default).
func enum(f *kong.Flag) []string {
	return slices.DeleteFunc(slices.Clone(f.EnumSlice()), func(s string) bool { return s == "" })
}

// completesFiles says whether a flag's value (or an argument) is a file, a
// directory, or neither, from its placeholder or name: FILE, DIR, PATH.
func completesFiles(name string) (files, dirs bool) {
	switch strings.ToUpper(strings.Trim(name, `"<>.`)) {
	case "FILE", "OLD", "NEW", "PATH":
		return true, false
	case "DIR":
		return false, true
	}
	return false, false
}

// firstSentence is the help of a command or flag up to its first full stop,
// without it: what a one-line summary shows.
func firstSentence(help string) string {
	help = strings.TrimSpace(help)
	if i := strings.Index(help, ". "); i >= 0 {
		help = help[:i]
	}
	return strings.TrimSuffix(help, ".")
}

// defaultValue is a flag's default as a value, "" when it has none; the
// default of a string flag is shown unquoted.
func defaultValue(f *kong.Flag) string {
	if !f.HasDefault {
		return ""
	}
	return f.Default
}
