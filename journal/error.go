package journal

import (
	"errors"
	"sort"
	"strings"
)

// Severity tells an error from a warning.
type Severity uint8

// Severities of findings.
const (
	SevError Severity = iota
	SevWarning
)

// Error is one finding at a position: a parse error, a failed static check,
// or a warning.
type Error struct {
	Pos      Pos
	Msg      string
	Severity Severity
}

// Error formats e as FILE:LINE:COL: message (warnings say so).
func (e *Error) Error() string {
	if e.Severity == SevWarning {
		return e.Pos.String() + ": warning: " + e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// ErrorList is every finding of a parse or check, in file order. As an error
// it holds at least one finding of severity SevError.
type ErrorList []*Error

// Error joins the findings, one a line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// HasErrors reports whether any finding is an error, not a warning.
func (l ErrorList) HasErrors() bool {
	for _, e := range l {
		if e.Severity == SevError {
			return true
		}
	}
	return false
}

// Err returns l as an error if it holds an error, else nil.
func (l ErrorList) Err() error {
	if l.HasErrors() {
		return l
	}
	return nil
}

// Sort orders the findings by file, line and column, keeping the order of
// findings at one position.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Findings returns the findings held by err, or nil if err holds none.
func Findings(err error) ErrorList {
	var l ErrorList
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return ErrorList{e}
	}
	return nil
}
