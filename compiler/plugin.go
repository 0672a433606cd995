package compiler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/journal"
)

// pluginWaitDelay bounds the wait for a killed plugin's output to close.
const pluginWaitDelay = time.Second

// pluginTimeout is PluginTimeout; tests shorten it.
var pluginTimeout = PluginTimeout

// Why a plugin was killed.
var (
	errPluginTimeout = errors.New("it ran too long")
	errPluginOutput  = fmt.Errorf("it printed more than the %s its standard output may hold", sizeText(MaxPluginOutput))
)

// cappedBuffer keeps what is written to it up to max bytes. Past that it
// keeps nothing more and calls full once (when set: the writer is then
// told so, and stops); without full it drops the rest quietly, so that the
// program writing is never stopped by it.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int
	full func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if len(p) <= room {
		return b.buf.Write(p)
	}
	b.buf.Write(p[:max(room, 0)])
	if b.full == nil {
		return len(p), nil
	}
	b.full()
	return 0, errPluginOutput
}

func (b *cappedBuffer) String() string { return b.buf.String() }
func (b *cappedBuffer) Bytes() []byte  { return b.buf.Bytes() }

// plugin runs a plugin block's program and splices the journal steps it
// prints, each carrying the block's position.
func (c *compiler) plugin(u *unit, s *scope, b *block) {
	label, ok := c.label(s, b, 0)
	if !ok {
		return
	}
	what := "plugin " + strconv.Quote(label)
	root, err := c.pluginRoot()
	if err != nil {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %v", what, err))
		return
	}
	errs := len(c.errs)
	command, _, _ := c.str(s, b, "command")
	args, _ := c.strings(s, b, "args")
	env, _ := c.value(s, b, "env", tObject)
	if len(c.errs) > errs {
		return // never run a plugin with attributes that did not check
	}
	blobs, err := c.pluginBlobs()
	if err != nil {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %v", what, err))
		return
	}
	dir := filepath.Join(root, filepath.FromSlash(path.Dir(s.file.Name)))
	prog := command
	if strings.Contains(command, "/") {
		p, err := c.repoPath(s.file, command)
		if err != nil {
			c.errs = append(c.errs, s.errorf(b.attrs["command"].Value.Pos, "%s: %v", what, err))
			return
		}
		prog = filepath.Join(root, filepath.FromSlash(p))
	}
	// The plugin runs for at most PluginTimeout and prints at most
	// MaxPluginOutput: past either, it and its process group are killed.
	ctx, cancel := context.WithTimeoutCause(c.ctx, pluginTimeout, errPluginTimeout)
	defer cancel()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cmd := exec.CommandContext(ctx, prog, args...)
	// The plugin runs in a process group of its own, so that a cancelled
	// compile kills whatever it started too, not only the plugin.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Once the context is done and the plugin killed, stop waiting for a
	// child of it that still holds its output open.
	cmd.WaitDelay = pluginWaitDelay
	cmd.Dir = dir
	cmd.Env = append([]string{}, c.opts.Env...)
	cmd.Env = append(cmd.Env, "CAIRN_HOST="+c.opts.Host, "CAIRN_GROUP="+s.facts["group"].Str, "CAIRN_BLOBS="+blobs)
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
	stdout := &cappedBuffer{max: MaxPluginOutput, full: func() { stop(errPluginOutput) }}
	stderr := &cappedBuffer{max: maxPluginStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	if cmd.Process != nil {
		// Whatever the plugin left running goes with it: a compile leaves
		// no process behind.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // the group may be gone already
	}
	switch cause := context.Cause(ctx); {
	case c.ctx.Err() != nil:
		// The compile was cancelled: the plugin's error is no finding.
	case errors.Is(cause, errPluginTimeout):
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %s: killed: it ran longer than %v", what, command, pluginTimeout))
		return
	case errors.Is(cause, errPluginOutput):
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %s: killed: %v", what, command, cause))
		return
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = errors.New("it exited but left a process holding its output open (run background work with its output redirected)")
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			err = fmt.Errorf("%v: %s", err, msg)
		} else if ee == nil {
			err = unwrapPath(err) // the message names the command as written, not where the checkout is
		}
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %s: %v", what, command, err))
		return
	}
	if blobs == c.tmpBlobs && c.opts.Blobs != nil {
		if err := c.collectPluginBlobs(blobs); err != nil {
			c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %v", what, err))
			return
		}
	}
	j, err := journal.Parse(what+" output", stdout.Bytes())
	if err != nil {
		for _, e := range journal.Findings(err) {
			c.errs = append(c.errs, s.errorf(b.item.Pos, "%s printed a bad step: line %d:%d: %s", what, e.Pos.Line, e.Pos.Col, e.Msg))
		}
		return
	}
	n := &node{addr: "plugin." + label, pos: b.item.Pos, chain: chain(u, b.item.Pos), scope: s, unit: u}
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

// pluginRoot returns the directory on disk where plugins run: Options.Dir,
// or, when the configuration is no directory on disk (a git revision), a
// temporary copy of it made once per compile and removed by cleanup.
func (c *compiler) pluginRoot() (string, error) {
	if c.opts.Dir != "" {
		return c.opts.Dir, nil
	}
	if c.tmpDir != "" {
		return c.tmpDir, nil
	}
	dir, err := os.MkdirTemp("", "cairn-config-*")
	if err != nil {
		return "", fmt.Errorf("copy the configuration to run plugins: %w", err)
	}
	c.tmpDir = dir
	if err := exportFS(c.ctx, c.fsys, dir); err != nil {
		return "", fmt.Errorf("copy the configuration to run plugins: %w", err)
	}
	return dir, nil
}

// exportFS copies every directory, file and link of fsys beneath dir,
// keeping the executable bits.
func exportFS(ctx context.Context, fsys fs.FS, dir string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			if p == "." {
				return nil
			}
			return os.Mkdir(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, info.Mode().Perm()|0o600)
		}
		return nil
	})
}

// pluginBlobs returns the directory plugins put their COPY - content in,
// made if need be: a BlobDir's, as an absolute path since plugins run
// elsewhere, or a temporary one removed by cleanup, whose content
// collectPluginBlobs moves into Options.Blobs (when it is another store) or
// drops (when the compile writes no blobs: explain, diff of git revisions).
func (c *compiler) pluginBlobs() (string, error) {
	dir, ok := c.opts.Blobs.(BlobDir)
	if !ok {
		if c.tmpBlobs == "" {
			tmp, err := os.MkdirTemp("", "cairn-blobs-*")
			if err != nil {
				return "", fmt.Errorf("blob directory for plugins: %w", err)
			}
			c.tmpBlobs = tmp
		}
		return c.tmpBlobs, nil
	}
	abs, err := filepath.Abs(string(dir))
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		return "", fmt.Errorf("blob directory for plugins: %w", err)
	}
	return abs, nil
}

// cleanup removes what the compile made for itself.
func (c *compiler) cleanup() {
	for _, dir := range []string{c.tmpDir, c.tmpBlobs} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
}
