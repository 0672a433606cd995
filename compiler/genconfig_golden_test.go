package compiler_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-cm/cairn/bench/genconfig/gencfg"
	"github.com/cairn-cm/cairn/compiler"
)

// genconfigGolden are the sha256 sums of the journals that bench/genconfig's
// repositories compile to (for gencfg.Host, with benchOptions' facts), taken
// before the compiler's speed and memory work of issue 12: an optimisation
// of the compiler must leave every byte of the journal as it was. A change
// that means to change the journal updates them, and says why.
var genconfigGolden = []struct {
	n   int
	sum string
}{
	{1000, "98e66d2b523696a8399b0ff5263536f3f868590a509938b19d7825562fa35484"},
	{10000, "691ddaf7fdadb37a0b89a36106755f684d4978284b158d73ecab7e61af07c735"},
}

// TestGenconfigJournalGolden compiles bench/genconfig's 1k and 10k
// repositories (10k is left out with -short) and compares the journal's
// sha256 with the golden sum; WriteJournal, which `cairn compile` prints
// with, must write the same bytes.
func TestGenconfigJournalGolden(t *testing.T) {
	for _, g := range genconfigGolden {
		if testing.Short() && g.n > 1000 {
			continue
		}
		dir := t.TempDir()
		st, err := gencfg.Generate(dir, gencfg.Params{Resources: g.n, Dirs: g.n / 20, Modules: 20})
		if err != nil {
			t.Fatal(err)
		}
		res, err := compiler.Compile(context.Background(), os.DirFS(dir), benchOptions(dir))
		if err != nil {
			t.Fatalf("compile of %d resources: %v", g.n, err)
		}
		if len(res.Steps) != st.Steps {
			t.Fatalf("compile of %d resources: %d steps, the generator expects %d", g.n, len(res.Steps), st.Steps)
		}
		text := res.Journal()
		sum := sha256.Sum256(text)
		if got := hex.EncodeToString(sum[:]); got != g.sum {
			bad := filepath.Join(t.TempDir(), "journal")
			_ = os.WriteFile(bad, text, 0o644)
			t.Errorf("journal of %d resources: sha256 %s, want %s (the journal is in %s)", g.n, got, g.sum, bad)
		}
		var streamed bytes.Buffer
		if err := res.WriteJournal(&streamed); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(streamed.Bytes(), text) {
			t.Errorf("journal of %d resources: WriteJournal wrote %d bytes that differ from Journal's %d", g.n, streamed.Len(), len(text))
		}
	}
}
