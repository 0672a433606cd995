package journal

import (
	"strings"
	"sync"
)

// ParsePair parses two journals that are mostly the same text, as the two
// sides of a diff are, in about the time of parsing one: a line of newText
// whose bytes equal a step line of oldText is not parsed again but takes the
// old line's step, with its own position. A step is a function of the text
// of its line and of its position only, so the steps are the ones Parse
// returns for each file; the old file is parsed on two goroutines.
//
// ok is false when either journal has an error or an INCLUDE: then nothing
// is returned and the caller parses the files one by one (Load), which
// reports every error in both files and expands the INCLUDEs. The texts
// must not change while the steps are in use (they hold substrings of them).
func ParsePair(oldFile, oldText, newFile, newText string) (old, new *Journal, ok bool) {
	// The old journal in two halves, cut at a line end, on two goroutines.
	cut := len(oldText) / 2
	if i := strings.IndexByte(oldText[cut:], '\n'); i >= 0 && len(oldText) >= 1<<16 {
		cut += i + 1
	} else {
		cut = len(oldText)
	}
	headLines := strings.Count(oldText[:cut], "\n")
	// The head parses into the slice of the whole journal, with room for
	// the tail, which is copied after it: one copy of half the steps
	// rather than a third slice of them all.
	head := pairHalf{steps: make([]Step, 0, headLines+strings.Count(oldText[cut:], "\n")+1)}
	var tail pairHalf
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tail.parse(oldFile, oldText[cut:], headLines)
	}()
	head.parse(oldFile, oldText[:cut], 0)
	wg.Wait()
	if !head.ok || !tail.ok {
		return nil, nil, false
	}
	old = &Journal{File: oldFile, Steps: append(head.steps, tail.steps...)}
	tail.steps = nil

	lines := append(head.lines, tail.lines...) // the text of each step of old
	head.lines, tail.lines = nil, nil

	// A line of new is looked for in old where the last one was found:
	// at the next step line, or a few further (a step removed); then in a
	// map of all old step lines by text, made the first time it is needed
	// (a step moved, or many removed). Most lines are found at the first
	// try, comparing bytes that are read in order anyway. Lines that repeat
	// may take any of their steps: they have the same op, arguments,
	// attributes and column.
	var seen map[string]int32
	find := func(line string, next int) (int, bool) {
		for k := next; k < len(lines) && k < next+pairWindow; k++ {
			if lines[k] == line {
				return k, true
			}
		}
		if seen == nil {
			seen = make(map[string]int32, len(lines))
			for k, l := range lines {
				if _, dup := seen[l]; !dup {
					seen[l] = int32(k)
				}
			}
		}
		k, ok := seen[line]
		return int(k), ok
	}
	new = &Journal{File: newFile, Steps: make([]Step, 0, strings.Count(newText, "\n")+1)}
	p := parser{file: newFile}
	lineNo, next := 0, 0
	for text := newText; len(text) > 0; {
		lineNo++
		var line string
		line, text = cutLine(text)
		if k, found := find(line, next); found {
			s := old.Steps[k]
			s.Pos = Pos{File: newFile, Line: lineNo, Col: s.Pos.Col}
			new.Steps = append(new.Steps, s)
			next = k + 1
			continue
		}
		if s, parsed := p.parseLine(lineNo, line); parsed {
			if s.Op == OpInclude {
				return nil, nil, false
			}
			new.Steps = append(new.Steps, s)
		}
	}
	if len(p.errs) > 0 {
		return nil, nil, false
	}
	return old, new, true
}

// pairWindow is how many step lines of old ParsePair compares a line of new
// with, from where it found the last one, before it looks in a map.
const pairWindow = 8

// pairHalf is one part of the old journal of ParsePair: its steps and the
// text of the line of each. steps may be set to an empty slice with room
// before parse.
type pairHalf struct {
	steps []Step
	lines []string
	ok    bool
}

// parse parses text, whose first line is line skip+1 of file.
func (h *pairHalf) parse(file, text string, skip int) {
	n := strings.Count(text, "\n") + 1
	if h.steps == nil {
		h.steps = make([]Step, 0, n)
	}
	h.lines = make([]string, 0, n)
	p := parser{file: file}
	lineNo := skip
	for len(text) > 0 {
		lineNo++
		var line string
		line, text = cutLine(text)
		if s, ok := p.parseLine(lineNo, line); ok {
			if s.Op == OpInclude {
				return
			}
			h.steps = append(h.steps, s)
			h.lines = append(h.lines, line)
		}
	}
	h.ok = len(p.errs) == 0
}
