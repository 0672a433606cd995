package steps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// marshalRecord is the intent log line of r as the log defines it:
// json.Marshal(r) after the hex CRC-32C of that JSON, then a newline.
func marshalRecord(r *intentRecord) []byte {
	data, _ := json.Marshal(r)
	return fmt.Appendf(nil, "%08x %s\n", crc32.Checksum(data, crcTable()), data)
}

// intentTestRecords returns records of every shape a move writes.
func intentTestRecords() []*intentRecord {
	return []*intentRecord{
		{T: "plan", From: 0, To: 1, Boot: "8c0e2a6e-1d2f-4a4b-9c41-0e1f5d7a9b3c"},
		{T: "plan", From: 123456789, To: 123456790},
		{T: "op", I: 1, Action: "forward", Step: "MKDIR /srv", At: "x.journal:1:1", Undo: &Image{Absent: true, Place: &Place{Dir: "/", Dev: 2049, Ino: 2}}},
		{T: "op", I: 99999, Action: "inverse", Step: `COPY "a b" "/etc/<x>&\"y\"" sha256=00 mode=0644`, At: "é.journal:7:3",
			Undo: &Image{Type: TypeFile, Mode: 0o100644, UID: 1000, Size: 1 << 40, Blob: "ab", Mtime: time.Unix(1700000000, 5).UTC(), Xattrs: map[string][]byte{"user.a": {0, 1, 0xff}}}},
		{T: "op", I: 2, Action: "rerun", Step: "EXEC true", At: "x:2:1"},
		{T: "op", Undo: &Image{Type: "user", Data: json.RawMessage(`{"name":"u"}`)}},
	}
}

// recordTail returns the JSON of r after its numbers, as flush encodes it
// (encodeTails).
func recordTail(r *intentRecord) []byte {
	l := intentLog{pending: []intentRecord{*r}}
	tails, err := l.encodeTails()
	if err != nil {
		return nil
	}
	return tails[0]
}

// TestAppendRecordIsMarshal checks the line flush builds from a record's
// numbers and its tail against the line the log's definition gives, for
// numbers of every length.
func TestAppendRecordIsMarshal(t *testing.T) {
	for _, r := range intentTestRecords() {
		tail := recordTail(r)
		for _, n := range []int64{0, 1, 9, 10, 99, 12345, 1 << 40} {
			r.Seq, r.End, r.Size = n, n+1, n*7
			got := appendRecord([]byte("x"), r, tail)
			if want := marshalRecord(r); !bytes.Equal(got[1:], want) || got[0] != 'x' {
				t.Errorf("appendRecord wrote\n%s\nwant\n%s", got[1:], want)
			}
		}
	}
}

// TestIntentFlushLines checks a log written by flush in batches of
// different sizes record by record: each line is its record as defined
// (marshalRecord), numbered in order, each batch's records naming its
// last record and the log's size once it is written.
func TestIntentFlushLines(t *testing.T) {
	dir := t.TempDir()
	l := newIntent(dir)
	var recs []intentRecord
	var ends []int64 // the size of the log after each record's batch
	all := intentTestRecords()
	ops := all[2:]
	for b, n := range []int{2, 5, 130, 1, 1024} {
		for i := range n {
			r := ops[(b+i)%len(ops)]
			if len(recs) == 0 {
				r = all[0] // the header
			}
			l.add(r)
			recs = append(recs, *r)
		}
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
		for range n {
			ends = append(ends, l.size)
		}
		for _, r := range l.pending[:cap(l.pending)] {
			if r != (intentRecord{}) {
				t.Fatalf("flush keeps a record written, and the image it points to")
			}
		}
	}
	l.close()
	data, err := os.ReadFile(filepath.Join(dir, intentFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines = lines[:len(lines)-1]
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d", len(lines), len(recs))
	}
	seq := int64(0)
	for i, line := range lines {
		var r intentRecord
		if err := json.Unmarshal(line[9:], &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		seq++
		if r.Seq != seq || r.Size != ends[i] {
			t.Fatalf("line %d: seq %d size %d, want seq %d size %d", i+1, r.Seq, r.Size, seq, ends[i])
		}
		want := recs[i]
		want.Seq, want.End, want.Size = r.Seq, r.End, r.Size
		if !bytes.Equal(line, marshalRecord(&want)) {
			t.Fatalf("line %d:\n%s\nwant\n%s", i+1, line, marshalRecord(&want))
		}
	}
	if got, _, err := readIntent(dir); err != nil || len(got) != len(recs) {
		t.Fatalf("readIntent: %d records, %v; want %d", len(got), err, len(recs))
	}
}

// TestIntentFlushAllocs bounds what a batch's flush allocates: about one
// allocation per record, its encoding going once to a buffer reused from
// batch to batch however often the size's digits make flush renumber the
// lines, and the line buffer reused too. (It was three to six per record,
// and new buffers per batch.)
func TestIntentFlushAllocs(t *testing.T) {
	l := newIntent(t.TempDir())
	defer l.close()
	r := &intentRecord{T: "op", I: 1, Action: "forward", Step: "COPY a /dst/a sha256=00", At: "j:1:1", Undo: &Image{Absent: true, Place: &Place{Dir: "/dst", Dev: 1, Ino: 2}}}
	const batch = 100
	fill := func() {
		for range batch {
			l.add(r)
		}
	}
	fill()
	if err := l.flush(); err != nil { // creates the file
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		fill()
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.2f allocations per record", allocs/batch)
	if perRecord := allocs / batch; perRecord > 1.5 {
		t.Fatalf("flush allocates %.1f times per record, want at most 1.5", perRecord)
	}
}

// TestIntentFlushUnencodable: a record that encoding/json cannot encode (an
// undo image with an mtime past year 9999) makes flush fail, writing
// nothing, where it panicked on the tail the Encoder never wrote.
func TestIntentFlushUnencodable(t *testing.T) {
	l := newIntent(t.TempDir())
	defer l.close()
	l.add(intentTestRecords()[0])
	l.add(&intentRecord{T: "op", Step: "COPY x /x sha256=00", Undo: &Image{Type: TypeFile, Mtime: time.Date(14645, 6, 30, 0, 0, 0, 0, time.UTC)}})
	if err := l.flush(); err == nil {
		t.Fatal("flush of an unencodable record: no error")
	}
	if l.f != nil || l.size != 0 {
		t.Fatalf("a failed flush wrote the log: size %d", l.size)
	}
}

// TestEncodeTailsSharedUndo: records of one batch that share an undo image
// (keepUndo hands the same one to every new file of a directory) get the
// JSON json.Marshal gives each of them, the image encoded once.
func TestEncodeTailsSharedUndo(t *testing.T) {
	shared := &Image{Absent: true, Place: &Place{Dir: "/srv", Dev: 2049, Ino: 77}}
	other := &Image{Type: TypeDir, Mode: 0o755, Place: &Place{Dir: "/", Dev: 2049, Ino: 2, ODev: 2049, OIno: 5}}
	records := append(intentTestRecords(),
		&intentRecord{T: "op", I: 7, Action: "forward", Step: "COPY a /srv/a sha256=00", At: "j:7:1", Undo: shared},
		&intentRecord{T: "op", I: 8, Action: "forward", Step: "COPY b /srv/<b> sha256=00", At: "j:8:1", Undo: shared},
		&intentRecord{T: "op", I: 9, Action: "forward", Step: "MKDIR /srv", At: "j:9:1", Undo: other},
		&intentRecord{T: "op", I: 10, Action: "forward", Step: "COPY c /srv/c sha256=00", At: "j:10:1", Undo: shared},
		&intentRecord{T: "plan", To: 2, Boot: "b", Undo: shared}, // no plan has one, but Boot follows it
	)
	l := intentLog{}
	for _, r := range records {
		l.add(r)
	}
	tails, err := l.encodeTails()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range records {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := data[len(`{"seq":0,"end":0,"size":0`):]; !bytes.Equal(tails[i], want) {
			t.Errorf("record %d: tail\n%s\nwant\n%s", i, tails[i], want)
		}
	}
}

// TestDigits holds digits to strconv's decimal lengths, which flush
// counts the records' bytes with.
func TestDigits(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 11, 99, 100, 999999, 1000000, 1<<40 - 1, 1 << 40, 1<<63 - 1, -1, -9, -10, -1<<63 + 1} {
		if got, want := digits(n), len(strconv.FormatInt(n, 10)); got != want {
			t.Errorf("digits(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestIntentRecordFields: encodeTails writes intentRecord's fields by hand,
// so a field added to the struct must be added there too; this list is
// theirs, in order, with the tags json.Marshal reads.
func TestIntentRecordFields(t *testing.T) {
	want := []string{"seq", "end", "size", "t", "from,omitempty", "to,omitempty", "i,omitempty", "action,omitempty",
		"step,omitempty", "at,omitempty", "undo,omitempty", "boot,omitempty"}
	if got := jsonTags(reflect.TypeFor[intentRecord]()); !slices.Equal(got, want) {
		t.Errorf("intentRecord's fields are %q, encodeTails writes %q: write the new ones there too", got, want)
	}
}

// jsonTags returns the json tags of the struct type rt's fields, in order.
func jsonTags(rt reflect.Type) []string {
	var tags []string
	for i := range rt.NumField() {
		tags = append(tags, rt.Field(i).Tag.Get("json"))
	}
	return tags
}
