// Package atomicfile writes files so that a reader, or the file system after
// a crash, sees either the old content or the new one, never a mix: the data
// goes to a temporary file in the same directory, which is synced and renamed
// over the target, and then the directory is synced.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile atomically replaces name with data, with permission bits perm.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	return Write(name, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write atomically replaces name with what write writes, with permission
// bits perm, as WriteFile does: write gets a buffered writer to the
// temporary file, so that content encoded piece by piece is never held
// whole in memory. An error from write leaves name as it was.
func Write(name string, perm os.FileMode, write func(w io.Writer) error) error {
	return replace(name, perm, true, write)
}

// Replace replaces name with data, with permission bits perm, as WriteFile
// does but syncing nothing: a reader sees the old content or the new one,
// and after a crash the file may be empty or torn. For caches that check
// their own content and are rebuilt when it is wrong, where two fsyncs a
// write would cost more than the cache saves.
func Replace(name string, data []byte, perm os.FileMode) error {
	return replace(name, perm, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replace is Write, with the syncs when sync is set.
func replace(name string, perm os.FileMode, sync bool, write func(w io.Writer) error) error {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := write(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if !sync {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making the names created, renamed or removed
// in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name (a base name) is a temporary file that
// WriteFile leaves behind when the process dies mid-write.
func IsTemp(name string) bool {
	if len(name) < 2 || name[0] != '.' {
		return false
	}
	m, _ := filepath.Match(".*.tmp-*", name)
	return m
}
