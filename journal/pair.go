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

	// Every step line of old by its text. Lines that repeat keep the first
	// step: any of them has the same op, arguments, attributes and column.
	seen := make(map[string]int32, len(old.Steps))
	for i := range old.Steps {
		var line string
		if i < len(head.lines) {
			line = head.lines[i]
		} else {
			line = tail.lines[i-len(head.lines)]
		}
		if _, dup := seen[line]; !dup {
			seen[line] = int32(i)
		}
	}
	new = &Journal{File: newFile, Steps: make([]Step, 0, strings.Count(newText, "\n")+1)}
	p := parser{file: newFile}
	lineNo := 0
	for text := newText; len(text) > 0; {
		lineNo++
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		if k, found := seen[line]; found {
			s := old.Steps[k]
			s.Pos = Pos{File: newFile, Line: lineNo, Col: s.Pos.Col}
			new.Steps = append(new.Steps, s)
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
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
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
