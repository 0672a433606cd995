// Command genconfig writes a synthetic cairn configuration repository for
// the compiler's benchmarks, deterministically (package gencfg has the
// layout):
//
//	genconfig [-resources N] [-dirs D] [-modules M] -out DIR
//
// N resource blocks in all (default 10000), D dir blocks spread over the
// modules (default N/20), M modules (default 20). DIR must be missing or
// empty. It prints the repository's figures on one line, NAME=VALUE
// separated by spaces; steps= is the length of the journal it compiles to
// for host web-01 with fact release=12.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/cairn-cm/cairn/bench/genconfig/gencfg"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genconfig:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("genconfig", flag.ContinueOnError)
	n := fl.Int("resources", 10000, "resource blocks in all")
	d := fl.Int("dirs", -1, "dir blocks, spread over the modules (default resources/20)")
	m := fl.Int("modules", 20, "modules, each called once")
	out := fl.String("out", "", "write the repository into `DIR` (missing or empty)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 || *out == "" {
		return errors.New("usage: genconfig [-resources N] [-dirs D] [-modules M] -out DIR")
	}
	if *d < 0 {
		*d = *n / 20
	}
	st, err := gencfg.Generate(*out, gencfg.Params{Resources: *n, Dirs: *d, Modules: *m})
	if err != nil {
		return err
	}
	fmt.Println(st)
	return nil
}
