package steps

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/statedir"
	"golang.org/x/sys/unix"
)

// The intent log records a move in progress, so that a move that dies half
// way can be undone by the next process that opens the state. It is a file
// of records, one a line: eight hex digits of the CRC-32C of the JSON that
// follows a space. Records are numbered from 1 (seq), the header first, and
// each says where the batch it was written with ends (end: the seq of the
// batch's last record; size: the log's size once the batch is written).
//
// Records are written in batches, each durable (fsync) before any op it
// describes runs. The first batch, the header and the first op records, is
// written to a temporary file, synced and renamed into place: an intent log
// that exists always holds its header and at least one op record, whole.
// Later batches are appended. So a legitimate log is a run of whole batches,
// the last of which may be torn (a power loss or a kill in its write, before
// its fsync returned: none of its ops ran), and it is dropped. Anything else
// (an empty file, a missing header, a gap in the numbers, a bad record
// followed by a later batch, or by bytes past the end of its own) is a
// corrupt log: the ops it records may have run, and recovery cannot tell
// what to undo.

// crcTable is CRC-32C, the checksum of the intent log's records, made at
// its first use (as blobstore's): the commands that keep no intent log do
// not pay for it.
var crcTable = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// intentRecord is one record of the intent log.
type intentRecord struct {
	Seq    int64  `json:"seq"`  // 1 for the header, then one more each record
	End    int64  `json:"end"`  // the seq of the last record of its batch
	Size   int64  `json:"size"` // the log's size in bytes once its batch is written
	T      string `json:"t"`    // "plan" or "op"
	From   int64  `json:"from,omitempty"`
	To     int64  `json:"to,omitempty"`
	I      int    `json:"i,omitempty"`
	Action string `json:"action,omitempty"`
	Step   string `json:"step,omitempty"`
	At     string `json:"at,omitempty"`
	Undo   *Image `json:"undo,omitempty"`
	// Boot is the kernel's boot ID in the plan record: recovery compares
	// device numbers only within the boot that recorded them.
	Boot string `json:"boot,omitempty"`
}

// intentLog is the intent log being written: nothing is on disk until the
// first flush.
type intentLog struct {
	dir     string
	f       *os.File       // open once the first batch is in place
	pending []intentRecord // reused from batch to batch
	seq     int64          // the last record written
	size    int64          // the bytes written
	// buf and tails are flush's, kept for the next batch: a move's
	// batches reuse one buffer.
	buf     []byte
	tails   [][]byte
	tailBuf []byte
}

// newIntent starts the intent log of a move in dir; the first flush
// creates the file.
func newIntent(dir string) *intentLog { return &intentLog{dir: dir} }

// add buffers a copy of a record; flush makes it durable.
func (l *intentLog) add(r *intentRecord) { l.pending = append(l.pending, *r) }

// flush writes the buffered records as one batch and syncs them to disk.
// The first batch goes to a temporary file that is synced and renamed to
// intent.log, never over an existing one.
//
// Each record is encoded once, without its numbers (encodeTails); the
// numbers are put in front of that as json.Marshal would write them, as
// often as the size they hold changes the size they give.
func (l *intentLog) flush() error {
	if len(l.pending) == 0 {
		return nil
	}
	end := l.seq + int64(len(l.pending))
	tails, err := l.encodeTails()
	if err != nil {
		return fmt.Errorf("intent log: %w", err)
	}
	// The size the records give depends on the digits of the size they
	// hold: grow it until it is the size they give, counting, then write
	// them once.
	fixed := int64(0) // the bytes of the lines but for the size's digits
	for i := range l.pending {
		fixed += recordLen(l.seq+1+int64(i), end, 0, tails[i]) - 1
	}
	n := int64(len(l.pending))
	size := l.size
	for {
		next := l.size + fixed + n*int64(digits(size))
		if next == size {
			break
		}
		size = next
	}
	buf := l.buf[:0]
	for i := range l.pending {
		r := &l.pending[i]
		r.Seq, r.End, r.Size = l.seq+1+int64(i), end, size
		buf = appendRecord(buf, r, tails[i])
	}
	if l.size+int64(len(buf)) != size {
		return fmt.Errorf("intent log: a batch of %d bytes says %d", len(buf), size-l.size)
	}
	l.buf = buf
	if l.f == nil {
		if err := l.create(buf); err != nil {
			return fmt.Errorf("intent log: %w", err)
		}
	} else {
		name := filepath.Join(l.dir, intentFile)
		if _, err := l.f.Write(buf); err != nil {
			return fmt.Errorf("intent log: write %s: %w", name, errnoOf(err))
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("intent log: sync %s: %w", name, errnoOf(err))
		}
	}
	l.seq, l.size = end, l.size+int64(len(buf))
	clear(l.pending) // the records, and the images they point to, are not kept
	l.pending = l.pending[:0]
	return nil
}

// encodeTails encodes the pending records without their numbers (seq,
// end and size, their first fields) into one buffer reused from batch to
// batch, and returns each one's JSON from the comma after size to the
// closing brace, in order: what json.Marshal writes there, written by hand
// (appendJSONString) but for the undo image, which json.Marshal encodes.
// A record whose image encoding/json cannot encode (an mtime past year
// 9999, which tmpfs and btrfs keep) is an error.
func (l *intentLog) encodeTails() ([][]byte, error) {
	buf := l.tailBuf[:0]
	offs := make([]int, 0, len(l.pending)+1)
	var lastUndo *Image // the image undoJSON holds
	var undoJSON []byte
	for i := range l.pending {
		r := &l.pending[i]
		offs = append(offs, len(buf))
		// The fields after the numbers, in intentRecord's order, left
		// out where json's omitempty leaves them out.
		buf = append(buf, `,"t":`...)
		buf = appendJSONString(buf, r.T)
		buf = appendIntField(buf, `,"from":`, r.From)
		buf = appendIntField(buf, `,"to":`, r.To)
		buf = appendIntField(buf, `,"i":`, int64(r.I))
		buf = appendStringField(buf, `,"action":`, r.Action)
		buf = appendStringField(buf, `,"step":`, r.Step)
		buf = appendStringField(buf, `,"at":`, r.At)
		if r.Undo != nil {
			// Encoded once for the ops that share it (keepUndo: a cold
			// apply's new files, thousands).
			if r.Undo != lastUndo {
				var err error
				if undoJSON, err = json.Marshal(r.Undo); err != nil {
					return nil, err
				}
				lastUndo = r.Undo
			}
			buf = append(buf, `,"undo":`...)
			buf = append(buf, undoJSON...)
		}
		buf = appendStringField(buf, `,"boot":`, r.Boot)
		buf = append(buf, '}')
	}
	offs = append(offs, len(buf))
	l.tailBuf = buf
	tails := l.tails[:0]
	for i := range l.pending {
		tails = append(tails, buf[offs[i]:offs[i+1]])
	}
	l.tails = tails
	return tails, nil
}

// appendIntField appends the field name and n unless n is 0 (omitempty).
func appendIntField(buf []byte, name string, n int64) []byte {
	if n == 0 {
		return buf
	}
	return strconv.AppendInt(append(buf, name...), n, 10)
}

// appendStringField appends the field name and s unless s is empty
// (omitempty).
func appendStringField(buf []byte, name, s string) []byte {
	if s == "" {
		return buf
	}
	return appendJSONString(append(buf, name...), s)
}

// recordLen is the length of the line appendRecord makes of a record
// with these numbers and tail.
func recordLen(seq, end, size int64, tail []byte) int64 {
	return int64(len("00000000 ")+len(`{"seq":`)+digits(seq)+len(`,"end":`)+digits(end)+len(`,"size":`)+digits(size)+len(tail)) + 1
}

// digits is the length of n in decimal, as strconv.AppendInt writes it.
func digits(n int64) int {
	d := 1
	if n < 0 {
		d++
		n = -n
	}
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// appendRecord appends r's line to buf, "CRC32C JSON\n", the JSON being
// json.Marshal(r) made of r's numbers and its tail (encodeTails).
func appendRecord(buf []byte, r *intentRecord, tail []byte) []byte {
	start := len(buf)
	buf = append(buf, "00000000 "...) // the CRC, once the JSON is there
	js := len(buf)
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendInt(buf, r.Seq, 10)
	buf = append(buf, `,"end":`...)
	buf = strconv.AppendInt(buf, r.End, 10)
	buf = append(buf, `,"size":`...)
	buf = strconv.AppendInt(buf, r.Size, 10)
	buf = append(buf, tail...)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(buf[js:], crcTable()))
	hex.Encode(buf[start:start+8], sum[:])
	return append(buf, '\n')
}

// create puts the first batch in place: a temporary file (one that
// cleanTemps removes if the process dies), synced, renamed to intent.log,
// and the directory synced.
func (l *intentLog) create(first []byte) error {
	name := filepath.Join(l.dir, intentFile)
	f, err := os.CreateTemp(l.dir, "."+intentFile+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(first); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, name, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: link(2) never replaces.
		if err = os.Link(tmp, name); err == nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		return fail(&os.LinkError{Op: "rename", Old: tmp, New: name, Err: err})
	}
	if err := atomicfile.SyncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.f = f // its offset is at its end: later batches append
	return nil
}

// errnoOf returns what a *fs.PathError says went wrong, without the path
// it names: for a message that names the file itself (the intent log's
// write or sync names it by its temporary name; an input is named as the
// move gave it, not as its file system opened it).
func errnoOf(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// release lets the buffers of flush go, once the last batch is written:
// a move's last batches are the size of a full one, and the commit that
// follows needs the memory.
func (l *intentLog) release() {
	l.buf, l.tails, l.tailBuf = nil, nil, nil
}

func (l *intentLog) close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// removeIntent deletes the intent log of dir durably: the move is over. A
// log that is not there is removed already, whatever unlink(2) says (a
// read-only file system answers EROFS before it looks).
func removeIntent(dir string) error {
	name := filepath.Join(dir, intentFile)
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(name); errors.Is(lerr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("intent log: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// IntentCorruptError is an intent log that cannot be read as whole batches
// of records: the move it records may have changed the host, and what to
// undo is not known. The state stays locked (exit 3) until an operator
// inspects the log, brings the host back by hand if need be, and removes it.
type IntentCorruptError struct {
	File   string
	Line   int // the line at fault, 0 for the whole file
	Reason string
}

func (e *IntentCorruptError) Error() string {
	at := e.File
	if e.Line > 0 {
		at += ":" + strconv.Itoa(e.Line)
	}
	return at + ": corrupt intent log: " + e.Reason + "\n" +
		"the move it records may have changed the host, and cairn cannot tell what to undo: every command that opens the state refuses until it is resolved; " +
		"inspect " + e.File + " (one JSON record a line: each op of the move and the undo image of its object), bring the host back by hand where it changed, then remove the file to unlock the state"
}

// readIntent reads the intent log of dir; ok is false if there is none. It
// returns the records of the whole batches: a torn last batch is dropped.
// A log that is not a run of whole batches and a torn last one is an
// *IntentCorruptError.
func readIntent(dir string) (recs []intentRecord, ok bool, err error) {
	name := filepath.Join(dir, intentFile)
	data, err := statedir.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, &IntentCorruptError{File: name, Reason: fmt.Sprintf("it cannot be read: %v", err)}
	}
	recs, err = parseIntent(name, data)
	return recs, true, err
}

// parseIntent reads the records of the intent log data, read from the file
// name, as readIntent does.
func parseIntent(name string, data []byte) ([]intentRecord, error) {
	var recs []intentRecord
	corrupt := func(line int, format string, args ...any) ([]intentRecord, error) {
		return nil, &IntentCorruptError{File: name, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) == 0 {
		return corrupt(0, "the file is empty (an intent log is written whole with its header and first ops)")
	}
	var (
		firstEnd int64 // the end of the first batch, which is always whole
		last     *intentRecord
		badLine  int   // the first line that is no good record
		badSeq   int64 // the seq that line should have had
		tornEnd  int64 // the end of the batch torn at badLine, if a whole record of it precedes
		sized    bool  // the records say where their batch ends in bytes (not a log of the cairn before)
	)
	fileSize := int64(len(data))
	var off int64 // where the line read ends
	for lineNo := 1; len(data) > 0; lineNo++ {
		line, whole := data, false
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data, whole = data[:i], data[i+1:], true
		} else {
			data = nil
		}
		off = fileSize - int64(len(data))
		rec, perr := parseIntentLine(line)
		switch {
		case perr != nil:
		case !whole:
			perr = errors.New("no newline at its end: its write was cut")
		case rec.Seq == 0:
			perr = errors.New("the record has no number (a log of an older cairn?)")
		case rec.Seq < 0 || rec.End < rec.Seq:
			perr = fmt.Errorf("bad record numbers seq %d, end %d", rec.Seq, rec.End)
		}
		// A bad line may end in a whole record, its newline lost (a flipped
		// bit, zeros over it): that record follows the damage, as one on a
		// line of its own would.
		var after *intentRecord
		if perr != nil && whole {
			after = embeddedRecord(line)
		}
		if badLine == 0 {
			if perr == nil && rec.Seq != int64(lineNo) {
				return corrupt(lineNo, "record %d where record %d should be: records are missing", rec.Seq, lineNo)
			}
			switch {
			case perr != nil && lineNo == 1:
				return corrupt(1, "the header is unreadable: %v", perr)
			case perr == nil && lineNo == 1 && (rec.T != "plan" || rec.End < 2):
				return corrupt(1, "the first record is not a header followed by op records")
			case perr != nil && int64(lineNo) <= firstEnd:
				return corrupt(lineNo, "record %d of the first batch, which is written whole, is unreadable: %v", lineNo, perr)
			case perr != nil:
				badLine, badSeq = lineNo, int64(lineNo)
				if badSeq <= last.End {
					tornEnd = last.End // within the batch of the record before
				}
			case lineNo == 1:
				firstEnd, sized = rec.End, rec.Size != 0
			case rec.T != "op":
				return corrupt(lineNo, "record %d is a %q record, not an op", rec.Seq, rec.T)
			case rec.Seq <= last.End && (rec.End != last.End || rec.Size != last.Size):
				return corrupt(lineNo, "record %d says its batch ends at record %d, byte %d; the record before it says record %d, byte %d", rec.Seq, rec.End, rec.Size, last.End, last.Size)
			}
			if perr == nil && rec.Seq == rec.End && (sized || rec.Size != 0) && rec.Size != off {
				return corrupt(lineNo, "record %d ends its batch at byte %d, but says the batch ends at byte %d", rec.Seq, off, rec.Size)
			}
			if perr == nil {
				recs = append(recs, rec)
				last = &recs[len(recs)-1]
				continue
			}
		} else if perr == nil {
			after = &rec
		}
		// After a bad line, only the rest of that torn batch may follow, and
		// only a whole record before the bad line says which batch that is.
		// A bad line that starts a batch may be a whole earlier batch
		// damaged, and a whole record after it a later batch's, whose ops
		// ran: that cannot be told from a tear, so it is corrupt.
		switch {
		case after == nil:
		case tornEnd == 0:
			return corrupt(badLine, "record %d, the first of its batch, is unreadable, but a whole record follows it (line %d): whether it is a torn last write or a damaged earlier batch cannot be told", badSeq, lineNo)
		case after.End != tornEnd || after.Seq <= badSeq:
			return corrupt(badLine, "record %d is unreadable, but whole records of a later batch follow it (line %d): not a torn last write", badSeq, lineNo)
		}
	}
	// The last batch is torn if a line of it is bad, or if the file ends
	// before its last record; none of its ops ran, so it is dropped. The
	// first batch is never torn: it was written whole before it was put in
	// place.
	lastSeq, lastEnd := last.Seq, last.End
	torn := (badLine > 0 && badSeq <= lastEnd) || (badLine == 0 && lastSeq < lastEnd)
	if torn && sized && fileSize > last.Size {
		// A write that was torn cannot have made the file longer than
		// itself: what lies beyond was written after it was durable.
		return corrupt(int(lastSeq)+1, "record %d is unreadable or missing, but the file goes on past the end of its batch (byte %d of %d): a later write followed, so it was not torn", lastSeq+1, last.Size, fileSize)
	}
	if torn && lastEnd == firstEnd {
		return corrupt(int(lastSeq)+1, "the first batch ends at record %d of %d, but it is written whole", lastSeq, lastEnd)
	}
	for torn && recs[len(recs)-1].End == lastEnd {
		recs = recs[:len(recs)-1]
	}
	return recs, nil
}

// embeddedRecord returns the whole record that a bad line ends with, if
// any: a record's line starts with its checksum and `{"seq":`, which no
// record holds elsewhere (JSON escapes the quotes of a string).
func embeddedRecord(line []byte) *intentRecord {
	i := bytes.LastIndex(line, []byte(` {"seq":`))
	if i < 8 {
		return nil
	}
	rec, err := parseIntentLine(line[i-8:])
	if err != nil || rec.Seq <= 0 || rec.End < rec.Seq {
		return nil
	}
	return &rec
}

func parseIntentLine(line []byte) (intentRecord, error) {
	var rec intentRecord
	if len(line) < 10 || line[8] != ' ' {
		return rec, errors.New("malformed line")
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil {
		return rec, errors.New("malformed checksum")
	}
	body := line[9:]
	if crc32.Checksum(body, crcTable()) != uint32(want) {
		return rec, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		return rec, err
	}
	return rec, nil
}
