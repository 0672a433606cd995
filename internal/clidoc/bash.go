package clidoc

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// Bash writes a bash completion script for app: sourced (or installed in
// /usr/share/bash-completion/completions), it completes commands and
// sub-commands, the flags of the command typed so far, the values of enum
// flags, and file names where a flag or an argument takes a file. It needs
// nothing but bash (not the bash-completion package's helpers).
func Bash(w io.Writer, app *kong.Application) error {
	name := app.Name
	fn := "_" + shellName(name)
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s. Generated from its command line (package clidoc); do not edit.\n\n", name)

	// The data: for each command path, its sub-commands, its flags, the
	// flags that take a value; and for each flag, what completes its value.
	fmt.Fprintf(&b, "%s_commands() {\n\tcase $1 in\n", fn)
	for _, node := range commands(app.Node) {
		if subs := subcommands(node); len(subs) > 0 {
			var names []string
			for _, c := range subs {
				names = append(names, c.Name)
			}
			fmt.Fprintf(&b, "\t%s) echo %s ;;\n", casePattern(node), shellQuote(strings.Join(names, " ")))
		}
	}
	fmt.Fprintf(&b, "\tesac\n}\n\n")

	fmt.Fprintf(&b, "%s_flags() {\n\tcase $1 in\n", fn)
	for _, node := range commands(app.Node) {
		var names []string
		for _, f := range flags(node) {
			names = append(names, "--"+f.Name)
			if f.Short != 0 {
				names = append(names, "-"+string(f.Short))
			}
		}
		fmt.Fprintf(&b, "\t%s) echo %s ;;\n", casePattern(node), shellQuote(strings.Join(names, " ")))
	}
	fmt.Fprintf(&b, "\tesac\n}\n\n")

	// Every flag that takes a value, and how to complete it, by name; a
	// flag's name means the same in every command of the tree.
	type valued struct{ name, action string }
	var vals []valued
	seen := map[string]bool{}
	for _, node := range commands(app.Node) {
		for _, f := range flags(node) {
			if !takesValue(f) || seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			action := "none"
			if f.Enum != "" {
				action = "words " + strings.Join(enum(f), " ")
			} else if files, dirs := completesFiles(placeholder(f)); files {
				action = "files"
			} else if dirs {
				action = "dirs"
			}
			vals = append(vals, valued{"--" + f.Name, action})
		}
	}
	fmt.Fprintf(&b, "# %s_value FLAG: how the value of FLAG completes (none: FLAG takes no value).\n", fn)
	fmt.Fprintf(&b, "%s_value() {\n\tcase $1 in\n", fn)
	for _, v := range vals {
		fmt.Fprintf(&b, "\t%s) echo %s ;;\n", v.name, shellQuote(v.action))
	}
	fmt.Fprintf(&b, "\t*) return 1 ;;\n\tesac\n}\n\n")

	// Arguments: a command with positional arguments completes file names.
	fmt.Fprintf(&b, "%s_args() {\n\tcase $1 in\n", fn)
	for _, node := range commands(app.Node) {
		if len(node.Positional) == 0 {
			continue
		}
		action := "none"
		for _, a := range node.Positional {
			if files, dirs := completesFiles(a.Name); files || dirs {
				action = "files"
			}
		}
		fmt.Fprintf(&b, "\t%s) echo %s ;;\n", casePattern(node), action)
	}
	fmt.Fprintf(&b, "\t*) echo none ;;\n\tesac\n}\n\n")

	fmt.Fprintf(&b, `%[1]s() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local path="" word i skip=0 action
	# The command typed so far: the words that name a sub-command, skipping
	# flags and their values ("--repo URL"; "--repo=URL", which bash splits
	# at the "=" into "--repo" "=" "URL").
	for ((i = 1; i < COMP_CWORD; i++)); do
		word=${COMP_WORDS[i]}
		if [[ $word == "=" ]]; then
			skip=1
			continue
		fi
		if ((skip)); then
			skip=0
			continue
		fi
		case $word in
		-*)
			%[1]s_value "$word" >/dev/null && skip=1
			;;
		*)
			if [[ " $(%[1]s_commands "$path") " == *" $word "* ]]; then
				path=${path:+$path }$word
			fi
			;;
		esac
	done
	# A flag's value: "--drift r", "--drift=r" (cur "r", prev "="), "--drift=" (cur "=").
	local flag=""
	if [[ $cur == "=" ]]; then
		flag=$prev
		cur=""
	elif [[ $prev == "=" ]] && ((COMP_CWORD >= 2)); then
		flag=${COMP_WORDS[COMP_CWORD-2]}
	elif [[ $prev == -* ]] && %[1]s_value "$prev" >/dev/null; then
		flag=$prev
	fi
	if [[ -n $flag ]] && action=$(%[1]s_value "$flag"); then
		case $action in
		words\ *) COMPREPLY=($(compgen -W "${action#words }" -- "$cur")) ;;
		files) COMPREPLY=($(compgen -f -- "$cur")) ;;
		dirs) COMPREPLY=($(compgen -d -- "$cur")) ;;
		*) COMPREPLY=() ;;
		esac
		return 0
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(%[1]s_flags "$path")" -- "$cur"))
		return 0
	fi
	local subs
	subs=$(%[1]s_commands "$path")
	if [[ -n $subs ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
	elif [[ $(%[1]s_args "$path") == files ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
	return 0
}

complete -o default -o bashdefault -F %[1]s %[2]s
`, fn, name)
	_, err := io.WriteString(w, b.String())
	return err
}

// casePattern is a case pattern matching a command's path beneath the
// application: "" for the application, "journal apply".
func casePattern(node *kong.Node) string {
	return shellQuote(strings.Join(words(node)[1:], " "))
}

// shellName makes a command's name usable in a shell function's name.
func shellName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return r
	}, s)
}

// shellQuote quotes s for sh in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
