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

// String renders the value in the language's syntax, for messages.
func (v Value) String() string {
	switch v.Kind {
	case KindString:
		return strconv.Quote(v.Str)
	case KindNumber:
		return v.Str
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindList:
		parts := make([]string, len(v.List))
		for i, x := range v.List {
			parts[i] = x.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case KindObject:
		parts := make([]string, len(v.Keys))
		for i, k := range v.Keys {
			parts[i] = fmt.Sprintf("%s = %s", k, v.Fields[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return "null"
}
