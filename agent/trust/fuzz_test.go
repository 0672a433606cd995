package trust

import (
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary trust files (seeds in
// testdata/fuzz/FuzzParse). It must not panic; what it accepts as an
// allowed-signers file must have a key and principals on every line it
// keeps, and parse the same way twice.
func FuzzParse(f *testing.F) {
	f.Add([]byte("a@example.org " + edKey + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Parse("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if k.Kind() != KindSSH {
			return
		}
		for _, s := range k.signers {
			if s.key == nil || s.principals == "" || s.line < 1 {
				t.Fatalf("kept a line without key or principals: %+v", s)
			}
			if s.validAfter != 0 && s.validBefore != 0 && s.validBefore <= s.validAfter {
				t.Fatalf("kept an empty validity window: %+v", s)
			}
		}
		again, err := Parse("fuzz", data)
		if err != nil || len(again.signers) != len(k.signers) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}
