package blobstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/statedir"
	"golang.org/x/sys/unix"
)

// Store is a content store of files by sha256: every blob a COPY applies and
// every before-image's content, so that an inverse or a rollback never needs
// the source again.
//
// Its directory holds:
//
//	pack-000001.pack  small blobs (at most smallBlobMax bytes), appended one
//	                  after the other
//	index             where each packed blob is: a header, then fixed-size
//	                  records (blob: hash, pack, offset, length; forget: hash),
//	                  each with its CRC-32C
//	ab/cdef…          a large blob, a file of its own, written under a
//	                  temporary name (.blob.tmp-*) and renamed into place
//
// A blob's index record is written only after its pack data is durable
// (Sync), so a record always points at whole content. A process killed
// before Sync leaves pack bytes that no record references, and perhaps a torn
// last index record: both are ignored, and the next writer rewrites a damaged
// index with its good records and cuts the pack back to its last referenced
// byte. So a blob is either whole (its hash checked when it was written) or
// absent. Reading checks the hash again: a blob found corrupt fails the read
// and is forgotten, so that the next Put stores it again.
//
// The index is read once per Store, mapped into memory (see blobTable). Puts
// are visible to Has and Open of the same Store at once, and to other
// processes after Sync or Close. A Store is safe for concurrent use. Only one
// process may write a store at a time (the state lock).
type Store struct {
	dir        string
	createdDir bool // Open made dir: its name is synced with the first Sync

	loadOnce sync.Once
	loadErr  error
	scan     indexScan // what loading found, for the first write

	mu      sync.RWMutex // guards idx, fanout, readers, closed
	idx     *blobTable
	mapped  []byte    // the index file, mapped; idx reads its records
	fanout  [256]bool // the fan-out directories of large blobs that exist
	readers map[uint32]*os.File
	closed  bool

	wmu        sync.Mutex // guards the writer state below; taken before mu
	w          *blobWriter
	pending    []blobRec           // packed since the last Sync: not yet in the index
	dirtyPacks map[uint32]*os.File // packs written since the last Sync
	looseDirty bool                // a large blob was written since the last Sync
	newFiles   bool                // a pack or the index was created since the last Sync
	// held says that the writer holds blobs not yet written to the pack
	// (w.buf), so that a read takes wmu to write them only then, not at
	// every Open of a move's workers. Set before the blob is in idx.
	held atomic.Bool
	// lost is the error of a write of held blobs that failed and dropped
	// them: every Sync after fails with it, so that no blob a Put said it
	// stored is taken as durable. A Store that lost blobs is done with.
	lost error
}

// The layout of a store.
const (
	smallBlobMax = 64 << 10 // larger blobs are files of their own
	indexName    = "index"
	indexMagic   = "cairn-blobs v1\n\x00" // 16 bytes
	recSize      = 56
	recBlob      = 1 // a packed blob: hash, pack, offset, length
	recForget    = 2 // the blob with this hash is no longer in the store
)

// packMax is the size past which the store starts a new pack (a variable
// for the tests).
var packMax int64 = 1 << 30

type blobKey [32]byte

// blobLoc is where a packed blob is.
type blobLoc struct {
	pack uint32
	size uint32
	off  int64
}

type blobRec struct {
	key blobKey
	loc blobLoc
}

// indexScan is what loading the index found.
type indexScan struct {
	dirty    bool             // torn or bad records, or records past a pack's end: rewrite before appending
	maxEnd   map[uint32]int64 // the end of the last byte any good record references, by pack
	packSize map[uint32]int64
	maxPack  uint32
}

// blobWriter is the open index and the pack that Puts append to.
type blobWriter struct {
	index   *os.File // O_APPEND
	idxSize int64
	pack    *os.File
	packNo  uint32
	end     int64      // where the next blob goes
	opened  []*os.File // the packs it opened, to close
	// buf holds the blobs put since the last write to the pack, the bytes
	// from end-len(buf) to end: small blobs reach the pack packBuf bytes
	// a write (flush), not one write each.
	buf []byte
}

// packBuf is the most bytes of small blobs the writer holds before it
// writes them to the pack: 10,000 blobs of 1 KiB put by a cold apply were
// 10,000 writes under the writer's lock, which the preflight's readers
// took in turns.
const packBuf = smallBlobMax

var errBlobsClosed = errors.New("blob store: closed")

// Open opens (creating if needed) the store in dir. The index is read
// on first use.
func Open(dir string) (*Store, error) { return open(dir, true) }

// OpenExisting opens the store in dir without making it: a missing dir is
// an empty store that is not written (a state opened only to be read,
// perhaps on a read-only file system).
func OpenExisting(dir string) (*Store, error) { return open(dir, false) }

func open(dir string, create bool) (*Store, error) {
	b := &Store{dir: dir, idx: newBlobTable(nil, 0), readers: map[uint32]*os.File{}, dirtyPacks: map[uint32]*os.File{}}
	if fi, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return b, nil
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		b.createdDir = true
	} else if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("blob store: %s is not a directory (a link is not followed): refused", dir)
	}
	return b, nil
}

func (b *Store) loosePath(sum string) string {
	return filepath.Join(b.dir, sum[:2], sum[2:])
}

func packName(n uint32) string { return fmt.Sprintf("pack-%06d.pack", n) }

func parsePackName(name string) (uint32, bool) {
	num, ok1 := strings.CutPrefix(name, "pack-")
	num, ok2 := strings.CutSuffix(num, ".pack")
	if !ok1 || !ok2 || len(num) < 6 {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	return uint32(n), err == nil && n > 0
}

// parseSum decodes a sha256 in lower-case hex. It looks each digit up
// (hexValue) and checks them all once at the end: a branch a digit, which
// random digits mispredict a third of the time, made it a tenth of the
// blob store's time in a cold apply, which parses each sum three times.
func parseSum(sum string) (blobKey, bool) {
	var k blobKey
	if len(sum) != 64 {
		return k, false
	}
	var bad byte
	for i := range 32 {
		hi, lo := hexValue[sum[2*i]], hexValue[sum[2*i+1]]
		bad |= hi | lo
		k[i] = hi<<4 | lo&0x0f
	}
	if bad&0x80 != 0 {
		return blobKey{}, false
	}
	return k, true
}

// hexValue is the value of each lower-case hex digit, and 0xff for every
// other byte.
var hexValue = func() (t [256]byte) {
	for c := range t {
		v, ok := unhex(byte(c))
		if !ok {
			v = 0xff
		}
		t[c] = v
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// load reads the index once per Store.
func (b *Store) load() error {
	b.loadOnce.Do(func() { b.loadErr = b.doLoad() })
	return b.loadErr
}

func (b *Store) doLoad() error {
	sc := indexScan{maxEnd: map[uint32]int64{}, packSize: map[uint32]int64{}}
	entries, err := os.ReadDir(b.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // none: an empty store
		return fmt.Errorf("blob store: %w", err)
	}
	var fanout [256]bool
	for _, e := range entries {
		name := e.Name()
		if n, ok := parsePackName(name); ok {
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			sc.packSize[n] = fi.Size()
			sc.maxPack = max(sc.maxPack, n)
		} else if len(name) == 2 && e.IsDir() {
			hi, ok1 := unhex(name[0])
			lo, ok2 := unhex(name[1])
			if ok1 && ok2 {
				fanout[hi<<4|lo] = true
			}
		}
	}
	name := filepath.Join(b.dir, indexName)
	data, err := mapFile(name)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	var idx *blobTable
	switch {
	case data == nil:
		idx = newBlobTable(nil, 0)
	case len(data) < len(indexMagic):
		if !strings.HasPrefix(indexMagic, string(data)) {
			unix.Munmap(data)
			return fmt.Errorf("blob store: %s is not a blob index", name)
		}
		idx = newBlobTable(nil, 0)
		sc.dirty = true // its header was torn
	case string(data[:len(indexMagic)]) != indexMagic:
		unix.Munmap(data)
		return fmt.Errorf("blob store: %s is not a blob index of this version", name)
	default:
		recs := data[len(indexMagic):]
		if len(recs)%recSize != 0 {
			sc.dirty = true // a torn last record
		}
		idx = newBlobTable(recs[:len(recs)/recSize*recSize], 0)
		// The pack the last record was in: most records are in the same one.
		curPack, curSize, curEnd := uint32(0), int64(-1), int64(0)
		for i := uint32(0); i < idx.nfile; i++ {
			r := recs[int(i)*recSize:][:recSize]
			if crc32.Checksum(r[:52], crcTable()) != binary.LittleEndian.Uint32(r[52:]) {
				sc.dirty = true
				continue
			}
			switch r[0] {
			case recBlob:
				loc := idx.loc(i)
				if loc.pack != curPack || curSize < 0 {
					if curSize >= 0 {
						sc.maxEnd[curPack] = curEnd
					}
					curPack, curEnd = loc.pack, sc.maxEnd[loc.pack]
					var ok bool
					if curSize, ok = sc.packSize[loc.pack]; !ok || loc.pack == 0 {
						curSize = 0
					}
				}
				end := loc.off + int64(loc.size)
				if loc.pack == 0 || loc.off < 0 || end > curSize {
					sc.dirty = true // its content is not (all) there
					continue
				}
				curEnd = max(curEnd, end)
				idx.addFile(i)
			case recForget:
				idx.del(*idx.key(i))
			default:
				sc.dirty = true
			}
		}
		if curSize >= 0 && curEnd > 0 {
			sc.maxEnd[curPack] = curEnd
		}
	}
	b.mu.Lock()
	b.idx, b.mapped = idx, data
	b.fanout = fanout
	b.mu.Unlock()
	b.scan = sc
	return nil
}

// mapFile maps a file read-only into memory, its pages read in at once
// (nil if it does not exist or is empty).
func mapFile(name string) ([]byte, error) {
	f, err := statedir.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: name, Err: err}
	}
	return data, nil
}

// appendRec appends an index record to dst. The record is made in dst's
// own bytes: a local array would be moved to the heap (crc32 reads it
// through a function value), 64 bytes of garbage a record.
func appendRec(dst []byte, kind byte, key blobKey, loc blobLoc) []byte {
	dst = append(dst, make([]byte, recSize)...)
	r := dst[len(dst)-recSize:]
	r[0] = kind
	binary.LittleEndian.PutUint32(r[4:], loc.pack)
	binary.LittleEndian.PutUint64(r[8:], uint64(loc.off))
	binary.LittleEndian.PutUint32(r[16:], loc.size)
	copy(r[20:52], key[:])
	binary.LittleEndian.PutUint32(r[52:], crc32.Checksum(r[:52], crcTable()))
	return dst
}

// writer opens the index and a pack for appending, the first time this
// process writes: a damaged index is rewritten with its good records, and
// the pack's bytes that no record references (a killed process's) are cut.
// b.wmu must be held.
func (b *Store) writer() (*blobWriter, error) {
	if b.w != nil {
		return b.w, nil
	}
	if err := b.load(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return nil, errBlobsClosed
	}
	sc := &b.scan
	name := filepath.Join(b.dir, indexName)
	if sc.dirty {
		b.mu.RLock()
		buf := make([]byte, 0, len(indexMagic)+b.idx.live*recSize)
		buf = append(buf, indexMagic...)
		clear(sc.maxEnd)
		b.idx.each(func(k blobKey, loc blobLoc) {
			buf = appendRec(buf, recBlob, k, loc)
			sc.maxEnd[loc.pack] = max(sc.maxEnd[loc.pack], loc.off+int64(loc.size))
		})
		b.mu.RUnlock()
		if err := atomicfile.WriteFile(name, buf, 0o600); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		sc.dirty = false
	}
	index, err := statedir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	w := &blobWriter{index: index}
	fail := func(err error) (*blobWriter, error) {
		index.Close()
		if w.pack != nil {
			w.pack.Close()
		}
		return nil, fmt.Errorf("blob store: %w", err)
	}
	fi, err := index.Stat()
	if err != nil {
		return fail(err)
	}
	if w.idxSize = fi.Size(); w.idxSize == 0 {
		if _, err := index.Write([]byte(indexMagic)); err != nil {
			return fail(err)
		}
		w.idxSize = int64(len(indexMagic))
		b.newFiles = true
	}
	w.packNo = max(sc.maxPack, 1)
	if sc.packSize[w.packNo] >= packMax {
		w.packNo++
	}
	if w.pack, err = b.openPack(w.packNo); err != nil {
		return fail(err)
	}
	w.end = sc.maxEnd[w.packNo]
	if fi, err := w.pack.Stat(); err != nil {
		return fail(err)
	} else if fi.Size() != w.end {
		if err := w.pack.Truncate(w.end); err != nil {
			return fail(err)
		}
	}
	w.opened = append(w.opened, w.pack)
	b.mu.Lock()
	if b.readers[w.packNo] == nil { // else a reader may be using that one
		b.readers[w.packNo] = w.pack
	}
	b.mu.Unlock()
	b.w = w
	return w, nil
}

// openPack opens pack n for reading and writing, creating it if needed.
func (b *Store) openPack(n uint32) (*os.File, error) {
	name := filepath.Join(b.dir, packName(n))
	f, err := statedir.OpenFile(name, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = statedir.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		b.newFiles = true
	}
	return f, err
}

// rollPack starts the next pack. b.wmu must be held.
func (b *Store) rollPack(w *blobWriter) error {
	if err := b.flush(w); err != nil {
		return err
	}
	f, err := b.openPack(w.packNo + 1)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	if err := f.Truncate(0); err != nil { // no record can reference it yet
		f.Close()
		return fmt.Errorf("blob store: %w", err)
	}
	w.packNo++
	w.pack, w.end = f, 0
	w.opened = append(w.opened, f)
	b.mu.Lock()
	if b.readers[w.packNo] == nil {
		b.readers[w.packNo] = f
	}
	b.mu.Unlock()
	return nil
}

// flush writes the blobs the writer holds to its pack. If the write
// fails, those blobs are forgotten (their Puts said they were stored, but
// no record of them will be written, and the next Put of their content
// stores them again), and the error is returned to the Put, Open or Sync
// that asked for the flush, and by every Sync after (lost). b.wmu must be
// held.
func (b *Store) flush(w *blobWriter) error {
	if len(w.buf) == 0 {
		return nil
	}
	from := w.end - int64(len(w.buf))
	_, err := w.pack.WriteAt(w.buf, from)
	w.buf = w.buf[:0]
	b.held.Store(false)
	if err == nil {
		return nil
	}
	kept := b.pending[:0]
	b.mu.Lock()
	for _, r := range b.pending {
		if r.loc.pack == w.packNo && r.loc.off >= from {
			b.idx.del(r.key)
			continue
		}
		kept = append(kept, r)
	}
	b.mu.Unlock()
	b.pending = kept
	w.end = from
	err = fmt.Errorf("blob store: %w", err)
	if b.lost == nil {
		b.lost = err
	}
	return err
}

// flushFor writes the writer's held blobs to the pack if the blob at loc
// is among them, so that it can be read.
func (b *Store) flushFor(loc blobLoc) error {
	if !b.held.Load() {
		return nil
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if w := b.w; w != nil && loc.pack == w.packNo && loc.off+int64(loc.size) > w.end-int64(len(w.buf)) {
		return b.flush(w)
	}
	return nil
}

// Reserve makes room in memory for n blobs about to be put (a cold
// apply's inputs): the tables that find them, and the records the next Sync
// appends to the index, grow once instead of doubling as they fill, each
// time copying what they hold.
func (b *Store) Reserve(n int) {
	if n <= 0 || b.load() != nil {
		return
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	b.idx.reserve(n)
	b.mu.Unlock()
	b.pending = slices.Grow(b.pending, n)
}

// Has reports whether the store holds the blob.
func (b *Store) Has(sum string) bool {
	key, ok := parseSum(sum)
	if !ok || b.load() != nil {
		return false
	}
	b.mu.RLock()
	_, packed := b.idx.get(key)
	fan := b.fanout[key[0]]
	b.mu.RUnlock()
	if packed {
		return true
	}
	if !fan {
		return false
	}
	_, err := os.Lstat(b.loosePath(sum))
	return err == nil
}

// Open opens a blob for reading. The reader checks the content's hash: the
// Read that reaches the end of a corrupt blob fails, and the store forgets
// the blob.
func (b *Store) Open(sum string) (io.ReadCloser, error) {
	key, ok := parseSum(sum)
	if !ok {
		return nil, fmt.Errorf("blob %q is not a sha256", sum)
	}
	if err := b.load(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	loc, packed := b.idx.get(key)
	f := b.readers[loc.pack]
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return nil, errBlobsClosed
	}
	if packed {
		if err := b.flushFor(loc); err != nil {
			return nil, err
		}
		if f == nil {
			var err error
			if f, err = b.packReader(loc.pack); err != nil {
				return nil, err
			}
		}
		return &blobReader{b: b, sum: sum, key: key, packed: true, r: io.NewSectionReader(f, loc.off, int64(loc.size)), h: sha256.New()}, nil
	}
	lf, err := b.openLoose(sum)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is not in the store %s", sum, b.dir)
	}
	if err != nil {
		return nil, err
	}
	return &blobReader{b: b, sum: sum, key: key, r: lf, f: lf, h: sha256.New()}, nil
}

// openLoose opens a blob of its own for reading: its fan-out directory
// must be one, not a link.
func (b *Store) openLoose(sum string) (*os.File, error) {
	name := b.loosePath(sum)
	if err := b.fanoutDir(filepath.Dir(name)); err != nil {
		return nil, err
	}
	return statedir.OpenFile(name, os.O_RDONLY, 0)
}

// fanoutDir checks that dir, a fan-out directory, is a directory if it is
// there: a link is not followed.
func (b *Store) fanoutDir(dir string) error {
	if fi, err := os.Lstat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("blob store: %s is not a directory (a link is not followed): refused", dir)
	}
	return nil
}

// packReader returns the descriptor this process reads pack n through.
func (b *Store) packReader(n uint32) (*os.File, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errBlobsClosed
	}
	if f := b.readers[n]; f != nil {
		return f, nil
	}
	f, err := statedir.OpenFile(filepath.Join(b.dir, packName(n)), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	b.readers[n] = f
	return f, nil
}

// blobReader reads a blob and checks its hash at the end.
type blobReader struct {
	b      *Store
	sum    string
	key    blobKey
	packed bool
	r      io.Reader
	f      *os.File // a loose blob's file
	h      hash.Hash
	bad    error // the content did not hash to sum
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.bad != nil {
		return 0, r.bad
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		var got blobKey
		if r.h.Sum(got[:0]); got != r.key {
			r.b.forget(r.sum, r.key, r.packed)
			r.bad = fmt.Errorf("blob %s in %s is corrupt (its content hashes to %x): it is dropped from the store", r.sum, r.b.dir, got)
			return n, r.bad
		}
	}
	return n, err
}

func (r *blobReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// forget drops a corrupt blob: a loose file is removed, a packed blob gets a
// forget record.
func (b *Store) forget(sum string, key blobKey, packed bool) {
	if !packed {
		os.Remove(b.loosePath(sum))
		return
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	b.idx.del(key)
	b.mu.Unlock()
	w, err := b.writer()
	if err != nil {
		return
	}
	if _, err := w.index.Write(appendRec(nil, recForget, key, blobLoc{})); err != nil {
		w.index.Truncate(w.idxSize)
		return
	}
	w.idxSize += recSize
}

// Put copies r into the store and returns its sha256. If want is not empty
// and the content hashes otherwise, nothing is stored and the error says so.
func (b *Store) Put(r io.Reader, want string) (string, error) {
	if err := b.load(); err != nil {
		return "", err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:smallBlobMax]
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return b.putSmall(buf[:n], want)
	case err != nil:
		return "", fmt.Errorf("blob store: %w", err)
	}
	var one [1]byte // buf is full: is there more?
	m, err := io.ReadFull(r, one[:])
	switch {
	case err == io.EOF:
		return b.putSmall(buf, want)
	case err != nil:
		return "", fmt.Errorf("blob store: %w", err)
	}
	return b.putLarge(io.MultiReader(bytes.NewReader(buf), bytes.NewReader(one[:m]), r), want)
}

// PutBlob stores data, whose sha256 is sum, unless the store holds it
// already: the way in of content whose hash the caller has computed (the
// compiler's rendered content, through compiler.Blobs). Content that hashes
// otherwise is a *HashMismatchError and is not stored.
func (b *Store) PutBlob(sum string, data []byte) error {
	if b.Has(sum) {
		return nil
	}
	if err := b.load(); err != nil {
		return err
	}
	var err error
	if len(data) <= smallBlobMax {
		_, err = b.putSmall(data, sum)
	} else {
		_, err = b.putLarge(bytes.NewReader(data), sum)
	}
	return err
}

// MaxSourceSize is the most one file put with PutFile (a COPY source, the
// blob of a COPY -, a PLAYBOOK or a file of a KUBECTL-APPLY directory) may
// hold. The store keeps a copy of every such file, so a larger one would
// fill its file system rather than configure the host.
const MaxSourceSize = 16 << 30

// ErrNotRegular is the error of a file PutFile will not store: a FIFO, a
// device, a socket or a directory. It is refused before a byte is read.
var ErrNotRegular = errors.New("not a regular file")

// PutFile stores the regular file at name, checking it against want if not
// empty. Anything else (a FIFO, a device such as /dev/zero, a socket) is
// ErrNotRegular, found by a stat before the file is opened, and again by
// fstat on a descriptor opened non-blocking, should one have taken its
// place meanwhile: nothing is read and nothing waits. A file larger than
// MaxSourceSize is refused too; one that grows meanwhile is stored as far
// as it was when opened, and want catches the change.
func (b *Store) PutFile(name, want string) (string, error) {
	if want != "" && b.Has(want) {
		return want, nil
	}
	if err := b.load(); err != nil {
		return "", err
	}
	fd, size, err := openSource(name)
	if err != nil {
		return "", err
	}
	if size > smallBlobMax {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		return b.Put(io.LimitReader(f, size), want)
	}
	defer unix.Close(fd)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:size]
	n := 0
	for n < len(buf) {
		m, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, buf[n:]) })
		if err != nil {
			return "", &os.PathError{Op: "read", Path: name, Err: err}
		}
		if m == 0 {
			break // the file shrank meanwhile
		}
		n += m
	}
	// A file that grew meanwhile is stored as far as it was read: it has the
	// hash it is stored under, and want catches the change.
	return b.putSmall(buf[:n], want)
}

// openSource opens the source file name for reading and returns its
// descriptor and size, under the rules of PutFile: a regular file of at most
// MaxSourceSize, checked by a stat before the open and by fstat after it,
// opened non-blocking so that nothing waits. Errors are *os.PathError naming
// name, so that they blame the source.
func openSource(name string) (fd int, size int64, err error) {
	var st unix.Stat_t
	if err := ignoringEINTRErr(func() error { return unix.Stat(name, &st) }); err != nil {
		return -1, 0, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, 0, &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	// System calls of its own rather than os.Open, which would try (and
	// fail) to add each file to the poller: one call fewer per source.
	fd, err = ignoringEINTR(func() (int, error) {
		return unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	})
	if err != nil {
		return -1, 0, &os.PathError{Op: "open", Path: name, Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		unix.Close(fd)
		return -1, 0, &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	case st.Size > MaxSourceSize:
		unix.Close(fd)
		return -1, 0, &os.PathError{Op: "read", Path: name, Err: fmt.Errorf("%d bytes, more than the %d GiB a source may hold", st.Size, MaxSourceSize>>30)}
	}
	return fd, st.Size, nil
}

func ignoringEINTRErr(fn func() error) error {
	_, err := ignoringEINTR(func() (int, error) { return 0, fn() })
	return err
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// putSmall appends data to the pack.
func (b *Store) putSmall(data []byte, want string) (string, error) {
	key := blobKey(sha256.Sum256(data))
	var digits [2 * sha256.Size]byte
	hex.Encode(digits[:], key[:])
	sum := want // the string of the sum, made only if want does not say it
	if string(digits[:]) != want {
		sum = string(digits[:])
		if want != "" {
			return sum, &HashMismatchError{Got: sum, Want: want}
		}
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.RLock()
	_, ok := b.idx.get(key)
	b.mu.RUnlock()
	if ok {
		return sum, nil
	}
	w, err := b.writer()
	if err != nil {
		return "", err
	}
	if w.end > 0 && w.end+int64(len(data)) > packMax {
		if err := b.rollPack(w); err != nil {
			return "", err
		}
	}
	if len(w.buf)+len(data) > packBuf {
		if err := b.flush(w); err != nil {
			return "", err
		}
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, packBuf)
	}
	w.buf = append(w.buf, data...) // it fits: packBuf is smallBlobMax, the most data holds
	b.held.Store(true)
	loc := blobLoc{pack: w.packNo, off: w.end, size: uint32(len(data))}
	w.end += int64(len(data))
	b.dirtyPacks[w.packNo] = w.pack
	b.pending = append(b.pending, blobRec{key, loc})
	b.mu.Lock()
	b.idx.set(key, loc)
	b.mu.Unlock()
	return sum, nil
}

// putLarge streams r into a file of its own.
func (b *Store) putLarge(r io.Reader, want string) (string, error) {
	tmp, err := os.CreateTemp(b.dir, ".blob.tmp-*")
	if err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	size, err := CopySparse(tmp, r, h) // a sparse file's blob stays sparse
	if err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return sum, &HashMismatchError{Got: sum, Want: want}
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	key, _ := parseSum(sum)
	seen := func() { // Has looks for large blobs only in fan-out directories it knows
		b.mu.Lock()
		b.fanout[key[0]] = true
		b.mu.Unlock()
	}
	// Under the lock, so that a blob another goroutine put is found only
	// once a Sync will make it durable.
	b.wmu.Lock()
	defer b.wmu.Unlock()
	dst := b.loosePath(sum)
	if err := b.fanoutDir(filepath.Dir(dst)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		seen()
		return sum, nil
	}
	err = os.Rename(tmp.Name(), dst)
	if errors.Is(err, fs.ErrNotExist) { // the fan-out directory is made once
		if err = os.Mkdir(filepath.Dir(dst), 0o700); err == nil || errors.Is(err, fs.ErrExist) {
			err = os.Rename(tmp.Name(), dst)
		}
	}
	if err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	tmp = nil
	b.looseDirty = true
	seen()
	return sum, nil
}

// Sync makes every blob put so far durable and visible to other processes:
// the packs are synced (the whole file system, if a large blob was written),
// then the new index records are appended and the index synced.
func (b *Store) Sync() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.w != nil {
		if err := b.flush(b.w); err != nil {
			return err
		}
	}
	if err := b.lost; err != nil {
		return fmt.Errorf("%w (blobs put were dropped)", err)
	}
	if len(b.pending) == 0 && !b.looseDirty && !b.newFiles {
		return nil
	}
	if b.looseDirty {
		if err := statedir.SyncFS(b.dir); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
	} else {
		for _, f := range b.dirtyPacks {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("blob store: %w", err)
			}
		}
	}
	if b.newFiles {
		if err := atomicfile.SyncDir(b.dir); err != nil {
			return err
		}
		if b.createdDir {
			if err := atomicfile.SyncDir(filepath.Dir(b.dir)); err != nil {
				return err
			}
		}
	}
	if len(b.pending) > 0 {
		if err := b.appendPending(); err != nil {
			return err
		}
	}
	if b.w != nil && (len(b.pending) > 0 || b.newFiles) {
		if err := b.w.index.Sync(); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
	}
	if cap(b.pending) > syncChunk/recSize {
		b.pending = nil // thousands of blobs put at once (a cold apply): let the records go
	} else {
		b.pending = b.pending[:0]
	}
	clear(b.dirtyPacks)
	b.looseDirty, b.newFiles, b.createdDir = false, false, false
	return nil
}

// syncChunk bounds the bytes of index records Sync writes at once: the
// records of 10,000 blobs put by a cold apply were one buffer of 560 KB,
// at its peak of memory.
const syncChunk = 64 << 10

// appendPending appends the index records of the pending blobs (those not
// forgotten meanwhile) to the index, syncChunk bytes a write; if a write
// fails, the index is cut back to where it ended. b.wmu must be held, and
// something packed (b.w set).
func (b *Store) appendPending() error {
	w := b.w
	per := syncChunk / recSize
	buf := make([]byte, 0, min(len(b.pending), per)*recSize)
	written := int64(0)
	for pending := b.pending; len(pending) > 0; {
		n := min(len(pending), per)
		buf = buf[:0]
		b.mu.RLock()
		for _, p := range pending[:n] {
			if loc, ok := b.idx.get(p.key); ok && loc == p.loc { // not forgotten meanwhile
				buf = appendRec(buf, recBlob, p.key, p.loc)
			}
		}
		b.mu.RUnlock()
		pending = pending[n:]
		if _, err := w.index.Write(buf); err != nil {
			w.index.Truncate(w.idxSize)
			return fmt.Errorf("blob store: %w", err)
		}
		written += int64(len(buf))
	}
	w.idxSize += written
	return nil
}

// Close syncs the store (see Sync) and closes its files.
func (b *Store) Close() error {
	b.loadOnce.Do(func() {}) // no load after Close
	err := b.Sync()
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return err
	}
	b.closed = true
	b.idx = newBlobTable(nil, 0) // it reads the mapping
	if b.mapped != nil {
		unix.Munmap(b.mapped)
		b.mapped = nil
	}
	if b.w != nil {
		b.w.index.Close()
		for _, f := range b.w.opened {
			f.Close() // if not among the readers below; a second Close does nothing
		}
		b.w = nil
	}
	for n, f := range b.readers {
		f.Close()
		delete(b.readers, n)
	}
	return err
}

// Clean removes temporary files that a process killed mid-write left.
func (b *Store) Clean() {
	entries, _ := os.ReadDir(b.dir)
	for _, e := range entries {
		if atomicfile.IsTemp(e.Name()) || strings.HasPrefix(e.Name(), ".blob.tmp-") {
			os.Remove(filepath.Join(b.dir, e.Name()))
		}
	}
}

// HashMismatchError says that content does not hash to what the journal
// says.
type HashMismatchError struct{ Got, Want string }

func (e *HashMismatchError) Error() string {
	return "sha256 mismatch: content has " + e.Got + ", journal says " + e.Want
}

// HashReader returns the sha256 of everything r yields.
func HashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := CopyBuffer(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CopyBuffer copies with a pooled buffer, for the many small files of a
// journal. It reads and writes itself: io.CopyBuffer would hand an *os.File
// source to its WriteTo, which allocates a buffer of its own each call.
func CopyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
			if nw != nr {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
