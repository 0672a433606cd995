package gitfs

import (
	"crypto/sha256"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// TestSumCacheGenerations: the sums a compile keeps asking for survive
// any number of new ones, the others are dropped, and the cache never
// holds more than two generations.
func TestSumCacheGenerations(t *testing.T) {
	var c sumCache
	key := func(i int) sumKey {
		var h plumbing.Hash
		h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
		return sumKey{store: "/repo", id: h}
	}
	sum := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)}) }
	const hot = 100
	for i := range hot {
		c.put(key(i), sum(i))
	}
	for round := 1; round <= 5; round++ {
		// A compile asks for the hot blobs again, then meets new ones.
		for i := range hot {
			if got, ok := c.get(key(i)); !ok || got != sum(i) {
				t.Fatalf("round %d: hot blob %d: %x, %v", round, i, got, ok)
			}
		}
		for i := range sumGeneration {
			n := round*sumGeneration + hot + i
			c.put(key(n), sum(n))
		}
		if n := len(c.cur) + len(c.old); n > 2*sumGeneration {
			t.Fatalf("round %d: %d sums kept, more than two generations", round, n)
		}
	}
	if _, ok := c.get(key(sumGeneration + hot)); ok {
		t.Error("a blob not asked for since four generations is still kept")
	}
}
