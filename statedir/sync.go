package statedir

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SyncFS makes the whole file system that holds dir durable (syncfs(2)):
// one call where a move or a batch of blobs wrote many files, cheaper than
// an fsync of each.
func SyncFS(dir string) error {
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
