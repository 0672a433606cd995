package journal

import (
	"bytes"
	"testing"
)

// FuzzParse checks that the parser never panics and that the canonical form
// is a fixed point: parse → print → parse gives the same steps, and
// printing again gives the same bytes.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"MKDIR /srv mode=0750 owner=www\n",
		"COPY files/motd /etc/motd sha256=" + hexA + " # site.cairn:1:1\n",
		`EXEC "echo \"hi\" > /tmp/x" undo="rm -f /tmp/x" creates=/tmp/x` + "\n",
		"SYMLINK ../a#b \"/srv/my dir\"\nRM /x\n",
		"CHECK http http://127.0.0.1:8080/healthz timeout=1m30s interval=500ms\n",
		"USERADD deploy uid=1001 groups=adm,www-data home=/home/deploy\n",
		"INCLUDE sub/web.journal\n\n# comment\n\tRM /y\r\n",
		"MKDIR \"/a\\u00a0b\"\nMKDIR /café\n",
		"SYMLINK .\t/d/b\nMKDIR  /x\nRM /y\t# c\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Parse("fuzz", data)
		if err != nil {
			if len(Findings(err)) == 0 {
				t.Fatalf("error without findings: %v", err)
			}
			for _, e := range Findings(err) {
				if e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("finding without a position: %v", e)
				}
			}
			return
		}
		for i := range j.Steps {
			s := &j.Steps[i]
			if fresh := string(s.appendCanonical(nil)); s.Canonical() != fresh {
				t.Fatalf("cached canonical form %q differs from %q", s.Canonical(), fresh)
			}
		}
		out := j.Format()
		j2, err := Parse("canonical", out)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, out)
		}
		if len(j2.Steps) != len(j.Steps) {
			t.Fatalf("step count %d != %d", len(j2.Steps), len(j.Steps))
		}
		for i := range j.Steps {
			if j.Steps[i].Identity() != j2.Steps[i].Identity() {
				t.Fatalf("identity changed: %q vs %q", j.Steps[i].Identity(), j2.Steps[i].Identity())
			}
		}
		if out2 := j2.Format(); !bytes.Equal(out, out2) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", out, out2)
		}
	})
}
