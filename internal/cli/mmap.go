package cli

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cairn-cm/cairn/journal"
)

// mapFile maps a journal file into memory read-only instead of reading it
// into the heap: the parser keeps substrings of it, and a command process
// exits soon after, so the mapping is never undone. For large journals this
// saves the copy and the fresh heap pages; small files are read, and
// anything but a regular file is refused (journal.ReadFile).
func mapFile(name string) ([]byte, error) {
	// A journal must be a regular file (journal.ReadFile): a FIFO would
	// block the read, a device would never end.
	info, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() || info.Size() < 1<<20 || info.Size() > journal.MaxLoadSize {
		return journal.ReadFile(name)
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() < 1<<20 || fi.Size() > journal.MaxLoadSize {
		return journal.ReadFile(name) // it changed meanwhile: let ReadFile say what it is now
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return journal.ReadFile(name)
	}
	return data, nil
}
