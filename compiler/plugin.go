package compiler

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// plugin runs a plugin block's program and splices the journal steps it
// prints, each carrying the block's position.
func (c *compiler) plugin(u *unit, s *scope, b *block) {
	label, ok := c.label(s, b, 0)
	if !ok {
		return
	}
	what := "plugin " + strconv.Quote(label)
	if c.opts.Dir == "" {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: plugins run only from a configuration directory on disk, not from git objects", what))
		return
	}
	command, _, ok := c.str(s, b, "command")
	if !ok {
		return
	}
	args, _ := c.strings(s, b, "args")
	env, _ := c.value(s, b, "env", tObject)
	dir := filepath.Join(c.opts.Dir, filepath.FromSlash(path.Dir(s.file.Name)))
	prog := command
	if strings.Contains(command, "/") {
		p, err := c.repoPath(s.file, command)
		if err != nil {
			c.errs = append(c.errs, s.errorf(b.attrs["command"].Value.Pos, "%s: %v", what, err))
			return
		}
		prog = filepath.Join(c.opts.Dir, filepath.FromSlash(p))
	}
	cmd := exec.CommandContext(c.ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{}, c.opts.Env...)
	cmd.Env = append(cmd.Env, "CAIRN_HOST="+c.opts.Host, "CAIRN_GROUP="+s.facts["group"].Str, "CAIRN_BLOBS="+c.opts.BlobDir)
	for _, k := range sortedKeys(s.facts) {
		cmd.Env = append(cmd.Env, "CAIRN_FACT_"+strings.ToUpper(k)+"="+s.facts[k].Str)
	}
	for _, k := range env.Keys {
		text, ok := env.Fields[k].Text()
		if !ok {
			c.errs = append(c.errs, s.errorf(b.attrs["env"].Value.Pos, "%s: env %s must be a string", what, k))
			return
		}
		cmd.Env = append(cmd.Env, k+"="+text)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			err = fmt.Errorf("%v: %s", err, msg)
		}
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %s: %v", what, command, err))
		return
	}
	j, err := journal.Parse(what+" output", stdout.Bytes())
	if err != nil {
		for _, e := range journal.Findings(err) {
			c.errs = append(c.errs, s.errorf(b.item.Pos, "%s printed a bad step: line %d:%d: %s", what, e.Pos.Line, e.Pos.Col, e.Msg))
		}
		return
	}
	n := &node{addr: "plugin." + label, what: what, pos: b.item.Pos, chain: chain(u, b.item.Pos), scope: s, unit: u}
	for i := range j.Steps {
		st := j.Steps[i]
		if st.Op == journal.OpInclude {
			c.errs = append(c.errs, s.errorf(b.item.Pos, "%s printed INCLUDE at line %d: plugins print steps, not includes", what, st.Pos.Line))
			return
		}
		st.Source = ""
		n.steps = append(n.steps, st)
	}
	c.addNode(u, s, b, n)
}
