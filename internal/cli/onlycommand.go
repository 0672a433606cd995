package cli

import (
	"reflect"
	"regexp"
	"strings"

	"github.com/alecthomas/kong"
)

// onlyCommand leaves out of the parser the commands that args do not take:
// at each level of the command tree that args name a command of for
// certain, its siblings. kong models the whole tree before it parses (every
// field's tag parsed, every help text and default interpolated, every value
// reset from its default or variable), which was a third of the CPU time
// of cairn version and as much again of its page faults. The parse of args
// is the same without the others, because kong looks only at the commands
// and flags on the path that args take (the flags and their defaults and
// variables, enums, required flags, suggestions for a word it does not
// know). The tree stays whole wherever args could show more of it: help
// (the command, or its flag anywhere), and every level whose command args
// do not name before anything else (cairn alone, an unknown word, a flag
// other than --log-level, or "--").
func onlyCommand(args []string) kong.Option {
	for _, a := range args {
		if mayAskHelp(a) {
			return kong.OptionFunc(func(*kong.Kong) error { return nil })
		}
	}
	return onlyCommandOf(reflect.TypeFor[CLI](), args)
}

// onlyCommandOf is onlyCommand for the command tree of struct type t.
func onlyCommandOf(t reflect.Type, args []string) kong.Option {
	var ignore []string
	for {
		word, rest := nextWord(args)
		chosen, others := pickCommand(t, word)
		if chosen == nil {
			break
		}
		ignore = append(ignore, regexp.QuoteMeta(t.Name())+`\.(?:`+strings.Join(others, "|")+`)`)
		t, args = chosen, rest
	}
	if len(ignore) == 0 {
		return kong.OptionFunc(func(*kong.Kong) error { return nil })
	}
	// kong matches each pattern against "Type.Field" of every field it
	// would model.
	return kong.IgnoreFields(`^(?:` + strings.Join(ignore, "|") + `)$`)
}

// mayAskHelp is whether a could be kong's help flag: --help, alone or
// with a value, or -h, alone or among other short flags.
func mayAskHelp(a string) bool {
	if strings.HasPrefix(a, "--") {
		return a == "--help" || strings.HasPrefix(a, "--help=")
	}
	return strings.HasPrefix(a, "-") && strings.Contains(a, "h")
}

// nextWord returns the first word of args that is not the global flag
// --log-level or its value, and the args after it; "" when anything else
// starts with a dash (another flag, or "--") or args end.
func nextWord(args []string) (word string, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--log-level":
			i++
		case strings.HasPrefix(a, "--log-level="):
		case strings.HasPrefix(a, "-"):
			return "", nil
		default:
			return a, args[i+1:]
		}
	}
	return "", nil
}

// pickCommand returns the type of the command of struct t that kong names
// word, and the field names of t's other commands; nil when word names
// none of them for certain: t is no named struct type or has no commands,
// word is help (whose Run traces the whole tree) or no command's name, or
// a command of t has a name this cannot tell as kong does (tagged names,
// aliases, a default command, a name of more than one word), or t has
// positional arguments or fields that kong reads otherwise (embedded, or
// tagged kong:"...").
func pickCommand(t reflect.Type, word string) (chosen reflect.Type, others []string) {
	if word == "" || word == "help" || t.Kind() != reflect.Struct || t.Name() == "" {
		// kong tells the fields apart by "Type.Field": the fields of an
		// unnamed struct type would be every unnamed struct's.
		return nil, nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !plainField(f) {
			return nil, nil
		}
		if _, ok := f.Tag.Lookup("cmd"); !ok {
			continue
		}
		if !plainCommand(f) {
			return nil, nil
		}
		if strings.ToLower(f.Name) == word {
			chosen = f.Type
		} else {
			others = append(others, f.Name)
		}
	}
	if chosen == nil || len(others) == 0 {
		return nil, nil
	}
	return chosen, others
}

// plainField is whether kong reads field f as it reads its tags: f is not
// embedded, has no kong:"..." tag and is no positional argument.
func plainField(f reflect.StructField) bool {
	for _, key := range []string{"kong", "embed", "arg"} {
		if _, ok := f.Tag.Lookup(key); ok {
			return false
		}
	}
	return !f.Anonymous
}

// plainCommand is whether command field f is named by kong as its name in
// lower case, and by nothing else.
func plainCommand(f reflect.StructField) bool {
	for _, key := range []string{"name", "aliases", "default", "prefix"} {
		if _, ok := f.Tag.Lookup(key); ok {
			return false
		}
	}
	return f.Type.Kind() == reflect.Struct && oneWord(f.Name)
}

// oneWord is whether a field name is one word (a capital, then small
// letters): kong's default namer turns it into its lower case alone. A
// digit starts a word of its own for the namer: Ec2 is "ec-2".
func oneWord(name string) bool {
	for i, r := range name {
		upper := 'A' <= r && r <= 'Z'
		if upper != (i == 0) || !(upper || 'a' <= r && r <= 'z') {
			return false
		}
	}
	return name != ""
}
