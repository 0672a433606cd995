package clidoc

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// Page is one manual page: its file name (cairn-agent.1) and its roff text.
type Page struct {
	Name string
	Text []byte
}

// Section is a section of a manual page beyond those made from the model
// (NAME, SYNOPSIS, DESCRIPTION, COMMANDS, OPTIONS, SEE ALSO): EXIT STATUS,
// FILES. Each paragraph of Text is a paragraph of the page; a paragraph
// whose first line starts with a tab is a tagged one, the rest of that
// first line its tag.
type Section struct {
	Title string
	Text  string
}

// Meta is what a manual page says of where it comes from.
type Meta struct {
	// Version is the program's version ("cairn 1.2.3" in the footer).
	Version string
	// Date is the date of the pages (the build's), as YYYY-MM-DD.
	Date string
	// Manual is the manual's title in the header ("cairn manual").
	Manual string
	// Sections are added to the page of every command, after its options.
	Sections []Section
	// Extra are added to the page of one command, by its path ("cairn
	// agent"), after Sections.
	Extra map[string][]Section
}

// ManPages returns the manual pages (section 1) of app: one for the
// application (NAME.1) and one for each command and sub-command that is not
// hidden (NAME-CMD-SUB.1), each with its usage, the help the command line
// prints for it, its commands and its flags with their defaults and
// environment variables, and links to its parent's and children's pages.
func ManPages(app *kong.Application, meta Meta) []Page {
	var pages []Page
	for _, node := range commands(app.Node) {
		var b bytes.Buffer
		writeMan(&b, node, meta)
		pages = append(pages, Page{Name: pageName(node) + ".1", Text: b.Bytes()})
	}
	return pages
}

// pageName is the name of a command's page: cairn-journal-apply.
func pageName(node *kong.Node) string { return strings.Join(words(node), "-") }

func writeMan(w io.Writer, node *kong.Node, meta Meta) {
	name := pageName(node)
	fmt.Fprintf(w, ".\\\" Generated from %s's command line (package clidoc); do not edit.\n", words(node)[0])
	fmt.Fprintf(w, ".TH %s 1 %s %s %s\n", quote(strings.ToUpper(name)), quote(meta.Date), quote(meta.Version), quote(meta.Manual))
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", escape(name), escape(lowerFirst(whatis(node))))

	fmt.Fprintf(w, ".SH SYNOPSIS\n")
	synopsis(w, node)

	fmt.Fprintf(w, ".SH DESCRIPTION\n")
	paragraphs(w, summary(node))
	if node.Detail != "" {
		paragraphs(w, node.Detail)
	}
	if len(node.Positional) > 0 {
		fmt.Fprintf(w, ".SH ARGUMENTS\n")
		for _, arg := range node.Positional {
			fmt.Fprintf(w, ".TP\n\\fI%s\\fR%s\n", escape(strings.ToUpper(arg.Name)), cond(arg.IsCumulative(), " ...", ""))
			fmt.Fprintf(w, "%s\n", escape(sentence(arg.Help)))
		}
	}
	if subs := subcommands(node); len(subs) > 0 {
		fmt.Fprintf(w, ".SH COMMANDS\n")
		for _, c := range subs {
			fmt.Fprintf(w, ".TP\n.B %s\n%s See %s.\n", escape(strings.Join(words(c), " ")), escape(sentence(c.Help)), pageRef(c))
		}
	}
	if fl := flags(node); len(fl) > 0 {
		fmt.Fprintf(w, ".SH OPTIONS\n")
		for _, f := range fl {
			option(w, f)
		}
	}
	for _, s := range meta.Sections {
		section(w, s)
	}
	for _, s := range meta.Extra[strings.Join(words(node), " ")] {
		section(w, s)
	}
	var see []string
	if p := node.Parent; p != nil {
		see = append(see, pageName(p))
	}
	for _, c := range subcommands(node) {
		see = append(see, pageName(c))
	}
	if len(see) > 0 {
		fmt.Fprintf(w, ".SH SEE ALSO\n")
		for i, s := range see {
			fmt.Fprintf(w, "\\fB\\%%%s\\fR(1)%s\n", escape(s), cond(i < len(see)-1, ",", ""))
		}
	}
}

// pageRef refers to a command's page: bold, and never hyphenated where the
// line breaks (\%), as in cairn-journal-apply(1).
func pageRef(node *kong.Node) string {
	return `\fB\%` + escape(pageName(node)) + `\fR(1)`
}

// whatis is the description of the NAME line: the first sentence of the
// summary, without the program's name when the summary starts with it
// ("cairn keeps hosts ..." makes "cairn \- keeps hosts ...").
func whatis(node *kong.Node) string {
	s := firstSentence(summary(node))
	if first, rest, ok := strings.Cut(s, " "); ok && node.Type == kong.ApplicationNode && first == node.Name {
		return rest
	}
	return s
}

// summary is a command's help, or, for the application, its description.
func summary(node *kong.Node) string {
	if node.Help != "" {
		return node.Help
	}
	return node.Detail
}

func synopsis(w io.Writer, node *kong.Node) {
	fmt.Fprintf(w, ".B %s\n", escape(strings.Join(words(node), " ")))
	if len(subcommands(node)) > 0 {
		fmt.Fprintf(w, "\\fICOMMAND\\fR\n")
	}
	if len(flags(node)) > 0 {
		fmt.Fprintf(w, "[\\fIOPTIONS\\fR]\n")
	}
	for _, arg := range node.Positional {
		a := "\\fI" + escape(strings.ToUpper(arg.Name)) + "\\fR"
		if arg.IsCumulative() {
			a += " ..."
		}
		if !arg.Required {
			a = "[" + a + "]"
		}
		fmt.Fprintln(w, a)
	}
}

func option(w io.Writer, f *kong.Flag) {
	fmt.Fprintf(w, ".TP\n")
	var tag strings.Builder
	if f.Short != 0 {
		fmt.Fprintf(&tag, "\\fB\\-%c\\fR, ", f.Short)
	}
	fmt.Fprintf(&tag, "\\fB\\-\\-%s\\fR", escape(f.Name))
	if takesValue(f) {
		fmt.Fprintf(&tag, "=\\fI%s\\fR", escape(placeholder(f)))
	}
	fmt.Fprintln(w, tag.String())
	text := sentence(f.Help)
	if d := defaultValue(f); d != "" {
		text += " Default: " + d + "."
	}
	if len(f.Envs) > 0 {
		text += " Environment: " + strings.Join(f.Envs, ", ") + "."
	}
	fmt.Fprintln(w, escape(text))
}

func section(w io.Writer, s Section) {
	fmt.Fprintf(w, ".SH %s\n", escape(strings.ToUpper(s.Title)))
	for i, p := range strings.Split(strings.Trim(s.Text, "\n"), "\n\n") {
		if tag, rest, ok := strings.Cut(p, "\n"); ok && strings.HasPrefix(tag, "\t") {
			fmt.Fprintf(w, ".TP\n%s\n%s\n", escape(strings.TrimPrefix(tag, "\t")), escape(join(rest)))
			continue
		}
		if i > 0 {
			fmt.Fprintf(w, ".PP\n")
		}
		fmt.Fprintln(w, escape(join(p)))
	}
}

// paragraphs writes text, paragraphs separated by blank lines.
func paragraphs(w io.Writer, text string) {
	for i, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			fmt.Fprintf(w, ".PP\n")
		}
		fmt.Fprintln(w, escape(sentence(join(p))))
	}
}

// join makes the lines of a paragraph one line: roff fills it.
func join(p string) string { return strings.Join(strings.Fields(p), " ") }

// sentence ends text with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, ")") && strings.HasSuffix(strings.TrimSuffix(s, ")"), ".") {
		return s
	}
	return s + "."
}

// lowerFirst lowers the first letter of a summary for the NAME line
// ("cairn-agent - run the agent"), unless the word is all capitals (CHECK).
func lowerFirst(s string) string {
	word, _, _ := strings.Cut(s, " ")
	if len(word) > 1 && strings.ToUpper(word) == word {
		return s
	}
	if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

// escape makes text safe in roff: backslashes printed as such, every
// hyphen a minus sign (options and paths are typed as ASCII hyphens), and
// no line starting with a control character.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(line)
	}
	return b.String()
}

// quote is an argument of a roff request: in double quotes, escaped.
func quote(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}

func cond(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
