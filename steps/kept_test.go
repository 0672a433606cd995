package steps_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/steps"
)

// TestKeptHandEdits: a file that a COPY wrote and someone then edited by
// hand is kept in the state, with its content, before a move replaces or
// removes it (an inverse, an update, a drift repair); content that is not
// lost (never edited, or edited into what the move leaves anyway) is not,
// nor is anything after a move that fails and is undone.
func TestKeptHandEdits(t *testing.T) {
	const orig, a, b, edited = "original\n", "alpha\n", "bravo\n", "edited by hand\n"
	tests := []struct {
		name     string
		planted  bool     // /etc/x holds orig before cairn
		edit     string   // what the hand writes into /etc/x after the first apply ("" leaves it)
		next     []string // the second journal; "A" and "B" stand for COPY of a and b
		repair   bool
		fails    bool
		kept     string // the action that replaced a kept file, "" for none
		wantFile string // /etc/x after the second move, "-" absent
	}{
		{"inverse restores the original", true, edited, nil, false, false, "inverse", orig},
		{"inverse removes a file cairn made", false, edited, nil, false, false, "inverse", "-"},
		{"update to other content", true, edited, []string{"B"}, false, false, "update", b},
		{"update to other mode only", true, edited, []string{"A mode=0600"}, false, false, "update", a},
		{"update to RM", true, edited, []string{"RM /etc/x"}, false, false, "update", "-"},
		{"update to MKDIR", true, edited, []string{"MKDIR /etc/x"}, false, false, "update", "-"},
		{"drift repair", true, edited, []string{"A"}, true, false, "rerun", a},
		{"not edited", true, "", nil, false, false, "", orig},
		{"edited back to the original", true, orig, nil, false, false, "", orig},
		{"edited into the new content", true, b, []string{"B"}, false, false, "", b},
		{"a move that fails", true, edited, []string{"B", `EXEC "exit 3"`}, false, true, "", edited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newImgHost(t)
			x := filepath.Join(h.root, "etc/x")
			if tt.planted {
				if err := os.WriteFile(x, []byte(orig), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			line := map[string]string{
				"A": "COPY a /etc/x sha256=" + h.source(t, "a", []byte(a)),
				"B": "COPY b /etc/x sha256=" + h.source(t, "b", []byte(b)),
			}
			h.mustApply(t, line["A"])
			if tt.edit != "" {
				if err := os.WriteFile(x, []byte(tt.edit), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			var next []string
			for _, l := range tt.next {
				if first, rest, _ := strings.Cut(l, " "); line[first] != "" {
					l = strings.TrimSpace(line[first] + " " + rest)
				}
				next = append(next, l)
			}
			res, err := h.apply(t, tt.repair, next...)
			if (err != nil) != tt.fails {
				t.Fatalf("the second move: %v, want failure %v", err, tt.fails)
			}
			switch data, err := os.ReadFile(x); {
			case tt.wantFile == "-" && !os.IsNotExist(err) && !isDir(x):
				t.Errorf("/etc/x: %q %v, want it absent", data, err)
			case tt.wantFile != "-" && string(data) != tt.wantFile:
				t.Errorf("/etc/x holds %q (%v), want %q", data, err, tt.wantFile)
			}
			var got []steps.Kept
			if res != nil {
				got = res.Kept
			}
			a := h.open(t)
			if tt.kept == "" {
				if len(got) > 0 || len(a.Kept()) > 0 {
					t.Fatalf("kept %+v (state: %+v), want nothing", got, a.Kept())
				}
				if _, _, err := a.OpenKept("/etc/x", ""); err == nil || steps.ExitCode(err) != steps.ExitBadInput {
					t.Errorf("OpenKept with nothing kept: %v, want an input error", err)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the move kept %+v, want one file", got)
			}
			k := got[0]
			sum := h.source(t, "edited", []byte(edited))
			if k.Path != "/etc/x" || k.Sum != sum || k.Size != int64(len(edited)) || k.Mode != 0o644 || k.Action != tt.kept ||
				k.Why != steps.KeptEdited || k.Generation != 2 || k.Time.IsZero() || k.At != "site.journal:1:1" || !strings.HasPrefix(k.Step, "COPY a /etc/x ") {
				t.Errorf("kept %+v", k)
			}
			if st := a.Kept(); len(st) != 1 || st[0] != k {
				t.Errorf("the state keeps %+v, want %+v", st, k)
			}
			for _, prefix := range []string{"", sum[:8]} {
				k2, r, err := a.OpenKept("/etc/x", prefix)
				if err != nil {
					t.Fatalf("OpenKept(%q): %v", prefix, err)
				}
				data, err := io.ReadAll(r)
				r.Close()
				if err != nil || string(data) != edited || k2 != k {
					t.Errorf("OpenKept(%q) = %+v %q %v, want the hand edit", prefix, k2, data, err)
				}
			}
			if _, _, err := a.OpenKept("/etc/x", "ffff"); steps.ExitCode(err) != steps.ExitBadInput {
				t.Errorf("OpenKept of another hash: %v, want an input error", err)
			}
			if !strings.Contains(h.log.String(), "path=/etc/x") {
				t.Errorf("no warning logged:\n%s", h.log.String())
			}
		})
	}
}

func isDir(name string) bool {
	fi, err := os.Lstat(name)
	return err == nil && fi.IsDir()
}

// TestKeptAccumulates: kept content stays through later moves, newest last,
// and OpenKept returns the newest for a path.
func TestKeptAccumulates(t *testing.T) {
	h := newImgHost(t)
	x := filepath.Join(h.root, "etc/x")
	cp := "COPY a /etc/x sha256=" + h.source(t, "a", []byte("a\n"))
	for _, edit := range []string{"first edit\n", "second edit\n"} {
		h.mustApply(t, cp)
		if err := os.WriteFile(x, []byte(edit), 0o644); err != nil {
			t.Fatal(err)
		}
		h.mustApply(t)
	}
	h.mustApply(t, "MKDIR /etc/other")
	a := h.open(t)
	if k := a.Kept(); len(k) != 2 || k[0].Generation != 2 || k[1].Generation != 4 {
		t.Fatalf("kept %+v, want two, of generations 2 and 4", k)
	}
	_, r, err := a.OpenKept("/etc/x", "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if data, _ := io.ReadAll(r); string(data) != "second edit\n" {
		t.Errorf("the newest kept content is %q, want the second edit", data)
	}
}

// TestKeptOnceForSameContent: the same hand edit replaced move after move
// (a program that rewrites a file cairn repairs from a timer) is kept once,
// with the newest move's record: the state does not grow by a record a
// move for content it already keeps.
func TestKeptOnceForSameContent(t *testing.T) {
	h := newImgHost(t)
	x := filepath.Join(h.root, "etc/x")
	cp := "COPY a /etc/x sha256=" + h.source(t, "a", []byte("a\n"))
	h.mustApply(t, cp)
	for range 4 {
		if err := os.WriteFile(x, []byte("rewritten by a daemon\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := h.apply(t, true, cp); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(x, []byte("another edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustApply(t)
	k := h.open(t).Kept()
	if len(k) != 2 || k[0].Generation != 5 || k[1].Generation != 6 || k[0].Size != int64(len("rewritten by a daemon\n")) {
		t.Fatalf("kept %+v, want the daemon's content once (generation 5), then the other edit", k)
	}
}
