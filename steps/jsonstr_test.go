package steps

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendJSONString holds appendJSONString to json.Marshal's bytes for
// any string: the intent log's records must be what json.Marshal writes.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{
		"", "plain /etc/motd", `q"b\s`, "<&>", "\n\r\t\b\f\x00\x1f\x7f", "é ü 日本", "\xff\xfe", "a\xc3", "\u2028\u2029",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "COPY \"a b\" \"/etc/<x>&\\\"y\\\"\" sha256=00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}
