package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
)

// TestApplyJournalIsPrivate: the steps that journal apply read (with
// --repair through readJournal, without straight) stay as they were read
// when the file is written in place meanwhile, for a journal large enough
// that journal diff maps it: a mapping would show the write, and the move
// would apply and record steps other than those it checked and hashed.
func TestApplyJournalIsPrivate(t *testing.T) {
	name := filepath.Join(t.TempDir(), "big.journal")
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20+4096; i++ {
		fmt.Fprintf(&b, "COPY src/f%07d /srv/f%07d sha256=%064x mode=0644\n", i, i, i)
	}
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &journalApplyCmd{File: name, Repair: true, RehashEvery: 20}
	read, err := c.readJournal()
	if err != nil || read.sum == "" {
		t.Fatalf("readJournal: %v, sum %q", err, read.sum)
	}
	data := read.data
	withRepair, err := loadJournalData(name, data)
	if err != nil {
		t.Fatal(err)
	}
	without, err := loadJournalData(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := stepsText(withRepair)

	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.ReplaceAll(b.Bytes(), []byte("sha256=0"), []byte("sha256=f")), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, b.Bytes()) {
		t.Error("the bytes readJournal read changed with the file")
	}
	for what, j := range map[string]*journal.Journal{"with --repair": withRepair, "without": without} {
		if got := stepsText(j); got != want || !strings.Contains(got, "sha256=0") {
			t.Errorf("%s: the steps changed with the file: %.60q...", what, got)
		}
	}
}

// stepsText is every step's canonical line, operands and attributes, as
// text of its own.
func stepsText(j *journal.Journal) string {
	var b strings.Builder
	for _, s := range j.Steps {
		fmt.Fprintf(&b, "%s %q %q %v\n", s.Canonical(), s.Op, s.Args, s.Attrs)
	}
	return b.String()
}
