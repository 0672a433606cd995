package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a journal file into memory read-only instead of reading it
// into the heap: the parser keeps substrings of it, and a command process
// exits soon after, so the mapping is never undone. For large journals this
// saves the copy and the fresh heap pages; small and special files are read.
func mapFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() < 1<<20 {
		return os.ReadFile(name)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return os.ReadFile(name)
	}
	return data, nil
}
