package blobstore

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// holeMin is the smallest content that CopySparse looks for holes in: no
// file system has blocks smaller than 512 bytes, and a file under a block
// has none to make; below 4 KiB (the page size, the block of ext4 and tmpfs)
// CopySparse is one write, as a plain copy.
const holeMin = 4 << 10

// zeroBlock is compared with the blocks CopySparse reads.
var zeroBlock [64 << 10]byte

// CopySparse writes everything src yields into the empty file f, from offset
// 0, and returns its length. Every block of f's file system (st_blksize)
// that holds only zeros is skipped, so that it stays a hole, and f is
// truncated to the length at the end: a sparse file comes back sparse, and
// its content (its sha256) is the same. also, if not nil, receives every
// byte (a hash).
func CopySparse(f *os.File, src io.Reader, also io.Writer) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var off, end int64 // bytes read; end of the bytes written
	bs := 0            // the block size, once the content is larger than holeMin; -1: no holes
	for {
		n, rerr := io.ReadFull(src, buf)
		if rerr == io.ErrUnexpectedEOF {
			rerr = io.EOF // the last, short read
		}
		chunk := buf[:n]
		if also != nil {
			also.Write(chunk)
		}
		if bs == 0 && n > 0 {
			if off == 0 && n < holeMin { // all of it, in one write
				if _, err := f.WriteAt(chunk, 0); err != nil {
					return 0, err
				}
				if rerr != io.EOF {
					return 0, rerr
				}
				return int64(n), nil
			}
			bs = blockSize(f, len(buf))
		}
		for i := 0; i < n; {
			if bs < 0 {
				if _, err := f.WriteAt(chunk[i:], off+int64(i)); err != nil {
					return off, err
				}
				end = off + int64(n)
				break
			}
			if i+bs <= n && bytes.Equal(chunk[i:i+bs], zeroBlock[:bs]) {
				i += bs // left a hole
				continue
			}
			// Data: up to the next block of zeros, or to the end with a
			// tail shorter than a block.
			j := i + bs
			for j+bs <= n && !bytes.Equal(chunk[j:j+bs], zeroBlock[:bs]) {
				j += bs
			}
			if j+bs > n {
				j = n
			}
			if _, err := f.WriteAt(chunk[i:j], off+int64(i)); err != nil {
				return off, err
			}
			end = off + int64(j)
			i = j
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	if end < off {
		if err := f.Truncate(off); err != nil {
			return off, err
		}
	}
	return off, nil
}

// blockSize returns the block size of f's file system if it divides
// bufSize (so that the blocks of every read are blocks of the file), else
// -1: no holes are made.
func blockSize(f *os.File, bufSize int) int {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return -1
	}
	bs := int(st.Blksize)
	if bs < 512 || bs > bufSize || bufSize%bs != 0 || bs > len(zeroBlock) {
		return -1
	}
	return bs
}
