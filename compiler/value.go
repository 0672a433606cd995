package compiler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of values.
const (
	KindNull Kind = iota
	KindString
	KindNumber
	KindBool
	KindList
	KindObject
)

// String names the kind as messages do.
func (k Kind) String() string {
	return [...]string{"null", "string", "number", "bool", "list", "object"}[k]
}

// Value is the value of an expression.
type Value struct {
	Kind Kind
	// Str holds a string, or a number's text as written.
	Str  string
	Bool bool
	List []Value
	// Object's keys, sorted, and their values.
	Keys   []string
	Fields map[string]Value
	// size is a list's or object's weight (see weight), set by the
	// evaluator that builds it.
	size int
}

// weight is what walking the whole value costs: the bytes of its strings
// and numbers, and elemWeight for each list or object element, nested
// values counted in full however many lists share them. The evaluator
// keeps it at most MaxTextSize (limits.go).
func (v Value) weight() int {
	switch v.Kind {
	case KindList, KindObject:
		return v.size
	}
	return len(v.Str)
}

// Str makes a string value.
func Str(s string) Value { return Value{Kind: KindString, Str: s} }

// Bool makes a boolean value.
func Bool(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// Num makes a number value from its text.
func Num(text string) Value { return Value{Kind: KindNumber, Str: text} }

// Text returns the value as interpolation writes it: strings and numbers as
// they are, booleans as true or false; ok is false for lists and objects.
func (v Value) Text() (string, bool) {
	switch v.Kind {
	case KindString, KindNumber:
		return v.Str, true
	case KindBool:
		return strconv.FormatBool(v.Bool), true
	}
	return "", false
}

// Number returns the value as a number: a number, or a string holding one.
func (v Value) Number() (float64, bool) {
	if v.Kind != KindNumber && v.Kind != KindString {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Str, 64)
	return f, err == nil
}

// Equal reports whether two values are the same; a number equals a string
// of the same text.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		a, aok := v.Number()
		b, bok := w.Number()
		return aok && bok && a == b && (v.Kind == KindNumber || w.Kind == KindNumber)
	}
	switch v.Kind {
	case KindString:
		return v.Str == w.Str
	case KindNumber:
		a, _ := v.Number()
		b, _ := w.Number()
		return a == b
	case KindBool:
		return v.Bool == w.Bool
	case KindList:
		return slices.EqualFunc(v.List, w.List, Value.Equal)
	case KindObject:
		if !slices.Equal(v.Keys, w.Keys) {
			return false
		}
		for _, k := range v.Keys {
			if !v.Fields[k].Equal(w.Fields[k]) {
				return false
			}
		}
	}
	return true
}

// GoValue returns the value as plain Go data for text/template: string,
// float64 or int for numbers, bool, []any, map[string]any.
func (v Value) GoValue() any {
	switch v.Kind {
	case KindString:
		return v.Str
	case KindNumber:
		if n, err := strconv.ParseInt(v.Str, 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(v.Str, 64)
		return f
	case KindBool:
		return v.Bool
	case KindList:
		out := make([]any, len(v.List))
		for i, x := range v.List {
			out[i] = x.GoValue()
		}
		return out
	case KindObject:
		out := make(map[string]any, len(v.Keys))
		for _, k := range v.Keys {
			out[k] = v.Fields[k].GoValue()
		}
		return out
	}
	return nil
}

// maxShown is how much of a value String shows.
const maxShown = 200

// String renders the value in the language's syntax, for messages, cut
// after 200 bytes ("…" then stands for the rest).
func (v Value) String() string {
	var b strings.Builder
	v.write(&b)
	if b.Len() > maxShown {
		return strings.ToValidUTF8(b.String()[:maxShown], "") + "…"
	}
	return b.String()
}

// write renders the value into b, and stops once b holds more than
// maxShown bytes.
func (v Value) write(b *strings.Builder) {
	if b.Len() > maxShown {
		return
	}
	switch v.Kind {
	case KindString:
		s := v.Str
		if len(s) > maxShown {
			s = s[:maxShown+1] // enough to show that it is cut
		}
		b.WriteString(strconv.Quote(s))
	case KindNumber:
		b.WriteString(v.Str)
	case KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case KindList:
		b.WriteByte('[')
		for i, x := range v.List {
			if b.Len() > maxShown {
				return
			}
			if i > 0 {
				b.WriteString(", ")
			}
			x.write(b)
		}
		b.WriteByte(']')
	case KindObject:
		b.WriteString("{ ")
		for i, k := range v.Keys {
			if b.Len() > maxShown {
				return
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%s = ", k)
			v.Fields[k].write(b)
		}
		b.WriteString(" }")
	default:
		b.WriteString("null")
	}
}
