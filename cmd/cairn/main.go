// Command cairn keeps plain Debian hosts at the state that a git repository
// describes, shows drift, and can undo any change. All behaviour lives in
// packages; main only hands over the process's arguments and streams.
package main

import (
	"os"

	"github.com/cairn-cm/cairn/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
