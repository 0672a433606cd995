package cli

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cairn-cm/cairn/journal"
)

// mapFile maps a journal file into memory read-only instead of reading it
// into the heap: the parser keeps substrings of it, and a command process
// exits soon after, so the mapping is never undone. For large journals this
// saves the copy and the fresh heap pages; small files are read, and
// anything but a regular file is refused (journal.ReadFile).
func mapFile(name string) ([]byte, error) {
	data, _, err := mapJournal(name, unix.MAP_POPULATE)
	return data, err
}

// mapJournal is mapFile with more flags for mmap; mapped tells whether the
// data is a mapping (only a mapping may be given to dropPages).
func mapJournal(name string, flags int) (data []byte, mapped bool, err error) {
	// A journal must be a regular file (journal.ReadFile): a FIFO would
	// block the read, a device would never end.
	info, err := os.Stat(name)
	if err != nil {
		return nil, false, err
	}
	if !info.Mode().IsRegular() || info.Size() < 1<<20 || info.Size() > journal.MaxLoadSize {
		data, err := journal.ReadFile(name)
		return data, false, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() < 1<<20 || fi.Size() > journal.MaxLoadSize {
		data, err := journal.ReadFile(name) // it changed meanwhile: let ReadFile say what it is now
		return data, false, err
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_PRIVATE|flags)
	if err != nil {
		data, err := journal.ReadFile(name)
		return data, false, err
	}
	return data, true, nil
}

// dropPages takes the whole pages of part, a substring of a mapping of
// mapJournal, out of the process's memory (madvise MADV_DONTNEED): the
// mapping stays, and a later read maps them in again from the page cache.
func dropPages(part string) {
	page := uintptr(os.Getpagesize())
	p := unsafe.Pointer(unsafe.StringData(part))
	skip := (page - uintptr(p)%page) % page // to the first whole page
	if uintptr(len(part)) < skip+page {
		return
	}
	n := (uintptr(len(part)) - skip) &^ (page - 1)
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, skip)), n), unix.MADV_DONTNEED)
}
