package cli

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cairn-cm/cairn/steps"
)

type journalKeptCmd struct {
	stateFlags
	Sha256 string `name:"sha256" help:"With PATH: print the kept content with this sha256 (or a prefix of it) rather than the newest." placeholder:"HEX"`
	Path   string `arg:"" optional:"" name:"PATH" help:"Print the newest content kept for this object path."`
}

// Run lists the content the state keeps from files edited by hand, or
// prints the content kept for PATH.
func (c *journalKeptCmd) Run(e *env) error {
	a, done, err := c.openState(e)
	if err != nil {
		return err
	}
	defer done()
	if c.Path == "" {
		if c.Sha256 != "" {
			return &exitError{code: exitBadInput, err: fmt.Errorf("--sha256 needs a PATH")}
		}
		w := bufio.NewWriter(e.stdout)
		for _, k := range a.Kept() {
			fmt.Fprintln(w, keptLine(k))
		}
		return w.Flush()
	}
	_, r, err := a.OpenKept(c.Path, c.Sha256)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(e.stdout, r); err != nil {
		return fmt.Errorf("kept content of %s: %w", c.Path, err)
	}
	return nil
}

// keptLine describes one piece of kept content on one line.
func keptLine(k steps.Kept) string {
	src := ""
	if k.Source != "" {
		src = " (from " + k.Source + ")"
	}
	return fmt.Sprintf("%s sha256=%s size=%d mode=%04o owner=%d:%d time=%s: %s with %s%s; replaced by the %s of generation %d",
		quotePath(k.Path), k.Sum, k.Size, k.Mode, k.UID, k.GID, k.Time.UTC().Format(time.RFC3339), k.Why, k.At, src, k.Action, k.Generation)
}

// quotePath writes an object path bare where it can be, else quoted.
func quotePath(p string) string {
	if strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == '"' || r == '#' || !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(p)
	}
	return p
}
