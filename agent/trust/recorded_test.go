package trust

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestRecordedCommits replays commits the corpus test recorded (go test
// -run TestCorpusAgreesWithGit -record) with the verdict git gave them; it
// needs no git, gpg or ssh-keygen. OpenPGP verdicts hold as long as no key
// in them expires, and none of the trusted ones does.
func TestRecordedCommits(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "commits", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("%d recorded commits, want at least 20", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			content := map[string][]byte{}
			for _, f := range a.Files {
				content[f.Name] = f.Data
			}
			keys, err := Parse(file, content["trust"])
			if err != nil {
				t.Fatal(err)
			}
			obj := &plumbing.MemoryObject{}
			obj.SetType(plumbing.CommitObject)
			if _, err := obj.Write(content["commit"]); err != nil {
				t.Fatal(err)
			}
			c := &object.Commit{}
			if err := c.Decode(obj); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSpace(string(a.Comment))
			_, err = keys.VerifyCommit(c)
			got := "trusted"
			var refusal *Refusal
			if errors.As(err, &refusal) {
				got = string(refusal.Reason)
			} else if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("VerifyCommit: %s (%v), git said %s", got, err, want)
			}
		})
	}
}
