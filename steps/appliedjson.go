package steps

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Reading applied.json fast. Its steps are four fifths of the file (10,000
// steps: 1.8 MB of 2.2), and encoding/json decodes them at some 30 MB/s:
// on a run with nothing to do, that was the largest cost left. cairn writes
// the file with json.Marshal, compact and in field order, and a step's
// strings (canonical line, position, sources) need no escape as a rule
// but json.Marshal's for HTML (the " > " of every source position):
// decodeApplied reads the steps of exactly that form itself, and hands
// the rest of the object, without them, to encoding/json. Anything else
// (another escape, white space, another key order, a key that encoding/json
// would match to the steps without case) makes it decode the whole file
// with encoding/json, as before: the fast path accepts only input that
// encoding/json reads to the same value (FuzzDecodeApplied).

// decodeApplied decodes applied.json into disk.
func decodeApplied(data []byte, disk *appliedOnDisk) error {
	if fastApplied(data, disk) {
		return nil
	}
	*disk = appliedOnDisk{}
	return json.Unmarshal(data, disk)
}

// fastApplied is decodeApplied's fast path; false means "not of the form
// it reads" (disk is then undefined), never "corrupt".
func fastApplied(data []byte, disk *appliedOnDisk) bool {
	const key = `"steps":`
	b := data
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	// Walk the members of the top-level object, each "KEY":VALUE without
	// white space, to the steps; the others go to encoding/json.
	rest := make([]byte, 0, 512)
	rest = append(rest, '{')
	i := 1
	var steps []AppliedStep
	found := false
	for i < len(b)-1 {
		name, _, ok := plainString(b, i)
		if !ok || i+len(name)+2 >= len(b) || b[i+len(name)+2] != ':' {
			return false // an escaped key, or no colon after it
		}
		if name == "steps" {
			if found {
				return false
			}
			s, n, ok := fastSteps(b[i+len(key):])
			if !ok {
				return false
			}
			steps, found = s, true
			i += len(key) + n
		} else {
			if strings.EqualFold(name, "steps") {
				return false // encoding/json would read it as the steps
			}
			end, ok := skipMember(b, i)
			if !ok {
				return false
			}
			if len(rest) > 1 {
				rest = append(rest, ',')
			}
			rest = append(rest, b[i:end]...)
			i = end
		}
		switch {
		case i == len(b)-1:
		case b[i] == ',' && i+1 < len(b)-1:
			i++
		default:
			return false
		}
	}
	if !found {
		return false
	}
	rest = append(rest, '}')
	*disk = appliedOnDisk{}
	if err := json.Unmarshal(rest, disk); err != nil || disk.Steps != nil {
		return false
	}
	if steps == nil {
		steps = []AppliedStep{}
	}
	disk.Steps = steps
	return true
}

// skipMember returns the end of the member "KEY":VALUE of the object at
// b[i:]: the next comma or closing brace outside strings and nested
// values. It only finds the end; encoding/json checks the member.
func skipMember(b []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return 0, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, c == '}'
			}
			depth--
		case ',':
			if depth == 0 {
				return i, true
			}
		}
	}
	return 0, false
}

// fastSteps reads [{"step":S,"at":S[,"src":S]},...] from the start of b
// and returns the steps and the bytes read; S is a string without control
// character or invalid UTF-8 whose only escapes are the three json.Marshal
// writes for HTML (\u003c, \u003e, \u0026: every step with a source
// position has " > " in it). The steps' strings share one string that
// holds only their contents, copied out of b (b is not kept alive), and a
// position that ends its source is kept as the source's tail: one
// allocation of what the steps keep, not three a step, for the process to
// keep between runs (lastApplied).
func fastSteps(b []byte) ([]AppliedStep, int, bool) {
	if len(b) < 2 || b[0] != '[' {
		return nil, 0, false
	}
	if b[1] == ']' {
		return nil, 2, true
	}
	if len(b) > 1<<31-1 {
		return nil, 0, false
	}
	type span struct{ step, at, src [2]int32 }
	spans := make([]span, 0, bytes.Count(b, []byte(`{"step":`)))
	buf := make([]byte, 0, len(b))
	field := func(i int, prefix string) ([2]int32, int, bool) {
		if !bytes.HasPrefix(b[i:], []byte(prefix)) {
			return [2]int32{}, 0, false
		}
		start := len(buf)
		var j int
		var ok bool
		buf, j, ok = appendString(buf, b, i+len(prefix))
		return [2]int32{int32(start), int32(len(buf))}, j, ok
	}
	i := 1
	for {
		var sp span
		var ok bool
		if sp.step, i, ok = field(i, `{"step":`); !ok {
			return nil, 0, false
		}
		if sp.at, i, ok = field(i, `,"at":`); !ok {
			return nil, 0, false
		}
		if bytes.HasPrefix(b[i:], []byte(`,"src":`)) {
			if sp.src, i, ok = field(i, `,"src":`); !ok {
				return nil, 0, false
			}
			// A source ends with the position (a step of a module:
			// "SITE > MODULE"), or is it: the position is kept as the
			// source's tail, not twice.
			at, src := sp.at, sp.src
			if bytes.HasSuffix(buf[src[0]:src[1]], buf[at[0]:at[1]]) {
				n := copy(buf[at[0]:], buf[src[0]:src[1]])
				buf = buf[:at[0]+int32(n)]
				sp.src = [2]int32{at[0], at[0] + int32(n)}
				sp.at = [2]int32{sp.src[1] - (at[1] - at[0]), sp.src[1]}
			}
		}
		if i+1 >= len(b) || b[i] != '}' {
			return nil, 0, false
		}
		spans = append(spans, sp)
		i++
		if b[i] == ']' {
			i++
			break
		}
		if b[i] != ',' {
			return nil, 0, false
		}
		i++
	}
	text := string(buf) // the contents alone, at their size
	out := make([]AppliedStep, len(spans))
	for k, sp := range spans {
		out[k] = AppliedStep{Step: text[sp.step[0]:sp.step[1]], At: text[sp.at[0]:sp.at[1]], Source: text[sp.src[0]:sp.src[1]]}
	}
	return out, i, true
}

// htmlEscapes are the escapes json.Marshal writes for <, > and &, and
// what they stand for.
var htmlEscapes = [...]struct {
	esc string
	c   byte
}{{`\u003c`, '<'}, {`\u003e`, '>'}, {`\u0026`, '&'}}

// appendString appends the contents of the JSON string at b[i:] to buf if
// it holds no control character, only valid UTF-8 (encoding/json would
// change invalid bytes) and no escape but htmlEscapes, and returns the
// index after it.
func appendString(buf, b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return buf, 0, false
	}
	start := len(buf)
	ascii := true
	run := i + 1 // the bytes not yet appended
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c >= utf8.RuneSelf {
				ascii = false
			}
			continue
		}
		buf = append(buf, b[run:j]...)
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(buf[start:]) {
				return buf, 0, false
			}
			return buf, j + 1, true
		case c == '\\':
			k := 0
			for k < len(htmlEscapes) && !bytes.HasPrefix(b[j:], []byte(htmlEscapes[k].esc)) {
				k++
			}
			if k == len(htmlEscapes) {
				return buf, 0, false
			}
			buf = append(buf, htmlEscapes[k].c)
			j += len(htmlEscapes[k].esc) - 1
			run = j + 1
		default:
			return buf, 0, false // a control character
		}
	}
	return buf, 0, false
}

// plainString reads the JSON string at b[i:] if it holds no escape, no
// control character and only valid UTF-8 (encoding/json would change
// invalid bytes), and returns its content and the index after it. The
// string is not copied: it lives as long as b is not changed.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[start:j]
			if !ascii && !utf8.Valid(s) {
				return "", 0, false
			}
			return unsafe.String(unsafe.SliceData(s), len(s)), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", 0, false
}
