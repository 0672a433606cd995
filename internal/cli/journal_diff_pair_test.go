package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJournalDiffPairMatchesFull checks `journal diff` (default, --plan,
// --json) through planPair, which maps files of 1 MiB or more and drops
// their pages as PlanPair goes, against the full load and MakePlan, on
// large journals with repeated, respelled, commented and moved lines.
func TestJournalDiffPairMatchesFull(t *testing.T) {
	if testing.Short() {
		t.Skip("large journals")
	}
	texts := []string{
		"CHECK file /a", "CHECK  file /a", "CHECK file /a timeout=30s",
		"MKDIR /a", "MKDIR /a mode=0755", "MKDIR /a mode=700", "MKDIR /a owner=u group=g", "MKDIR /a group=g owner=u",
		"EXEC true", "EXEC \"true\"", "EXEC true # c", "SYSTEMD-RELOAD",
		"USERADD u uid=1000", "USERADD u uid=01000", "USERADD u uid=1001", "MKDIR /o owner=u",
	}
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := 120000
		line := func() string {
			switch rng.IntN(30) {
			case 0:
				return "# comment"
			case 1:
				return ""
			case 2:
				return texts[rng.IntN(len(texts))]
			}
			return fmt.Sprintf("MKDIR /srv/d/%d # site.cairn:%d:1", rng.IntN(n), rng.IntN(n))
		}
		old := make([]string, n)
		for i := range old {
			old[i] = line()
		}
		new := append([]string(nil), old...)
		for range 200 {
			i := rng.IntN(len(new) - 50)
			switch rng.IntN(4) {
			case 0:
				j := i + 30 + rng.IntN(5)
				new[i], new[j] = new[j], new[i]
			case 1:
				new[i] = line()
			case 2:
				new = append(new[:i:i], new[i+1:]...)
			case 3:
				new = append(new[:i:i], append([]string{line()}, new[i:]...)...)
			}
		}
		dir := t.TempDir()
		oldName, newName := filepath.Join(dir, "old.journal"), filepath.Join(dir, "new.journal")
		for name, lines := range map[string][]string{oldName: old, newName: new} {
			if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p, ok := planPair(oldName, newName)
		if !ok {
			t.Fatal("planPair declined")
		}
		oldJ, err := loadJournal(oldName)
		if err != nil {
			t.Fatal(err)
		}
		newJ, err := loadJournal(newName)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []journalDiffCmd{{}, {Plan: true}, {JSON: true}} {
			var got, want bytes.Buffer
			_ = c.printPlan(&env{stdout: &got}, oldName, newName, p)
			_ = c.print(&env{stdout: &want}, oldName, newName, oldJ.Steps, newJ.Steps)
			if got.String() != want.String() {
				t.Errorf("seed %d, plan %v, json %v: output through planPair differs from the full load", seed, c.Plan, c.JSON)
			}
			if got.Len() < 100 {
				t.Errorf("seed %d: output too short: %q", seed, got.String())
			}
		}
	}
}
