package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/cairn-cm/cairn/steps"
)

// progress observes a move for the command line: each op is logged at
// debug level, and on a terminal one line shows the op that runs,
// "[12/530] COPY /etc/x", rewritten in place. It is also the writer of
// everything else the command prints to that terminal meanwhile (command
// output, log lines), which first clears the line.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	log   *slog.Logger // nil until set: the logger writes through progress
	width int          // the terminal's columns; 0: not a terminal, no line
	shown bool         // the line is on the terminal
}

// newProgress makes the progress of a command whose messages go to w: with
// a line if w is a terminal.
func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			p.width = int(ws.Col)
			if p.width == 0 {
				p.width = 80
			}
		}
	}
	return p
}

// Write clears the line, then writes b.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	return p.w.Write(b)
}

// OpStarted shows the op.
func (p *progress) OpStarted(ev steps.OpEvent) {
	if p.width == 0 {
		return
	}
	what := ev.Object
	if what == "" {
		what = strings.TrimPrefix(ev.Step, ev.Kind+" ")
	}
	line := fmt.Sprintf("[%d/%d] %s %s", ev.Index, ev.Total, ev.Kind, what)
	if ev.Undo {
		line = fmt.Sprintf("[%d/%d] undo %s %s", ev.Index, ev.Total, ev.Kind, what)
	}
	line = strings.Map(func(r rune) rune { // one line, whatever a command holds
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, line)
	if utf8.RuneCountInString(line) >= p.width {
		line = string([]rune(line)[:p.width-1])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.shown = true
}

// OpDone logs the op at debug level. Below it, an op costs nothing here:
// a move of 10,000 ops would build as many records only to drop them.
func (p *progress) OpDone(ev steps.OpEvent) {
	if p.log == nil || !p.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"op", ev.Index, "of", ev.Total, "direction", ev.Direction.String(), "step", ev.Step, "at", ev.Pos.String(), "seconds", ev.Duration.Seconds()}
	if ev.Undo {
		attrs = append(attrs, "undo", true)
	}
	if ev.Err != nil {
		attrs = append(attrs, "err", ev.Err)
	}
	p.log.Debug("op", attrs...)
}

// done clears the line, before the command prints its result.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
}

func (p *progress) clearLocked() {
	if p.shown {
		io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
}
