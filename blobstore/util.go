package blobstore

import (
	"fmt"
	"hash/crc32"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// bufPool holds the 64 KiB buffers of copies and small Puts.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// crcTable is CRC-32C, the checksum of index records.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// syncfs makes the file system that holds dir durable.
func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// ValidSum reports whether sum is a sha256 as the store names blobs: 64
// lower-case hex digits.
func ValidSum(sum string) bool {
	_, ok := parseSum(sum)
	return ok
}
