package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPutFileMissingBlobAsBefore holds putFile's error for content the
// blob store does not hold: the store's own error, as Open gives it, with
// no temporary file made for nothing (the blob is opened before the file
// is made; opened after it, the error was "write P: ..." once a temporary
// file was made and removed). It is what an op or an undo reports when its
// blob is gone (forgotten as corrupt by an earlier read, say).
func TestPutFileMissingBlobAsBefore(t *testing.T) {
	env, dir, _ := placeEnv(t)
	const gone = "1111111111111111111111111111111111111111111111111111111111111111"
	_, want := env.Blobs.Open(gone)
	if want == nil {
		t.Fatal("the store holds a blob it was never given")
	}
	for _, tc := range []struct {
		name      string
		wasAbsent bool
		p         string
	}{
		{"overwrite", false, "/victim/f"},
		{"new file", true, "/victim/new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := locate(env, tc.p, "write")
			if err != nil {
				t.Fatal(err)
			}
			defer l.close()
			l.wasAbsent = tc.wasAbsent
			err = putFile(env, &l, Image{Type: TypeFile, Blob: gone, Mode: 0o644})
			if err == nil || err.Error() != want.Error() {
				t.Errorf("putFile with a blob not in the store: %v\nwant the store's error as before: %v", err, want)
			}
			entries, _ := os.ReadDir(filepath.Join(dir, "victim"))
			for _, e := range entries {
				if strings.Contains(e.Name(), "cairn-tmp") || e.Name() == "new" {
					t.Errorf("%s left in /victim", e.Name())
				}
			}
		})
	}
}
