package fleet

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns a label value as people may read it on a terminal or
// in a commit message: s itself when it is valid UTF-8 and every
// character is printable (unicode.IsPrint: no control character, no tab,
// no newline), else s quoted as a Go string, escapes and all. The labels
// of a host come from what its agent exports, which a broken or hostile
// host chooses: quoted, a host name cannot start a line of its own (a
// forged line of evidence, a forged row of cairn fleet) nor send an
// escape sequence to a terminal.
func Printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}
