package steps

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-cm/cairn/journal"
)

// TestImageOfWhatIsThereWhenTaken holds an undo image to the object as it
// is when the image is taken (spec §6: "the object's state just before that
// op"; docs/state.md: images are taken one by one as the batch is formed).
// Another process makes a directory the batch's first image found missing,
// and a file in it, before the image of that file is taken: the image must
// keep the file, so that the undo of the COPY that overwrites it gives it
// back. An image that took the first one's finding ("absent") as it was,
// without asking whether the directory is missing still (view.missing),
// lets the COPY replace the file and the undo remove it: the other
// process's file would be gone.
func TestImageOfWhatIsThereWhenTaken(t *testing.T) {
	env, dir, sum := placeEnv(t)
	v := newView()
	step := func(p string) journal.Step {
		t.Helper()
		return *mustStep(t, "COPY - "+p+" sha256="+sum)
	}
	first := step("/data/new/x")
	if _, err := captureIn(env, &first, v); err != nil {
		t.Fatal(err)
	}
	// Another process, between the two images.
	if err := os.Mkdir(filepath.Join(dir, "data/new"), 0o755); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "data/new/y")
	if err := os.WriteFile(theirs, []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := step("/data/new/y")
	img, err := captureIn(env, &s, v)
	if err != nil {
		t.Fatal(err)
	}
	if img.Absent {
		t.Errorf("the image of /data/new/y, taken while it held a file, says it is absent")
	}
	// The batch runs: the COPY, then (the move fails) its undo.
	k := LookupKind(s.Op).(pathKind)
	if err := runPlaced(context.Background(), env, k, &s, journal.Forward, &img, Image{Absent: true}); err != nil {
		t.Fatalf("the COPY: %v", err)
	}
	if err := restorePlaced(env, s.Object(), img, newUndoPass(false)); err != nil {
		t.Fatalf("the undo: %v", err)
	}
	if got, err := os.ReadFile(theirs); err != nil || string(got) != "theirs\n" {
		t.Errorf("after the undo /data/new/y holds %q, %v; want the file that was there when its image was taken", got, err)
	}
}
