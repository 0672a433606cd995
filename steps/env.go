package steps

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// Env is the host that steps act on: the root every object path resolves
// beneath, the blob store, and where commands' output goes.
type Env struct {
	Root  *rootfs.Root
	Blobs *Blobs
	Log   *slog.Logger
	// Output receives what EXEC and CHECK commands print.
	Output io.Writer
	// Host holds the drivers of what is not a file.
	Host

	mu     sync.Mutex
	users  map[string]int
	groups map[string]int
	// view is what a drift check read at once, nil but in one (checkView).
	view *checkView
	// stats is the stat cache of a drift check, nil but in one.
	stats *statCache
	// proof records what a drift check read, for a no-op's proof; nil but
	// in one that may end in a proof.
	proof *proofRecorder
}

// UID resolves an owner: root and numeric ids always, other names in the
// root's /etc/passwd as it is when the op runs.
func (e *Env) UID(name string) (int, error) {
	return e.resolve(name, "/etc/passwd", &e.users)
}

// GID resolves a group like UID, in the root's /etc/group.
func (e *Env) GID(name string) (int, error) {
	return e.resolve(name, "/etc/group", &e.groups)
}

func (e *Env) resolve(name, db string, cache *map[string]int) (int, error) {
	if name == "root" {
		return 0, nil
	}
	if name != "" && strings.Trim(name, "0123456789") == "" {
		// A name of digits only is a numeric id: in range, or an error.
		// strconv.Atoi would take any int, which chown(2) truncates to 32
		// bits, reading 4294967295 as "no change".
		n, err := journal.ParseID(name)
		if err != nil {
			return 0, err
		}
		return int(n), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := (*cache)[name]; ok {
		return id, nil
	}
	// Read afresh on a miss: an earlier op of this plan may have added it.
	m, err := e.readIDs(db)
	if err != nil {
		return 0, err
	}
	*cache = m
	if id, ok := m[name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("%s: no entry %q in the root's %s", name, name, db)
}

// InvalidateIDs forgets resolved names, after an op that changed users or
// groups.
func (e *Env) InvalidateIDs() {
	e.mu.Lock()
	e.users, e.groups = nil, nil
	e.mu.Unlock()
}

func (e *Env) readIDs(db string) (map[string]int, error) {
	m := map[string]int{}
	f, err := e.Root.OpenFile(db)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if id, err := journal.ParseID(fields[2]); err == nil {
			m[fields[0]] = int(id) // an entry with an id out of range is skipped
		}
	}
	return m, sc.Err()
}

func (e *Env) logger() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

func (e *Env) output() io.Writer {
	if e.Output == nil {
		return io.Discard
	}
	return e.Output
}
