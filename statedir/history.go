package statedir

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-cm/cairn/internal/atomicfile"
)

// HistoryEntry is one run in the state's short history.
type HistoryEntry struct {
	Time       time.Time     `json:"time"`
	Generation int64         `json:"generation"`
	Journal    string        `json:"journal,omitempty"`
	Commit     string        `json:"commit,omitempty"`
	Branch     string        `json:"branch,omitempty"`
	Group      string        `json:"group,omitempty"`
	Result     HistoryResult `json:"result"`
	Ops        int           `json:"ops"`
	Error      string        `json:"error,omitempty"`
	Seconds    float64       `json:"seconds"`
}

// HistoryResult is how a run recorded in the history ended. Its values are
// the strings history.jsonl holds.
type HistoryResult string

// The results of a run.
const (
	HistoryApplied    HistoryResult = "applied"     // the move ran and committed
	HistoryNoop       HistoryResult = "no-op"       // nothing to do: the host stays at its generation
	HistoryFailed     HistoryResult = "failed"      // the move failed and was undone
	HistoryUndoFailed HistoryResult = "undo-failed" // the move failed and its undo too: the intent log stays
	HistoryRecovered  HistoryResult = "recovered"   // an interrupted move was undone when the state was opened
)

const historyKeep = 100

// Record appends a run to the history, keeping the newest entries. A
// history that is not cairn's own file (OpenFile) is replaced, with
// what could be read of it.
func (d *Dir) Record(h HistoryEntry) {
	name := filepath.Join(d.path, HistoryFile)
	line, _ := json.Marshal(h)
	data, _ := ReadFile(name)
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	}
	if len(lines) < 2*historyKeep {
		f, err := OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			f.Write(append(line, '\n'))
			f.Close()
			return
		}
		if !errors.Is(err, ErrNotCairns) {
			return
		}
	}
	kept := append(lines[len(lines)-min(len(lines), historyKeep-1):], string(line))
	atomicfile.WriteFile(name, []byte(strings.Join(kept, "\n")+"\n"), 0o600)
}

// History returns the runs recorded in the state directory dir, oldest first.
func History(dir string) ([]HistoryEntry, error) {
	data, err := ReadFile(filepath.Join(dir, HistoryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var h HistoryEntry
		if json.Unmarshal([]byte(line), &h) == nil {
			out = append(out, h)
		}
	}
	return out, nil
}
