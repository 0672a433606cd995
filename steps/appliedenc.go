package steps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// appliedLists is where json.Marshal puts an Applied's two long fields when
// both are nil: encodeApplied writes them there element by element.
var appliedLists = []byte(`"steps":null,"originals":null`)

// The bytes between encodeApplied's values, made once: a slice passed to
// an io.Writer escapes.
var (
	comma = []byte{','}
	colon = []byte{':'}
	// absentJSON is json.Marshal of the image of an absent object.
	absentJSON = []byte(`{"absent":true}`)
)

// encodeApplied writes the JSON of a, the same bytes as json.Marshal(a),
// one step and one original image at a time: the state of a large journal
// (some 2 MB for 10,000 files) is never held whole in memory, at the end
// of a move, when the move's images are still there too. The images of
// an Applied that holds them encoded (read from the state directory, or
// committed: Applied.lazy) are written as they are, or, once decoded, as
// json.Marshal writes the map of them.
//
// The fields around the two lists are encoded by json.Marshal of a copy
// without them; in its output the text `"steps":null,"originals":null`
// can only be those fields (a quote inside a string is escaped), and it is
// replaced by the lists. A map's keys are sorted as json.Marshal sorts
// them, by their bytes.
func encodeApplied(w io.Writer, a *Applied) error {
	head := *a
	head.Steps, head.Originals, head.lazy = nil, nil, nil
	data, err := json.Marshal(&head)
	if err != nil {
		return err
	}
	before, after, ok := bytes.Cut(data, appliedLists)
	if !ok || bytes.Contains(after, appliedLists) {
		return fmt.Errorf("state: encoding the applied journal: no place for its steps in %.80q", data)
	}
	ew := &errWriter{w: w}
	ew.write(before)
	ew.write([]byte(`"steps":`))
	if a.Steps == nil {
		ew.write([]byte("null"))
	} else {
		ew.write([]byte{'['})
		var buf []byte
		for i := range a.Steps {
			if i > 0 {
				ew.write(comma)
			}
			buf = appendAppliedStep(buf[:0], &a.Steps[i])
			ew.write(buf)
		}
		ew.write([]byte{']'})
	}
	ew.write([]byte(`,"originals":`))
	images, raw := a.Originals, json.RawMessage(nil)
	if l := a.lazy; l != nil {
		l.mu.Lock()
		images, raw = l.m, l.raw
		l.mu.Unlock()
	}
	switch {
	case raw != nil:
		ew.write(raw)
	case images == nil:
		ew.write([]byte("null"))
	default:
		ids := make([]string, 0, len(images))
		for id := range images {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		ew.originals(len(ids), func(i int) (string, Image) { return ids[i], images[ids[i]] })
	}
	ew.write(after)
	return ew.err
}

// appendAppliedStep appends the JSON of s as json.Marshal writes it,
// without the reflection (a cold apply's 10,000 steps, at its commit).
func appendAppliedStep(buf []byte, s *AppliedStep) []byte {
	buf = appendJSONString(append(buf, `{"step":`...), s.Step)
	buf = appendJSONString(append(buf, `,"at":`...), s.At)
	buf = appendStringField(buf, `,"src":`, s.Source)
	return append(buf, '}')
}

// originals writes the JSON object of n original images, the ith's
// identity and image those that original returns, as json.Marshal writes
// a map of them when the identities come sorted.
func (e *errWriter) originals(n int, original func(i int) (id string, img Image)) {
	e.write([]byte{'{'})
	for i := range n {
		if i > 0 {
			e.write(comma)
		}
		e.id, e.img = original(i)
		e.marshal(&e.id)
		e.write(colon)
		if e.img.absentOnly() && e.img.Place == nil {
			e.write(absentJSON) // a cold apply's every original
			continue
		}
		e.marshal(&e.img)
	}
	e.write([]byte{'}'})
	e.id, e.img = "", Image{}
}

// errWriter writes until the first error, which it keeps.
type errWriter struct {
	w   io.Writer
	err error
	enc *json.Encoder
	// id and img are the original being encoded: variables of their own,
	// which marshal's argument can point to without one made a value.
	id  string
	img Image
}

func (e *errWriter) write(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

// marshal writes the JSON of v, as json.Marshal encodes it, through one
// json.Encoder (whose buffer is reused from value to value, where
// json.Marshal returns a new copy of each).
func (e *errWriter) marshal(v any) {
	if e.err != nil {
		return
	}
	if e.enc == nil {
		e.enc = json.NewEncoder(valueWriter{e})
	}
	if err := e.enc.Encode(v); err != nil && e.err == nil {
		e.err = err
	}
}

// valueWriter writes what a json.Encoder writes, one value a call, without
// the newline that ends each.
type valueWriter struct{ e *errWriter }

// Write writes p to the errWriter, less its final newline.
func (v valueWriter) Write(p []byte) (int, error) {
	v.e.write(bytes.TrimSuffix(p, []byte{'\n'}))
	return len(p), v.e.err
}
