// Command hashall is the floor for cairn's no-op run: it walks a tree,
// lstats every entry and sha256-hashes every regular file, and changes
// nothing. One goroutine by default, like /work/shared/bench/hashsync; -j N
// hashes on N goroutines, for the multi-core figure. With -stat it only
// walks and lstats: the floor of any check that trusts a stat cache, which
// must still lstat every file to know it unchanged.
//
//	hashall [-j N] [-stat] DIR
//
// It prints the number of entries and files and the XOR of the files'
// digests (so that the work cannot be skipped, and two runs can be compared;
// with -stat, the counts only).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

func main() {
	jobs := flag.Int("j", 1, "hash on `N` goroutines")
	statOnly := flag.Bool("stat", false, "walk and lstat only, hash nothing")
	flag.Parse()
	if flag.NArg() != 1 || *jobs < 1 {
		fmt.Fprintln(os.Stderr, "usage: hashall [-j N] [-stat] DIR")
		os.Exit(2)
	}
	if *statOnly {
		*jobs = 0
	}
	if err := run(flag.Arg(0), *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "hashall:", err)
		os.Exit(1)
	}
}

// run walks dir and hashes its files on jobs goroutines; with jobs 0 it
// hashes nothing.
func run(dir string, jobs int) error {
	// Walk: lstat every entry, collect the regular files.
	var files []string
	entries := 0
	var walk func(string) error
	walk = func(p string) error {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		entries++
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			files = append(files, p)
		case syscall.S_IFDIR:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			names, err := f.Readdirnames(-1)
			f.Close()
			if err != nil {
				return err
			}
			for _, n := range names {
				if err := walk(filepath.Join(p, n)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(filepath.Clean(dir)); err != nil {
		return err
	}
	if jobs == 0 {
		fmt.Printf("%d entries, %d files, none hashed\n", entries, len(files))
		return nil
	}

	// Hash.
	sums := make([][sha256.Size]byte, len(files))
	errs := make([]error, jobs)
	var wg sync.WaitGroup
	for w := range jobs {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for i := w; i < len(files); i += jobs {
				if err := hashFile(files[i], buf, &sums[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var x [sha256.Size]byte
	for i := range sums {
		for k := range x {
			x[k] ^= sums[i][k]
		}
	}
	fmt.Printf("%d entries, %d files, xor of digests %s\n", entries, len(files), hex.EncodeToString(x[:]))
	return nil
}

// hashFile hashes one file with raw system calls: os.Open's poller
// registration costs more than hashing 1 KiB.
func hashFile(p string, buf []byte, sum *[sha256.Size]byte) error {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	h := sha256.New()
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			break
		}
		h.Write(buf[:n])
	}
	h.Sum(sum[:0])
	return nil
}
