package blobstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// blobData returns n bytes that depend on seed.
func blobData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

func blobSum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func openTestBlobs(t testing.TB, dir string) *Store {
	t.Helper()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func mustClose(t testing.TB, b *Store) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// readBlob reads a blob whole; an error if it is missing or corrupt.
func readBlob(b *Store, sum string) ([]byte, error) {
	r, err := b.Open(sum)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func wantBlob(t testing.TB, b *Store, data []byte) {
	t.Helper()
	sum := blobSum(data)
	if !b.Has(sum) {
		t.Fatalf("Has(%.12s) = false for a blob of %d bytes", sum, len(data))
	}
	got, err := readBlob(b, sum)
	if err != nil {
		t.Fatalf("read blob %.12s: %v", sum, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("blob %.12s: read %d bytes that differ from the %d put", sum, len(got), len(data))
	}
}

func wantNoBlob(t testing.TB, b *Store, sum string) {
	t.Helper()
	if b.Has(sum) {
		t.Fatalf("Has(%.12s) = true for a blob that should be absent", sum)
	}
	if _, err := b.Open(sum); err == nil || !strings.Contains(err.Error(), "not in the store") {
		t.Fatalf("Open(%.12s) = %v, want a not-in-the-store error", sum, err)
	}
}

// storeFiles lists a store's files: packs and their sizes, large blobs,
// temporary files.
type storeFiles struct {
	packBytes int64
	packs     int
	loose     []string
	temps     []string
}

func listStore(t testing.TB, dir string) storeFiles {
	t.Helper()
	var sf storeFiles
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case d.IsDir():
		case strings.HasPrefix(name, ".blob.tmp-") || strings.Contains(name, ".tmp-"):
			sf.temps = append(sf.temps, name)
		case strings.HasSuffix(name, ".pack"):
			fi, err := d.Info()
			if err != nil {
				return err
			}
			sf.packs++
			sf.packBytes += fi.Size()
		case name != indexName:
			rel, _ := filepath.Rel(dir, p)
			sf.loose = append(sf.loose, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

// indexRecords counts the records of the index file.
func indexRecords(t testing.TB, dir string) int {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, indexName))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Size()-int64(len(indexMagic))) / recSize
}

func TestBlobsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		how    string // "put" (a reader), "file" (PutFile)
		packed bool
	}{
		{"empty", 0, "put", true},
		{"one byte", 1, "put", true},
		{"1 KiB", 1 << 10, "put", true},
		{"1 KiB file", 1 << 10, "file", true},
		{"largest packed", smallBlobMax, "put", true},
		{"largest packed file", smallBlobMax, "file", true},
		{"smallest loose", smallBlobMax + 1, "put", false},
		{"smallest loose file", smallBlobMax + 1, "file", false},
		{"300 KiB", 300 << 10, "put", false},
		{"2 MiB file", 2 << 20, "file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "blobs")
			b := openTestBlobs(t, dir)
			data := blobData(tc.size, 1)
			other := blobData(tc.size+7, 2) // a neighbour in the same store
			sum := blobSum(data)
			if _, err := b.Put(bytes.NewReader(other), ""); err != nil {
				t.Fatal(err)
			}
			var got string
			var err error
			switch tc.how {
			case "put":
				got, err = b.Put(bytes.NewReader(data), sum)
			case "file":
				src := filepath.Join(t.TempDir(), "src")
				if err := os.WriteFile(src, data, 0o644); err != nil {
					t.Fatal(err)
				}
				got, err = b.PutFile(src, sum)
			}
			if err != nil || got != sum {
				t.Fatalf("put: %q, %v; want %q", got, err, sum)
			}
			wantBlob(t, b, data)
			wantBlob(t, b, other)
			sf := listStore(t, dir)
			if isLoose := slices.Contains(sf.loose, filepath.Join(sum[:2], sum[2:])); isLoose == tc.packed {
				t.Errorf("blob of %d bytes: a file of its own %v, want %v (store: %+v)", tc.size, isLoose, !tc.packed, sf)
			}
			if len(sf.temps) > 0 {
				t.Errorf("temporary files left: %v", sf.temps)
			}
			mustClose(t, b)

			// A new instance, as another process would open it.
			b2 := openTestBlobs(t, dir)
			wantBlob(t, b2, data)
			wantBlob(t, b2, other)
			wantNoBlob(t, b2, blobSum(append(data, 'x')))
		})
	}
}

// TestBlobsDuplicatesAndMismatch: content put twice is stored once, and a
// put whose content does not hash to want stores nothing.
func TestBlobsDuplicatesAndMismatch(t *testing.T) {
	for _, size := range []int{10, smallBlobMax + 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "blobs")
			b := openTestBlobs(t, dir)
			data := blobData(size, 3)
			sum := blobSum(data)
			for i := range 3 {
				want := ""
				if i == 1 {
					want = sum
				}
				if got, err := b.Put(bytes.NewReader(data), want); err != nil || got != sum {
					t.Fatalf("put #%d: %q, %v", i+1, got, err)
				}
			}
			mustClose(t, b)
			b = openTestBlobs(t, dir)
			if got, err := b.Put(bytes.NewReader(data), sum); err != nil || got != sum {
				t.Fatalf("put after reopening: %q, %v", got, err)
			}
			mustClose(t, b)
			sf := listStore(t, dir)
			n := indexRecords(t, dir)
			if size <= smallBlobMax && (sf.packBytes != int64(size) || n != 1 || len(sf.loose) != 0) {
				t.Errorf("4 puts of one small blob: %d pack bytes, %d index records, %d files, want %d, 1, 0", sf.packBytes, n, len(sf.loose), size)
			}
			if size > smallBlobMax && (sf.packBytes != 0 || n != 0 || len(sf.loose) != 1) {
				t.Errorf("4 puts of one large blob: %d pack bytes, %d index records, files %v, want 0, 0, one", sf.packBytes, n, sf.loose)
			}

			// The wrong content for a hash stores nothing.
			b = openTestBlobs(t, dir)
			bad := blobData(size, 4)
			got, err := b.Put(bytes.NewReader(bad), sum)
			var me *HashMismatchError
			if !errors.As(err, &me) || me.Want != sum || me.Got != blobSum(bad) || got != blobSum(bad) {
				t.Fatalf("put of other content: %q, %v; want a *HashMismatchError", got, err)
			}
			src := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(src, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := b.PutFile(src, blobSum(data[1:])); !errors.As(err, &me) {
				t.Fatalf("PutFile of other content: %v; want a *HashMismatchError", err)
			}
			wantNoBlob(t, b, blobSum(bad))
			mustClose(t, b)
			if after := listStore(t, dir); after.packBytes != sf.packBytes || len(after.loose) != len(sf.loose) || len(after.temps) > 0 {
				t.Errorf("a mismatched put changed the store: %+v, before %+v", after, sf)
			}
		})
	}
}

// TestBlobsConcurrent puts overlapping contents from many goroutines (run it
// with -race): each is stored once and all are readable, here and after
// reopening.
func TestBlobsConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := openTestBlobs(t, dir)
	var contents [][]byte
	var packed int64
	for i := range 200 {
		size := 100 + i*13
		if i%50 == 0 {
			size = smallBlobMax + 1 + i
		}
		contents = append(contents, blobData(size, uint64(i)))
		if size <= smallBlobMax {
			packed += int64(size)
		}
	}
	src := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(contents))
	for g := range 8 {
		wg.Go(func() {
			for i := range contents {
				data := contents[(i+g*37)%len(contents)]
				sum := blobSum(data)
				var err error
				if g%2 == 0 {
					_, err = b.Put(bytes.NewReader(data), sum)
				} else {
					name := filepath.Join(src, fmt.Sprintf("%d-%s", g, sum))
					if err = os.WriteFile(name, data, 0o644); err == nil {
						_, err = b.PutFile(name, sum)
					}
				}
				if err == nil && !b.Has(sum) {
					err = fmt.Errorf("%.12s: Has is false right after its Put", sum)
				}
				if err == nil {
					var got []byte
					if got, err = readBlob(b, sum); err == nil && !bytes.Equal(got, data) {
						err = fmt.Errorf("%.12s: read other content", sum)
					}
				}
				if g == 3 && i%40 == 0 {
					err = errors.Join(err, b.Sync())
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mustClose(t, b)
	sf := listStore(t, dir)
	if sf.packBytes != packed || len(sf.loose) != 4 || len(sf.temps) > 0 {
		t.Errorf("store after 8 concurrent puts of each blob: %d pack bytes, %d files, temps %v; want %d, 4, none", sf.packBytes, len(sf.loose), sf.temps, packed)
	}
	b2 := openTestBlobs(t, dir)
	for _, data := range contents {
		wantBlob(t, b2, data)
	}
}

// TestBlobsTornTails damages the store as a killed process or a power loss
// leaves it: what is damaged is ignored, the rest stays, and the next
// writer repairs it so that later blobs are kept too.
func TestBlobsTornTails(t *testing.T) {
	a, bb, c := blobData(1000, 10), blobData(2000, 11), blobData(3000, 12)
	large := blobData(smallBlobMax*2, 13)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) // after a and bb were put and synced
		lost   [][]byte                       // blobs the damage loses
	}{
		{"nothing", func(*testing.T, string) {}, nil},
		{"torn index record", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, indexName), appendRec(nil, recBlob, blobKey(sha256.Sum256(c)), blobLoc{pack: 1, off: 3000, size: 3000})[:30])
		}, nil},
		{"index record of garbage", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, indexName), make([]byte, recSize))
		}, nil},
		{"bad record in the middle", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, indexName), int64(len(indexMagic))+recSize-1) // the CRC of a's record
		}, [][]byte{a}},
		{"index header torn", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, indexName), 5); err != nil {
				t.Fatal(err)
			}
		}, [][]byte{a, bb}},
		{"pack tail without records", func(t *testing.T, dir string) {
			// A killed process packed c and died before Sync.
			k := openTestBlobs(t, dir)
			if _, err := k.Put(bytes.NewReader(c), ""); err != nil {
				t.Fatal(err)
			}
			for _, data := range [][]byte{blobData(500, 14), large} {
				if _, err := k.Put(bytes.NewReader(data), ""); err != nil {
					t.Fatal(err)
				}
			}
			k.wmu.Lock() // it dies: nothing is synced or recorded
			k.pending, k.looseDirty = nil, false
			clear(k.dirtyPacks)
			k.wmu.Unlock()
			mustClose(t, k)
		}, nil},
		{"pack cut short", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, packName(1)), 1500); err != nil {
				t.Fatal(err)
			}
		}, [][]byte{bb}},
		{"pack gone", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, packName(1))); err != nil {
				t.Fatal(err)
			}
		}, [][]byte{a, bb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "blobs")
			b := openTestBlobs(t, dir)
			for _, data := range [][]byte{a, bb} {
				if _, err := b.Put(bytes.NewReader(data), ""); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, b)
			tc.damage(t, dir)

			check := func(b *Store, also ...[]byte) {
				t.Helper()
				for _, data := range append([][]byte{a, bb}, also...) {
					if slices.ContainsFunc(tc.lost, func(l []byte) bool { return bytes.Equal(l, data) }) {
						wantNoBlob(t, b, blobSum(data))
					} else {
						wantBlob(t, b, data)
					}
				}
			}
			b = openTestBlobs(t, dir)
			check(b)
			wantNoBlob(t, b, blobSum(c))
			// The next writer repairs the store; what it adds is kept.
			if _, err := b.Put(bytes.NewReader(c), blobSum(c)); err != nil {
				t.Fatal(err)
			}
			check(b, c)
			mustClose(t, b)
			b = openTestBlobs(t, dir)
			check(b, c)
			// Blobs stored again after the damage are whole.
			for _, data := range tc.lost {
				if _, err := b.Put(bytes.NewReader(data), ""); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, b)
			b = openTestBlobs(t, dir)
			for _, data := range [][]byte{a, bb, c} {
				wantBlob(t, b, data)
			}
			if b.scan.dirty {
				t.Errorf("the index is still damaged after a writer repaired it")
			}
			sf := listStore(t, dir)
			if want := int64(len(a) + len(bb) + len(c)); tc.name == "pack tail without records" && sf.packBytes != want {
				t.Errorf("the pack holds %d bytes, want %d: the tail no record referenced was not cut", sf.packBytes, want)
			}
		})
	}
}

// TestBlobsCorruptOnRead: a blob whose content changed in the store fails
// its read and is dropped, so that putting it again stores it whole.
func TestBlobsCorruptOnRead(t *testing.T) {
	for _, size := range []int{500, smallBlobMax * 3} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "blobs")
			b := openTestBlobs(t, dir)
			keep, data := blobData(300, 20), blobData(size, 21)
			sum := blobSum(data)
			for _, d := range [][]byte{keep, data} {
				if _, err := b.Put(bytes.NewReader(d), ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			if size <= smallBlobMax {
				flipByte(t, filepath.Join(dir, packName(1)), int64(len(keep))+7)
			} else {
				flipByte(t, filepath.Join(dir, sum[:2], sum[2:]), 7)
			}
			if _, err := readBlob(b, sum); err == nil || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("reading a corrupt blob: %v, want an error", err)
			}
			wantNoBlob(t, b, sum)
			wantBlob(t, b, keep)
			mustClose(t, b)
			b = openTestBlobs(t, dir)
			wantNoBlob(t, b, sum)
			if _, err := b.Put(bytes.NewReader(data), sum); err != nil {
				t.Fatal(err)
			}
			wantBlob(t, b, data)
			mustClose(t, b)
			b = openTestBlobs(t, dir)
			wantBlob(t, b, data)
			wantBlob(t, b, keep)
		})
	}
}

// TestBlobsPacksRoll: past packMax, blobs go to a new pack.
func TestBlobsPacksRoll(t *testing.T) {
	defer func(old int64) { packMax = old }(packMax)
	packMax = 10 << 10
	dir := filepath.Join(t.TempDir(), "blobs")
	var all [][]byte
	for run := range 3 {
		b := openTestBlobs(t, dir)
		for i := range 8 {
			data := blobData(3000, uint64(100*run+i))
			all = append(all, data)
			if _, err := b.Put(bytes.NewReader(data), ""); err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, b)
	}
	sf := listStore(t, dir)
	if sf.packs < 7 || sf.packBytes != int64(len(all)*3000) {
		t.Errorf("%d packs of %d bytes in all, want at least 7 of %d", sf.packs, sf.packBytes, len(all)*3000)
	}
	b := openTestBlobs(t, dir)
	for _, data := range all {
		wantBlob(t, b, data)
	}
}

func TestBlobsClean(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := openTestBlobs(t, dir)
	data, large := blobData(100, 30), blobData(smallBlobMax+1, 31)
	for _, d := range [][]byte{data, large} {
		if _, err := b.Put(bytes.NewReader(d), ""); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, b)
	for _, name := range []string{".blob.tmp-123", ".index.tmp-456"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b = openTestBlobs(t, dir)
	b.Clean()
	if sf := listStore(t, dir); len(sf.temps) > 0 {
		t.Errorf("temporary files left after Clean: %v", sf.temps)
	}
	wantBlob(t, b, data)
	wantBlob(t, b, large)
}

// TestCopyBufferNoAlloc: copying from a file uses the pooled buffer, not
// one that *os.File's WriteTo allocates per call.
func TestCopyBufferNoAlloc(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	data := blobData(100<<10, 40)
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	allocs := testing.AllocsPerRun(50, func() {
		f.Seek(0, io.SeekStart)
		h.Reset()
		if n, err := CopyBuffer(h, f); err != nil || n != int64(len(data)) {
			t.Fatalf("CopyBuffer: %d, %v", n, err)
		}
	})
	if allocs >= 0.5 {
		t.Errorf("CopyBuffer from a file: %.2f allocations per call, want none", allocs)
	}
	if !bytes.Equal(h.Sum(nil), func() []byte { s := sha256.Sum256(data); return s[:] }()) {
		t.Error("CopyBuffer copied other content")
	}
}

// TestBlobsLoadTime: an index of 100,000 blobs loads in a few
// milliseconds (the bound is loose: it catches a quadratic load, not noise).
func TestBlobsLoadTime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	writeBigIndex(t, dir, 100_000)
	var best time.Duration
	for range 3 {
		b, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if !b.Has(blobSum(fmt.Append(nil, 99_999))) {
			t.Fatal("the last blob is missing")
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
		if b.idx.live != 100_000 {
			t.Fatalf("%d blobs loaded, want 100000", b.idx.live)
		}
		mustClose(t, b)
	}
	t.Logf("an index of 100000 blobs loads in %v", best)
	if best > 200*time.Millisecond {
		t.Errorf("loading an index of 100000 blobs takes %v", best)
	}
}

func BenchmarkBlobsLoad100k(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "blobs")
	writeBigIndex(b, dir, 100_000)
	for b.Loop() {
		bs, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := bs.load(); err != nil {
			b.Fatal(err)
		}
		bs.Close()
	}
}

// writeBigIndex makes a store of n small blobs, the content of blob i being
// its decimal number.
func writeBigIndex(t testing.TB, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var pack, index []byte
	index = append(index, indexMagic...)
	for i := range n {
		data := fmt.Append(nil, i)
		index = appendRec(index, recBlob, blobKey(sha256.Sum256(data)), blobLoc{pack: 1, off: int64(len(pack)), size: uint32(len(data))})
		pack = append(pack, data...)
	}
	if err := os.WriteFile(filepath.Join(dir, packName(1)), pack, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, indexName), index, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, name string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var one [1]byte
	if _, err := f.ReadAt(one[:], off); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0xff
	if _, err := f.WriteAt(one[:], off); err != nil {
		t.Fatal(err)
	}
}

// TestBlobTable checks the table against a Go map: records of a file (some
// bad, some repeated, some forgotten), then sets and deletes in memory that
// make it grow several times.
func TestBlobTable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	keys := make([]blobKey, 3000)
	for i := range keys {
		keys[i] = blobKey(sha256.Sum256(fmt.Append(nil, i)))
	}
	for _, nfile := range []int{0, 1, 700, 2000} {
		t.Run(fmt.Sprint(nfile), func(t *testing.T) {
			model := map[blobKey]blobLoc{}
			var recs []byte
			var kinds []byte
			for i := range nfile {
				k := keys[r.IntN(len(keys)/2)]
				kind := byte(recBlob)
				if r.IntN(5) == 0 {
					kind = recForget
				}
				recs = appendRec(recs, kind, k, blobLoc{pack: 1 + uint32(r.IntN(3)), off: int64(i), size: uint32(r.IntN(100))})
				kinds = append(kinds, kind)
			}
			tb := newBlobTable(recs, 0)
			for i := range uint32(nfile) {
				k := *tb.key(i)
				switch {
				case i%97 == 5: // a bad record: never entered
				case kinds[i] == recBlob:
					tb.addFile(i)
					model[k] = tb.loc(i)
				default:
					tb.del(k)
					delete(model, k)
				}
			}
			check := func(when string) {
				t.Helper()
				for _, k := range keys {
					got, ok := tb.get(k)
					want, wok := model[k]
					if ok != wok || got != want {
						t.Fatalf("%s: get(%x) = %v, %v; want %v, %v", when, k[:4], got, ok, want, wok)
					}
				}
				seen := map[blobKey]blobLoc{}
				tb.each(func(k blobKey, loc blobLoc) { seen[k] = loc })
				if len(seen) != len(model) || tb.live != len(model) {
					t.Fatalf("%s: each yields %d blobs, live %d; want %d", when, len(seen), tb.live, len(model))
				}
				for k, loc := range model {
					if seen[k] != loc {
						t.Fatalf("%s: each yields %v for %x, want %v", when, seen[k], k[:4], loc)
					}
				}
			}
			check("after loading")
			slots := len(tb.slots)
			for i := range 5000 {
				k := keys[r.IntN(len(keys))]
				if r.IntN(4) == 0 {
					tb.del(k)
					delete(model, k)
				} else {
					loc := blobLoc{pack: 4, off: int64(i), size: 1}
					tb.set(k, loc)
					model[k] = loc
				}
			}
			check("after changes")
			if len(tb.slots) <= slots {
				t.Errorf("the table did not grow: %d slots", len(tb.slots))
			}
		})
	}
}

// TestPutFileNotRegular: PutFile refuses a FIFO (with no writer, so that
// reading it would block), a device that never ends (/dev/zero), a
// socket and a directory, named or through a link, before a byte is read:
// nothing is stored and nothing waits.
func TestPutFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	b := openTestBlobs(t, filepath.Join(dir, "blobs"))
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(src, "zero"))
	os.Symlink("fifo", filepath.Join(src, "to-fifo"))
	os.Mkdir(filepath.Join(src, "dir"), 0o755)
	names := []string{"fifo", "zero", "to-fifo", "dir", "/dev/zero", "/dev/null"}
	if fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0); err == nil {
		defer syscall.Close(fd)
		if syscall.Bind(fd, &syscall.SockaddrUnix{Name: filepath.Join(src, "sock")}) == nil {
			names = append(names, "sock")
		}
	}
	for _, name := range names {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(src, name)
		}
		done := make(chan error, 1)
		go func() {
			_, err := b.PutFile(p, "")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("PutFile(%s): %v, want %v", name, err, ErrNotRegular)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("PutFile(%s) still runs after 10s", name)
		}
	}
	sf := listStore(t, filepath.Join(dir, "blobs"))
	if len(sf.loose) > 0 || len(sf.temps) > 0 {
		t.Errorf("something was stored: %+v", sf)
	}
}

// TestSyncManyBlobs: the records of thousands of blobs put at once (a
// cold apply's) are appended to the index a chunk at a time, not in one
// buffer the size of them all, and let go once written; every blob is in
// the index that the next Open reads.
func TestSyncManyBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := openTestBlobs(t, dir)
	const n = 3000 // more than two chunks of records
	var all [][]byte
	for i := range n {
		data := []byte(fmt.Sprintf("blob %d", i))
		all = append(all, data)
		if err := b.PutBlob(blobSum(data), data); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 2*syncChunk {
		t.Errorf("Sync of %d blobs allocated %d bytes, want at most %d (a chunk of records)", n, got, 2*syncChunk)
	}
	if b.pending != nil {
		t.Errorf("Sync kept room for %d pending records", cap(b.pending))
	}
	mustClose(t, b)
	fi, err := os.Stat(filepath.Join(dir, indexName))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(indexMagic) + n*recSize); fi.Size() != want {
		t.Errorf("index of %d bytes, want %d: the magic and %d records", fi.Size(), want, n)
	}
	b = openTestBlobs(t, dir)
	for _, data := range all {
		wantBlob(t, b, data)
	}
}

// TestBlobsWriteBehind: small blobs reach the pack a buffer at a time, not
// a write each; a blob still in the buffer is read (Open, CopyTo) as any
// other, and Sync writes it; and a buffer whose write fails takes its blobs
// out of the store, with the error to the call that flushed it.
func TestBlobsWriteBehind(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := openTestBlobs(t, dir)
	packSize := func() int64 {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, packName(1)))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	var all [][]byte
	for i := range 100 {
		data := blobData(1000, uint64(200+i))
		all = append(all, data)
		if _, err := b.Put(bytes.NewReader(data), ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := packSize(); got < 100*1000-packBuf || got >= 100*1000 {
		t.Errorf("the pack holds %d bytes of 100,000 put, want all but the last buffer's (at least %d)", got, 100*1000-packBuf)
	}
	wantBlob(t, b, all[99]) // in the buffer: Open writes it first
	if got := packSize(); got != 100*1000 {
		t.Errorf("after reading the last blob the pack holds %d bytes, want 100,000", got)
	}
	last := blobData(1000, 300)
	if _, err := b.Put(bytes.NewReader(last), ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, b)
	b = openTestBlobs(t, dir)
	for _, data := range append(all, last) {
		wantBlob(t, b, data)
	}

	// A failed write: the blobs it held are gone, and the error is the
	// flushing call's.
	held := [][]byte{blobData(700, 400), blobData(700, 401)}
	for _, data := range held {
		if _, err := b.Put(bytes.NewReader(data), ""); err != nil {
			t.Fatal(err)
		}
	}
	b.wmu.Lock()
	b.w.pack.Close() // the next write fails
	b.wmu.Unlock()
	if err := b.Sync(); err == nil {
		t.Fatal("Sync wrote a buffer to a closed pack")
	}
	for _, data := range held {
		wantNoBlob(t, b, blobSum(data))
	}
	wantBlob(t, b, all[0])
}
