package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestEncodeAppliedIsMarshal checks encodeApplied, which writes the
// applied journal piece by piece, against json.Marshal of the same value:
// the bytes must be the same, for nil and empty lists, strings that need
// escaping (quotes, HTML, the text of the field names themselves, invalid
// UTF-8), keys that sort by bytes, and every kind of image.
func TestEncodeAppliedIsMarshal(t *testing.T) {
	tricky := []string{
		"", "/etc/motd", `"steps":null,"originals":null`, `a\`, "<&>", "é", "\xff\xfe", "\u2028", "path:/b", "path:/a", "path:/a/b", "user:ü",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return tricky[rng.IntN(len(tricky))] }
	randomImage := func() Image {
		switch rng.IntN(4) {
		case 0:
			return Image{Absent: true}
		case 1:
			return Image{Type: TypeFile, Mode: 0o644, Size: 12, Blob: pick(), Mtime: time.Unix(1700000000, 123).UTC(), Xattrs: map[string][]byte{"user.x": []byte(pick())}}
		case 2:
			return Image{Type: TypeSymlink, Target: pick(), Xattrs: map[string][]byte{}}
		}
		return Image{Type: "user", Data: json.RawMessage(`{"name": "` + "<x>" + `", "uid": 1000}`)}
	}
	cases := []*Applied{
		{Version: 1},
		{Version: 1, Steps: []AppliedStep{}, Originals: map[string]Image{}},
		{Version: 1, Generation: 3, Journal: `"steps":null,"originals":null`, Commit: pick(), Steps: []AppliedStep{{Step: "MKDIR /x", At: "j:1:1"}}},
		{Version: 1, Originals: map[string]Image{"path:/x": {Absent: true}}, Kept: []Kept{{Path: "/x", Sum: "ab", Time: time.Unix(5, 0).UTC(), Step: `COPY - /x sha256="`}}},
	}
	for n := range 40 {
		a := &Applied{Version: 1, Generation: int64(n), Time: time.Unix(int64(n)*1000, 0).UTC(), Journal: pick(), Branch: pick(), Group: pick(), Originals: map[string]Image{}}
		for i := range rng.IntN(30) {
			a.Steps = append(a.Steps, AppliedStep{Step: pick() + fmt.Sprint(i), At: pick(), Source: pick()})
			a.Originals[pick()+fmt.Sprint(i)] = randomImage()
		}
		if n%3 == 0 {
			a.Kept = append(a.Kept, Kept{Path: pick(), Sum: pick(), Generation: int64(n)})
		}
		cases = append(cases, a)
	}
	for i, a := range cases {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := encodeApplied(&got, a); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("case %d: encodeApplied wrote\n%s\njson.Marshal gives\n%s", i, got.Bytes(), want)
		}
	}
}

// TestEncodeAppliedWriteError checks that a writer's error is returned.
func TestEncodeAppliedWriteError(t *testing.T) {
	a := &Applied{Version: 1, Steps: []AppliedStep{{Step: "MKDIR /x"}}, Originals: map[string]Image{"path:/x": {Absent: true}}}
	boom := errors.New("boom")
	if err := encodeApplied(failingWriter{boom}, a); !errors.Is(err, boom) {
		t.Fatalf("encodeApplied to a failing writer: %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// TestEncodeAppliedAllocs bounds what encoding the applied journal
// allocates: no copy of each value's JSON (json.Marshal made one a value,
// and a buffer the size of the whole file), only the copy of an image's
// mtime that encoding/json makes to check its omitzero.
func TestEncodeAppliedAllocs(t *testing.T) {
	const n = 1000
	a := &Applied{Version: 1, Originals: make(map[string]Image, n)}
	for i := range n {
		a.Steps = append(a.Steps, AppliedStep{Step: fmt.Sprintf("COPY f%d /dst/f%d sha256=00", i, i), At: "j:1:1"})
		a.Originals[fmt.Sprintf("path:/dst/f%d", i)] = Image{Absent: true}
	}
	var buf bytes.Buffer
	if err := encodeApplied(&buf, a); err != nil {
		t.Fatal(err)
	}
	size := buf.Len()
	buf.Grow(size)
	allocs := testing.AllocsPerRun(5, func() {
		buf.Reset()
		encodeApplied(&buf, a)
	})
	t.Logf("%.0f allocations for %d steps and %d originals (%d bytes)", allocs, n, n, size)
	if allocs > 1.2*n+50 {
		t.Fatalf("encodeApplied allocates %.0f times for %d steps and %d originals, want at most %d", allocs, n, n, int(1.2*n+50))
	}
}

// TestAppliedStepFields: appendAppliedStep writes AppliedStep's fields by
// hand, so a field added to the struct must be added there too.
func TestAppliedStepFields(t *testing.T) {
	want := []string{"step", "at", "src,omitempty"}
	if got := jsonTags(reflect.TypeFor[AppliedStep]()); !slices.Equal(got, want) {
		t.Errorf("AppliedStep's fields are %q, appendAppliedStep writes %q: write the new ones there too", got, want)
	}
}
