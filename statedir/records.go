package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cairn-cm/cairn/internal/atomicfile"
)

// CheckRecordName refuses a record name that is not one or more of a-z,
// 0-9 and '-': a name is a file name, never a path.
func CheckRecordName(name string) error {
	ok := name != ""
	for _, c := range name {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("state: record name %q: only a-z, 0-9 and '-' are allowed", name)
	}
	return nil
}

// ReadRecord reads the record name (see WriteRecord) into v, as JSON, and
// reports whether there was one.
func (d *Dir) ReadRecord(name string, v any) (bool, error) {
	if err := CheckRecordName(name); err != nil {
		return false, err
	}
	dir, err := d.records(false)
	if err != nil || dir == "" {
		return false, err
	}
	file := filepath.Join(dir, name+".json")
	data, err := ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("state: %s is corrupt: %w", file, err)
	}
	return true, nil
}

// WriteRecord stores v, as JSON, as the record name: a small file kept in
// RecordsDir (the agent's lifecycle state, its last runs, bad moves, a
// pin), written atomically and synced. name is one or more of a-z, 0-9 and
// '-'. A record, or the directory of records, that is a link or anything
// but what cairn makes there is refused, never followed.
func (d *Dir) WriteRecord(name string, v any) error {
	if err := CheckRecordName(name); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: record %s: %w", name, err)
	}
	dir, err := d.records(true)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, name+".json")
	if fi, err := os.Lstat(file); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("state: %w", &fs.PathError{Op: "write", Path: file, Err: ErrNotCairns})
	}
	if err := atomicfile.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// records returns the host path of the directory of records, after
// checking that it is cairn's (a directory, not a link, of the effective
// uid, writable by no one else); with create, it makes a missing one, else
// a missing one is "".
func (d *Dir) records(create bool) (string, error) {
	dir := filepath.Join(d.path, RecordsDir)
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", fmt.Errorf("state: %w", err)
		}
		if err := atomicfile.SyncDir(d.path); err != nil {
			return "", fmt.Errorf("state: %w", err)
		}
		fi, err = os.Lstat(dir)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("state: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("state: %s is a symbolic link: refused", dir)
	}
	sys := fi.Sys().(*syscall.Stat_t)
	if err := checkStateOwner(dir, fi.IsDir(), sys.Uid, uint32(sys.Mode)); err != nil {
		return "", err
	}
	return dir, nil
}
