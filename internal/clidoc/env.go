package clidoc

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// EnvFile writes, for the command node, every flag that reads an
// environment variable (its own and its ancestors'), in the order its help
// lists them, commented out: its help (wrapped at 79 columns) and the flag,
// then the line "#NAME=DEFAULT" (NAME= for a flag without a default).
// Uncommenting a line sets the variable to the default, which changes
// nothing. It is the body of a settings file such as /etc/default/cairn,
// which systemd's EnvironmentFile= reads.
func EnvFile(w io.Writer, node *kong.Node) error {
	var b strings.Builder
	for _, f := range flags(node) {
		if len(f.Envs) == 0 {
			continue
		}
		flag := "--" + f.Name
		if takesValue(f) {
			flag += " " + placeholder(f)
		}
		b.WriteString("\n")
		for _, line := range wrap(flag+": "+sentence(f.Help), 77) {
			fmt.Fprintf(&b, "# %s\n", line)
		}
		value := defaultValue(f)
		if value == "" && f.IsBool() {
			value = "false"
		}
		fmt.Fprintf(&b, "#%s=%s\n", f.Envs[0], envValue(value))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// envValue quotes a value for an environment file when it needs it.
func envValue(v string) string {
	if strings.ContainsAny(v, " \t\"'\\$#") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return v
}

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
