package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/rootfs"
)

// intentBatches writes an intent log of three batches (header and two ops;
// three ops; two ops) to dir with intentLog, as run does, and returns its
// lines, each with its newline.
func intentBatches(t *testing.T, dir string) [][]byte {
	t.Helper()
	l := newIntent(dir)
	l.add(&intentRecord{T: "plan", From: 1, To: 2})
	i := 0
	for _, n := range []int{2, 3, 2} {
		for range n {
			l.add(&intentRecord{T: "op", I: i, Action: "forward", Step: "MKDIR /srv/d" + string(rune('a'+i)), At: "x.journal:1:1", Undo: &Image{Absent: true}})
			i++
		}
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, intentFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != 8 {
		t.Fatalf("the intent log holds %d lines, want 8", len(lines))
	}
	return lines
}

// reseal replaces old by new in an intent log line and gives it the
// checksum of its new JSON: a record damaged where no checksum can tell.
func reseal(line []byte, old, new string) []byte {
	body := bytes.Replace(line[9:len(line)-1], []byte(old), []byte(new), 1)
	return fmt.Appendf(nil, "%08x %s\n", crc32.Checksum(body, crcTable()), body)
}

// sizeOf returns the size an intent log line says its batch ends at.
func sizeOf(line []byte) int64 {
	var r intentRecord
	json.Unmarshal(line[9:], &r)
	return r.Size
}

// TestReadIntent damages an intent log in every way a crash can and in ways
// only corruption can: a torn last batch is dropped (none of its ops ran),
// anything else is an *IntentCorruptError naming the file and line.
func TestReadIntent(t *testing.T) {
	join := func(lines ...[]byte) []byte { return bytes.Join(lines, nil) }
	zeros := func(n int) []byte { return make([]byte, n) }
	half := func(b []byte) []byte { return b[:len(b)/2] }
	flip := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[20] ^= 0x20
		return c
	}
	for _, tc := range []struct {
		name   string
		damage func(l [][]byte) []byte
		recs   int    // the records read, header included; 0 with corrupt
		line   int    // the line the error names
		reason string // in the error
	}{
		{"whole", func(l [][]byte) []byte { return join(l...) }, 8, 0, ""},
		{"torn last batch: half its last record", func(l [][]byte) []byte { return join(append(l[:7:7], half(l[7]))...) }, 6, 0, ""},
		{"torn last batch: cut between its records", func(l [][]byte) []byte { return join(l[:7]...) }, 6, 0, ""},
		{"torn last batch: its last record without newline", func(l [][]byte) []byte { return join(append(l[:7:7], l[7][:len(l[7])-1])...) }, 6, 0, ""},
		{"torn last batch: zeros instead", func(l [][]byte) []byte { return join(append(l[:6:6], zeros(len(l[6])+len(l[7])))...) }, 6, 0, ""},
		{"torn last batch: zeros in its middle", func(l [][]byte) []byte {
			return join(append(l[:7:7], zeros(len(l[7])-5), l[7][len(l[7])-5:])...)
		}, 6, 0, ""},
		// A damaged first record of a batch, then a whole record: a torn
		// last batch, or a damaged earlier one and a later batch that ran?
		{"the first record of a batch damaged, a whole record after it", func(l [][]byte) []byte {
			return join(append(l[:6:6], zeros(len(l[6])-5), l[6][len(l[6])-5:], l[7])...)
		}, 0, 7, "cannot be told"},
		{"torn last batch: a bad checksum", func(l [][]byte) []byte { return join(append(l[:7:7], flip(l[7]))...) }, 6, 0, ""},
		{"torn new batch after whole ones", func(l [][]byte) []byte { return join(append(l[:8:8], half(l[1]))...) }, 8, 0, ""},
		{"zeros after whole batches", func(l [][]byte) []byte { return join(append(l[:8:8], zeros(4096))...) }, 8, 0, ""},
		{"empty", func(l [][]byte) []byte { return nil }, 0, 0, "empty"},
		{"all zeros", func(l [][]byte) []byte { return zeros(4096) }, 0, 1, "header is unreadable"},
		{"header only", func(l [][]byte) []byte { return l[0] }, 0, 2, "first batch"},
		{"first batch cut", func(l [][]byte) []byte { return join(l[:2]...) }, 0, 3, "first batch"},
		{"a bad record in the first batch", func(l [][]byte) []byte { return join(append([][]byte{l[0], flip(l[1])}, l[2:]...)...) }, 0, 2, "first batch"},
		{"a record missing in the middle", func(l [][]byte) []byte { return join(append(l[:4:4], l[5:]...)...) }, 0, 5, "missing"},
		{"a whole batch missing", func(l [][]byte) []byte { return join(append(l[:3:3], l[6:]...)...) }, 0, 4, "missing"},
		{"a bad record before a later batch", func(l [][]byte) []byte { return join(append(append(l[:4:4], flip(l[4])), l[5:]...)...) }, 0, 5, "later batch"},
		{"zeros before a later batch", func(l [][]byte) []byte { return join(append(append(l[:3:3], zeros(100)), l[4:]...)...) }, 0, 4, "cannot be told"},
		{"a whole batch damaged before a later one", func(l [][]byte) []byte {
			return join(append(append(l[:3:3], flip(l[3]), flip(l[4]), flip(l[5])), l[6:]...)...)
		}, 0, 4, "cannot be told"},
		{"a newline lost between batches", func(l [][]byte) []byte {
			return join(append(l[:5:5], bytes.TrimSuffix(l[5], []byte("\n")), l[6], l[7])...)
		}, 0, 6, "later batch"},
		{"zeros from inside a batch over a later one", func(l [][]byte) []byte {
			return join(append(l[:4:4], zeros(len(l[4])+len(l[5])+len(l[6])), l[7][3:])...)
		}, 0, 5, "past the end of its batch"},
		{"a record of the batch before with another end", func(l [][]byte) []byte {
			return join(append(l[:4:4], reseal(l[4], `"end":6`, `"end":7`), l[5], l[6], l[7])...)
		}, 0, 5, "batch ends"},
		{"a record with another batch size", func(l [][]byte) []byte { return join(append(l[:7:7], reseal(l[7], `"size":`, `"size":1`))...) }, 0, 8, "the record before it says"},
		{"a log of the cairn before, without sizes", func(l [][]byte) []byte {
			var out [][]byte
			for _, line := range l {
				out = append(out, reseal(line, fmt.Sprintf(`"size":%d,`, sizeOf(line)), ""))
			}
			return join(out...)
		}, 8, 0, ""},
		{"a batch that says it ends elsewhere", func(l [][]byte) []byte {
			return join(append(l[:6:6], reseal(l[6], `"size":`, `"size":1`), reseal(l[7], `"size":`, `"size":1`))...)
		}, 0, 8, "says the batch ends at byte"},
		{"no header", func(l [][]byte) []byte { return join(l[1:]...) }, 0, 1, "missing"},
		{"a record of an older cairn", func(l [][]byte) []byte {
			return []byte("9d1a7e55 {\"t\":\"plan\",\"from\":1,\"to\":2}\n")
		}, 0, 1, "header is unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lines := intentBatches(t, dir)
			name := filepath.Join(dir, intentFile)
			if err := os.WriteFile(name, tc.damage(lines), 0o600); err != nil {
				t.Fatal(err)
			}
			recs, ok, err := readIntent(dir)
			if !ok {
				t.Fatal("readIntent: no log")
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("readIntent: %v, want %d records", err, tc.recs)
				}
				if len(recs) != tc.recs {
					t.Fatalf("readIntent: %d records, want %d", len(recs), tc.recs)
				}
				for i, r := range recs {
					if r.Seq != int64(i+1) {
						t.Errorf("record %d has seq %d", i+1, r.Seq)
					}
				}
				return
			}
			var ce *IntentCorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("readIntent: %d records, %v; want an *IntentCorruptError", len(recs), err)
			}
			if ExitCode(err) != ExitUndoFailed {
				t.Errorf("ExitCode = %d, want %d", ExitCode(err), ExitUndoFailed)
			}
			if ce.File != name || ce.Line != tc.line || !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("the error names %s:%d (%s), want %s:%d and %q", ce.File, ce.Line, ce.Reason, name, tc.line, tc.reason)
			}
			if msg := err.Error(); !strings.Contains(msg, "remove the file") {
				t.Errorf("the error does not say how to unlock the state:\n%s", msg)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, intentFile), 0o700); err != nil {
			t.Fatal(err)
		}
		var ce *IntentCorruptError
		if _, ok, err := readIntent(dir); !ok || !errors.As(err, &ce) || !strings.Contains(ce.Reason, "cannot be read") {
			t.Fatalf("readIntent of a log that cannot be read: %v, %v", ok, err)
		}
	})
	t.Run("the first batch never replaces a log", func(t *testing.T) {
		dir := t.TempDir()
		name := filepath.Join(dir, intentFile)
		if err := os.WriteFile(name, []byte("another move's\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		l := newIntent(dir)
		l.add(&intentRecord{T: "plan", From: 1, To: 2})
		l.add(&intentRecord{T: "op", Action: "forward", Step: "MKDIR /srv"})
		if err := l.flush(); err == nil {
			t.Error("flush replaced an intent log that was there")
		}
		if data, _ := os.ReadFile(name); string(data) != "another move's\n" {
			t.Errorf("the log there was changed: %q", data)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})
}

// TestRecoverUnreadableOp: a record whose checksum holds but whose step
// cannot be read back (another build's, or damage no checksum sees) makes
// the log one that cannot be read whole: exit 3 for every command that
// opens the state, never exit 2 as if nothing had changed.
func TestRecoverUnreadableOp(t *testing.T) {
	dir := t.TempDir()
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	stateDir := filepath.Join(dir, "state")
	opts := Options{Root: root, StateDir: stateDir, Create: true}
	a, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	lines := intentBatches(t, stateDir)
	// The same length, so the batch sizes the records give still hold.
	lines[1] = reseal(lines[1], `"MKDIR /srv/da"`, `"MKDIR srv//da"`)
	if err := os.WriteFile(filepath.Join(stateDir, intentFile), bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a, err := Open(context.Background(), opts)
		if err == nil {
			a.Close()
			t.Fatal("the state opened with an intent log it cannot read")
		}
		var ce *IntentCorruptError
		if !errors.As(err, &ce) || ExitCode(err) != ExitUndoFailed || !strings.Contains(err.Error(), "op 0") {
			t.Fatalf("open: %v (exit %d), want a corrupt intent log naming op 0, exit 3", err, ExitCode(err))
		}
	}
}
