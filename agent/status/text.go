package status

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// WriteText writes the document for a person, as `cairn status` prints it:
// host, group, state, held, applied and target commit, converged, drift,
// the last run and the bad commits.
func (d *Document) WriteText(w io.Writer) error {
	p := &printer{}
	p.line("host", clean(d.Host))
	group := orNone(d.Group)
	if d.Branch != "" {
		group += " (branch " + clean(d.Branch) + ")"
	}
	p.line("group", group)
	p.line("state", clean(d.State)+since(d.StateSince))
	if d.Held == nil {
		p.line("held", "no")
	} else {
		p.line("held", fmt.Sprintf("at %s%s: %s", orNone(d.Held.Commit), since(d.Held.Since), clean(d.Held.Reason)))
	}
	if d.Applied == nil {
		p.line("applied", "nothing yet")
	} else {
		a := d.Applied
		facts := []string{plural(a.Steps, "step")}
		if !a.Time.IsZero() {
			facts = append(facts, "applied "+stamp(a.Time))
		}
		if !a.Committed.IsZero() {
			facts = append(facts, "committed "+stamp(a.Committed))
		}
		p.line("applied", orNone(a.Commit)+" ("+strings.Join(facts, ", ")+")")
	}
	if d.Target == nil {
		p.line("target", "not fetched yet")
	} else {
		t := d.Target
		var facts []string
		if t.Branch != "" {
			facts = append(facts, "branch "+clean(t.Branch))
		}
		if !t.Committed.IsZero() {
			facts = append(facts, "committed "+stamp(t.Committed))
		}
		if !t.Fetched.IsZero() {
			facts = append(facts, "fetched "+stamp(t.Fetched))
		}
		v := orNone(t.Commit)
		if len(facts) > 0 {
			v += " (" + strings.Join(facts, ", ") + ")"
		}
		p.line("target", v)
	}
	p.line("converged", yesNo(d.Converged))
	if len(d.Drift) == 0 {
		p.line("drift", "none")
	} else {
		p.line("drift", plural(len(d.Drift), "step"))
		for _, dr := range d.Drift {
			head := clean(dr.Step)
			if dr.Source != "" {
				head = clean(dr.Source) + ": " + head
			}
			p.indented(1, head)
			for _, l := range strings.Split(strings.TrimRight(dr.Diff, "\n"), "\n") {
				if l != "" {
					p.indented(2, clean(l))
				}
			}
		}
	}
	if d.LastRun == nil {
		p.line("last run", "none yet")
	} else {
		r := d.LastRun
		v := clean(r.Result)
		if r.Commit != "" {
			v += " at " + clean(r.Commit)
		}
		if r.From != "" {
			v += " from " + clean(r.From)
		}
		p.line("last run", v)
		when := stamp(r.Started)
		if !r.Finished.IsZero() {
			when += " to " + stamp(r.Finished) + " (" + r.Finished.Sub(r.Started).Round(time.Millisecond).String() + ")"
		}
		p.indented(1, when+", "+plural(r.Ops, "op"))
		if len(r.States) > 0 {
			states := make([]string, len(r.States))
			for i, s := range r.States {
				states[i] = clean(s)
			}
			p.indented(1, "states: "+strings.Join(states, " → "))
		}
		if r.Error != "" {
			p.indented(1, "error: "+clean(r.Error))
		}
	}
	if len(d.BadCommits) > 0 {
		p.line("bad commits", strconv.Itoa(len(d.BadCommits)))
		for _, b := range d.BadCommits {
			v := clean(b.Commit)
			if b.From != "" {
				v += " from " + clean(b.From)
			}
			v += ": " + clean(b.Reason)
			if !b.Since.IsZero() {
				v += " (" + stamp(b.Since) + ")"
			}
			p.indented(1, v)
		}
	}
	if d.Version != "" {
		p.line("version", clean(d.Version))
	}
	_, err := io.WriteString(w, p.b.String())
	return err
}

// printer builds the text: labels in a column, values after them.
type printer struct{ b strings.Builder }

const labelWidth = len("bad commits: ")

func (p *printer) line(label, value string) {
	fmt.Fprintf(&p.b, "%-*s%s\n", labelWidth, label+":", value)
}

func (p *printer) indented(level int, s string) {
	p.b.WriteString(strings.Repeat(" ", labelWidth+2*(level-1)))
	p.b.WriteString(s)
	p.b.WriteByte('\n')
}

// clean escapes the control characters of s (terminal escapes, carriage
// returns, line breaks), so that one value stays on one line and cannot
// drive the terminal.
func clean(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u0085'
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return r != '\t' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return clean(s)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " since " + stamp(t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
