package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cairn-cm/cairn/internal/atomicfile"
)

// The intent log records a move in progress, so that a move that dies half
// way can be undone by the next process that opens the state. It is a file
// of records, one a line: eight hex digits of the CRC-32C of the JSON that
// follows a space. A record is durable (fsync) before any op it describes
// runs. A torn last record, as a power loss leaves it, is ignored; any other
// bad record makes the log corrupt.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// intentRecord is one record of the intent log.
type intentRecord struct {
	T      string `json:"t"` // "plan" or "op"
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

type intentLog struct {
	f   *os.File
	buf []byte
}

// createIntent starts a new intent log in dir.
func createIntent(dir string) (*intentLog, error) {
	f, err := os.OpenFile(filepath.Join(dir, intentFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("intent log: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &intentLog{f: f}, nil
}

// add buffers a record; flush makes it durable.
func (l *intentLog) add(r *intentRecord) {
	data, _ := json.Marshal(r)
	var crc [9]byte
	copy(crc[:], fmt.Sprintf("%08x ", crc32.Checksum(data, crcTable)))
	l.buf = append(l.buf, crc[:]...)
	l.buf = append(l.buf, data...)
	l.buf = append(l.buf, '\n')
}

// flush writes the buffered records and syncs them to disk.
func (l *intentLog) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	if _, err := l.f.Write(l.buf); err != nil {
		return fmt.Errorf("intent log: %w", err)
	}
	l.buf = l.buf[:0]
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("intent log: %w", err)
	}
	return nil
}

func (l *intentLog) close() error { return l.f.Close() }

// removeIntent deletes the intent log of dir durably: the move is over.
func removeIntent(dir string) error {
	if err := os.Remove(filepath.Join(dir, intentFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("intent log: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// readIntent reads the intent log of dir; ok is false if there is none.
func readIntent(dir string) (recs []intentRecord, ok bool, err error) {
	name := filepath.Join(dir, intentFile)
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, inputErrorf("intent log: %w", err)
	}
	for lineNo := 1; len(data) > 0; lineNo++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // a torn last record: it was never durable, so no op ran after it
		}
		line := data[:i]
		data = data[i+1:]
		rec, perr := parseIntentLine(line)
		if perr != nil {
			if len(data) == 0 {
				break // torn last record
			}
			return nil, true, inputErrorf("%s:%d: corrupt intent log record: %v; the state cannot be recovered automatically (inspect it, then remove the file to give up the recovery)", name, lineNo, perr)
		}
		recs = append(recs, rec)
	}
	return recs, true, nil
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
	if crc32.Checksum(body, crcTable) != uint32(want) {
		return rec, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		return rec, err
	}
	return rec, nil
}
