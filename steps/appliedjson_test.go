package steps

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// decodeBoth decodes data with decodeApplied and with encoding/json alone,
// and fails t unless they agree: the same error or none, the same value.
func decodeBoth(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	var got, want appliedOnDisk
	gotErr := decodeApplied(data, &got)
	wantErr := json.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("decodeApplied(%q): error %v; encoding/json: %v", data, gotErr, wantErr)
	}
	if wantErr != nil {
		return false
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeApplied(%q) =\n%#v\nencoding/json:\n%#v", data, got, want)
	}
	var probe appliedOnDisk
	return fastApplied(data, &probe)
}

// appliedSamples are applied.json files as cairn writes them, and edited.
func appliedSamples(t testing.TB) [][]byte {
	a := Applied{
		Version: 1, Generation: 7, Time: time.Date(2026, 12, 3, 1, 2, 3, 4, time.UTC),
		Journal: "/etc/cairn/host.journal", Commit: "abc", Branch: "main", Group: "web",
		Steps: []AppliedStep{
			{Step: "MKDIR /srv", At: "j:1:1"},
			{Step: `COPY - /srv/a sha256=` + "00", At: "j:2:1", Source: "m.cairn:3:5"},
			{Step: "EXEC 'echo \"hi\"' undo=true", At: "j:3:1"}, // quotes: escaped in JSON
			{Step: "MKDIR /srv/é", At: "j:4:1"},
			{Step: "MKDIR /srv/<&>", At: "j:5:1"}, // HTML characters: escaped by json.Marshal
		},
		Originals: map[string]Image{"path:/srv": {Type: TypeDir, Mode: 0o755}},
		Kept:      []Kept{{Path: "/srv/a", Sum: "00"}},
	}
	var out [][]byte
	add := func(a Applied) {
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	add(a)
	plain := a
	plain.Steps = []AppliedStep{a.Steps[0], a.Steps[1], a.Steps[3]}
	add(plain)
	html := a // json.Marshal's HTML escapes, in every source position
	html.Steps = []AppliedStep{a.Steps[0], a.Steps[4],
		{Step: "MKDIR /srv/m", At: "m.cairn:1:1", Source: "site.cairn:4:1 > m.cairn:1:1"},
		{Step: "MKDIR /srv/n", At: "j:6:1", Source: "j:6:1"}}
	add(html)
	empty := a
	empty.Steps = []AppliedStep{}
	add(empty)
	empty.Steps = nil // "steps":null
	add(empty)
	for _, s := range []string{
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}],"originals":{}}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}],"STEPS":[{"step":"MKDIR /b","at":"j:1:1"}]}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}],"ſteps":null}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}],"st\u0065ps":null}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}],"steps":[]}`,
		`{"version":1,"steps":[{"at":"j:1:1","step":"MKDIR /a"}]}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1","src":""}]}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"},]}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}],}`,
		`{"version":1,,"steps":[]}`,
		`{"version":1,"steps":[{"step":"MKDIR /a","at":"j:1:1"}]}}`,
		`{"version":1 ,"steps":[]}`,
		`{"version":"1","steps":[]}`,
		`{"version":1,"journal":"a\"b,\"steps\":[]","steps":[]}`,
		`{"version":1,"journal":"a\"b,\"steps\":[]"}`,
		`{"version":1,"steps":[{"step":"MKDIR /\xff","at":"j:1:1"}]}`,
		`{"version":1,"steps":[{"step":"MKDIR /a` + "\t" + `","at":"j:1:1"}]}`,
		`{"version":1,"originals":{"a":[1,{"b":"}"}]},"steps":[]}`,
		`{"version":1,"originals":{"a":[1,{"b":"}"}],"steps":[]}`,
		`{"version":1,"originals":{"a":[1}]},"steps":[]}`,
		`{"steps":[{"step":"x","at":"y"}]}`,
		`{"steps":[{"step":"x","at":"y"}`,
		`{"steps":[{"step":"x","at":"y"}]`,
		`{"steps":[{"step":"x","at":"y","src":"z","x":1}]}`,
		`{"steps":[{"step":"a\u003Eb","at":"y"}]}`,
		`{"steps":[{"step":"a\u003db","at":"y"}]}`,
		`{"steps":[{"step":"a\u003","at":"y"}]}`,
		`{"steps":[{"step":"a\u003`,
		`{"steps":[{"step":"x\u0026","at":"y\u003c","src":"y\u003c"}]}`,
		`{"steps":[{"step":"x","at":"y","src":"y"}]}`,
		// The source-tail sharing: an empty position, a position longer
		// than its source, one that only begins it, escapes at the seams.
		`{"steps":[{"step":"x","at":"","src":"s \u003e t"},{"step":"y","at":"t","src":""}]}`,
		`{"steps":[{"step":"x","at":"a \u003e b","src":"b"},{"step":"y","at":"b","src":"b \u003e c"}]}`,
		`{"steps":[{"step":"\u003c\u0026","at":"\u0026","src":"\u0026\u0026"},{"step":"z","at":"j:1:1","src":"s:2:1 \u003e j:1:1"}]}`,
		`{"steps":[{"step":"x","at":"é","src":"a \u003e é"},{"step":"y","at":"\u00e9","src":"é"}]}`,
		`{"steps":[{"step":"x","at":"y","src":"a \u003e y"}],"Originals":{},"originals":null,"version":1,"version":2}`,
		`{"steps":[{"step":"x","at":"y","src":"a \u003e y"}],"\u0073teps":[]}`,
		`{}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// TestDecodeApplied: the fast path reads what cairn writes, and gives up
// on everything else, agreeing with encoding/json in both cases.
func TestDecodeApplied(t *testing.T) {
	samples := appliedSamples(t)
	for i, data := range samples {
		fast := decodeBoth(t, data)
		if (i == 1 || i == 2) && !fast {
			t.Errorf("the fast path gave up on what json.Marshal writes: %s", data)
		}
	}
}

// FuzzDecodeApplied: whatever the input, decodeApplied agrees with
// encoding/json.
func FuzzDecodeApplied(f *testing.F) {
	for _, data := range appliedSamples(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, data)
	})
}
