package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// kindsPending are the journal ops whose behaviour comes with the Debian
// and systemd drivers (issue 4); the applier refuses them with a clear
// error until then.
var kindsPending = []string{
	journal.OpInclude,
}

func TestKindTableMatchesJournal(t *testing.T) {
	if !slices.IsSortedFunc(kinds, func(a, b Kind) int { return strings.Compare(a.Op(), b.Op()) }) {
		t.Error("the table of kinds is not sorted by op")
	}
	for _, k := range kinds {
		if journal.Lookup(k.Op()) == nil {
			t.Errorf("kind %s has no row in journal's table of signatures", k.Op())
		}
	}
	for _, sig := range journal.Signatures() {
		if LookupKind(sig.Op) == nil && !slices.Contains(kindsPending, sig.Op) {
			t.Errorf("journal op %s has no kind in steps", sig.Op)
		}
		if LookupKind(sig.Op) != nil && slices.Contains(kindsPending, sig.Op) {
			t.Errorf("journal op %s has a kind now: drop it from kindsPending", sig.Op)
		}
	}
}

// TestKindsDocumented checks that every kind's type has a doc comment with
// the sections of the step contract.
func TestKindsDocumented(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					docs[s.(*ast.TypeSpec).Name.Name] = g.Doc.Text()
				}
			}
		}
	}
	for _, k := range kinds {
		name := strings.TrimPrefix(fmt.Sprintf("%T", k), "steps.")
		doc := docs[name]
		for _, section := range []string{"Syntax: " + k.Op(), "Forward:", "Inverse:", "Check:", "Example: " + k.Op()} {
			if !strings.Contains(doc, section) {
				t.Errorf("kind %s (%s): doc comment lacks %q", k.Op(), name, section)
			}
		}
	}
}

// TestPathKindsContract checks, for every path kind, that the check holds
// after forward, and that after the inverse the check says what it said
// before, over several starting states.
func TestPathKindsContract(t *testing.T) {
	content := []byte("hello\n")
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])
	lines := []string{
		"MKDIR /obj mode=0750",
		"COPY files/f /obj mode=0600 sha256=" + hash,
		"SYMLINK ../target /obj",
		"RM /obj",
	}
	starts := map[string]func(dir string) error{
		"absent": func(string) error { return nil },
		"file":   func(dir string) error { return os.WriteFile(filepath.Join(dir, "obj"), []byte("old"), 0o640) },
		"dir":    func(dir string) error { return os.Mkdir(filepath.Join(dir, "obj"), 0o711) },
		"link":   func(dir string) error { return os.Symlink("/elsewhere", filepath.Join(dir, "obj")) },
	}
	ctx := context.Background()
	for _, line := range lines {
		for startName, start := range starts {
			t.Run(strings.Fields(line)[0]+"/"+startName, func(t *testing.T) {
				dir := t.TempDir()
				if err := start(dir); err != nil {
					t.Fatal(err)
				}
				root, err := rootfs.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				blobs, err := OpenBlobs(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := blobs.Put(strings.NewReader(string(content)), hash); err != nil {
					t.Fatal(err)
				}
				env := &Env{Root: root, Blobs: blobs}
				s, err := journal.ParseStep(journal.Pos{File: "t", Line: 1, Col: 1}, line)
				if err != nil {
					t.Fatal(err)
				}
				kind := LookupKind(s.Op)
				before, err := kind.(Checker).Check(ctx, env, &s)
				if err != nil {
					t.Fatal(err)
				}
				img, err := kind.(Imager).Capture(ctx, env, &s)
				if err != nil {
					t.Fatal(err)
				}
				if err := kind.Forward(ctx, env, &s); err != nil {
					t.Fatalf("forward: %v", err)
				}
				if d, err := kind.(Checker).Check(ctx, env, &s); err != nil || d != "" {
					t.Fatalf("check after forward: %q, %v", d, err)
				}
				if err := kind.Forward(ctx, env, &s); err != nil {
					t.Fatalf("forward is not idempotent: %v", err)
				}
				if err := kind.(Imager).Restore(ctx, env, &s, img); err != nil {
					t.Fatalf("inverse: %v", err)
				}
				after, err := kind.(Checker).Check(ctx, env, &s)
				if err != nil {
					t.Fatal(err)
				}
				if after != before {
					t.Errorf("check after inverse = %q, before forward = %q", after, before)
				}
			})
		}
	}
}
