package blobstore

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestWriteBehindConcurrent: Puts, Opens, Has and Syncs from many
// goroutines at once (with the write-behind buffer, 4ff53b1) lose no blob,
// read none wrong, and a store reopened after Close holds every one.
func TestWriteBehindConcurrent(t *testing.T) {
	for _, max := range []int64{1 << 30, 100 << 10} {
		t.Run("", func(t *testing.T) {
			defer func(was int64) { packMax = was }(packMax)
			packMax = max
			writeBehindConcurrent(t)
		})
	}
}

func writeBehindConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := openTestBlobs(t, dir)
	const workers, each = 8, 150
	var wg sync.WaitGroup
	sums := make([][]string, workers)
	datas := make([][][]byte, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				data := blobData(1+(i*997+w*131)%9000, uint64(w*10000+i))
				sum, err := b.Put(bytes.NewReader(data), "")
				if err != nil {
					t.Error(err)
					return
				}
				sums[w], datas[w] = append(sums[w], sum), append(datas[w], data)
				if !b.Has(sum) {
					t.Errorf("Has(%s) after its Put = false", sum)
				}
				j := (i * 7) % len(sums[w])
				got, err := readBlob(b, sums[w][j])
				if err != nil || !bytes.Equal(got, datas[w][j]) {
					t.Errorf("read back blob %d of worker %d: %v", j, w, err)
				}
				if i%37 == 0 {
					if err := b.Sync(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBlobs(t, dir)
	for w := range workers {
		for i, sum := range sums[w] {
			got, err := readBlob(b, sum)
			if err != nil || !bytes.Equal(got, datas[w][i]) {
				t.Errorf("after reopening, blob %d of worker %d: %v", i, w, err)
			}
		}
	}
}

// TestPutThenSyncMeansStored holds the contract the applier builds on
// (steps: an undo image's content is Put, then Sync before the intent log
// is written): a blob whose Put returned nil is, once a later Sync returns
// nil, in the store. A failed write of the held blobs, made by another
// goroutine's Open that flushed (and got the error), takes the blob out of
// the store: the Sync after it must fail too (lost), though it has nothing
// left to write.
func TestPutThenSyncMeansStored(t *testing.T) {
	b := openTestBlobs(t, filepath.Join(t.TempDir(), "blobs"))
	undo, other := blobData(700, 500), blobData(700, 501)
	undoSum, err := b.Put(bytes.NewReader(undo), "")
	if err != nil {
		t.Fatal(err)
	}
	otherSum, err := b.Put(bytes.NewReader(other), "")
	if err != nil {
		t.Fatal(err)
	}
	// The next write fails, as on a full disk; an fsync still works.
	b.wmu.Lock()
	ro, err := os.Open(b.w.pack.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	b.w.pack = ro
	b.dirtyPacks[b.w.packNo] = ro
	b.wmu.Unlock()
	r, openErr := b.Open(otherSum) // another goroutine's read, which gets the write's error
	if openErr == nil {
		r.Close()
		t.Fatal("the read flushed the held blobs into a read-only pack without an error: the fault was not made")
	}
	if err := b.Sync(); err == nil {
		t.Errorf("Put(undo) and the Sync after it returned nil, but the write that held the blob failed (the store holds it: %v)", b.Has(undoSum))
	}
}
