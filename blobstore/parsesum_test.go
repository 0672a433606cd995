package blobstore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// parseSumReference is what parseSum must answer: 64 lower-case hex digits
// decoded, anything else refused.
func parseSumReference(sum string) (blobKey, bool) {
	var k blobKey
	if len(sum) != 64 || strings.ToLower(sum) != sum {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(sum)); err != nil {
		return blobKey{}, false
	}
	return k, true
}

func TestParseSum(t *testing.T) {
	good := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []string{
		good,
		strings.Repeat("0", 64),
		strings.Repeat("f", 64),
		strings.ToUpper(good),
		good[:63] + "A",
		good[:63] + "g",
		good[:63] + "/",
		good[:63] + ":",
		good[:63] + "`",
		good[:62] + "\xff0",
		good[:63],
		good + "0",
		"",
	}
	for i := range 64 { // every place of a bad digit
		cases = append(cases, good[:i]+"x"+good[i+1:])
	}
	for _, sum := range cases {
		got, gotOK := parseSum(sum)
		want, wantOK := parseSumReference(sum)
		if got != want || gotOK != wantOK {
			t.Errorf("parseSum(%q) = %x, %v; want %x, %v", sum, got, gotOK, want, wantOK)
		}
	}
}

// FuzzParseSum holds parseSum to the reference on any string.
func FuzzParseSum(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add(strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, sum string) {
		got, gotOK := parseSum(sum)
		want, wantOK := parseSumReference(sum)
		if got != want || gotOK != wantOK {
			t.Errorf("parseSum(%q) = %x, %v; want %x, %v", sum, got, gotOK, want, wantOK)
		}
	})
}

// TestPutKnownSumNoAlloc: putting small content whose sha256 the caller
// names makes no string of it (the sum returned is the caller's), whether
// the store holds it already or not; a mismatch still names both sums.
func TestPutKnownSumNoAlloc(t *testing.T) {
	b := openTestBlobs(t, filepath.Join(t.TempDir(), "blobs"))
	data := []byte("known content\n")
	sum := blobSum(data)
	if got, err := b.Put(bytes.NewReader(data), sum); err != nil || got != sum {
		t.Fatalf("Put: %q, %v", got, err)
	}
	r := bytes.NewReader(data)
	allocs := testing.AllocsPerRun(50, func() {
		r.Reset(data)
		if got, err := b.Put(r, sum); err != nil || got != sum {
			t.Fatalf("Put again: %q, %v", got, err)
		}
	})
	if allocs >= 0.5 {
		t.Errorf("Put of a blob held, its sum given: %.2f allocations, want none", allocs)
	}
	other := blobSum([]byte("other\n"))
	got, err := b.Put(bytes.NewReader(data), other)
	var mismatch *HashMismatchError
	if !errors.As(err, &mismatch) || mismatch.Got != sum || mismatch.Want != other || got != sum {
		t.Errorf("Put with the wrong sum: %q, %v; want a mismatch of %s for %s", got, err, sum, other)
	}
}

// TestReserve: after Reserve(n), putting n small blobs grows none of the
// store's tables (their arrays stay where they are), every blob is found,
// and they are durable after Sync as without it.
func TestReserve(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := openTestBlobs(t, dir)
	if _, err := b.Put(bytes.NewReader([]byte("before\n")), ""); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	b.Reserve(n)
	slots, keys, locs := &b.idx.slots[0], &b.idx.keys[:1][0], &b.idx.locs[:1][0]
	pending := &b.pending[:1][0]
	var sums []string
	for i := range n {
		sum, err := b.Put(bytes.NewReader(fmt.Appendf(nil, "blob %d\n", i)), "")
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
	}
	if &b.idx.slots[0] != slots || &b.idx.keys[0] != keys || &b.idx.locs[0] != locs || &b.pending[0] != pending {
		t.Error("a table grew after Reserve")
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = openTestBlobs(t, dir)
	for i, sum := range sums {
		if !b.Has(sum) {
			t.Fatalf("blob %d is not there after Sync and a new Open", i)
		}
	}
}
