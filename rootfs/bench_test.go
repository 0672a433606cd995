package rootfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOps compares Root with plain os calls on the same tree of
// 10,000 files (/srv/dNN/fNNN, 1 KiB each); each op takes the next path.
// Writes are CreateTemp, write 1 KiB, Close, CommitTemp, without fsync,
// against os.WriteFile (in place, not atomic) and os.WriteFile to a temp
// name plus os.Rename (the same work done with host paths).
func BenchmarkOps(b *testing.B) {
	root := b.TempDir()
	data := bytes.Repeat([]byte("x"), 1024)
	const dirs, files = 100, 100
	paths := make([]string, 0, dirs*files)
	for i := range dirs {
		d := filepath.Join(root, "srv", fmt.Sprintf("d%02d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := range files {
			p := fmt.Sprintf("/srv/d%02d/f%03d", i, j)
			if err := os.WriteFile(filepath.Join(root, p), data, 0o644); err != nil {
				b.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	hostPaths := make([]string, len(paths))
	hostTemps := make([]string, len(paths))
	for i, p := range paths {
		hostPaths[i] = filepath.Join(root, p)
		hostTemps[i] = filepath.Join(root, TempPath(p))
	}
	run := func(name string, userspace bool, op func(r *Root, i int) error) {
		b.Run(name, func(b *testing.B) {
			r := openRoot(b, root, userspace)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if err := op(r, i%len(paths)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	lstat := func(r *Root, i int) error { _, err := r.Lstat(paths[i]); return err }
	run("Lstat/os", false, func(_ *Root, i int) error { _, err := os.Lstat(hostPaths[i]); return err })
	run("Lstat/rootfs", false, lstat)
	run("Lstat/rootfs-userspace", true, lstat)

	write := func(r *Root, i int) error {
		f, err := r.CreateTemp(paths[i], 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if err2 := f.Close(); err == nil {
			err = err2
		}
		if err != nil {
			return err
		}
		return r.CommitTemp(paths[i])
	}
	run("Write/os.WriteFile", false, func(_ *Root, i int) error { return os.WriteFile(hostPaths[i], data, 0o644) })
	run("Write/os-temp-rename", false, func(_ *Root, i int) error {
		if err := os.WriteFile(hostTemps[i], data, 0o644); err != nil {
			return err
		}
		return os.Rename(hostTemps[i], hostPaths[i])
	})
	run("Write/rootfs", false, write)
	run("Write/rootfs-userspace", true, write)
	run("Write/rootfs-Dir", false, func(r *Root, i int) error {
		d, name, err := r.OpenParent(paths[i])
		if err != nil {
			return err
		}
		defer d.Close()
		f, err := d.CreateTemp(name, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if err2 := f.Close(); err == nil {
			err = err2
		}
		if err != nil {
			return err
		}
		return d.CommitTemp(name)
	})
}
