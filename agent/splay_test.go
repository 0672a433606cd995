package agent

import (
	"fmt"
	"testing"
	"time"
)

func TestOffset(t *testing.T) {
	const splay = 30 * time.Second
	if Offset("web-1", 0) != 0 {
		t.Error("no splay must give no offset")
	}
	if a, b := Offset("web-1", splay), Offset("web-1", splay); a != b {
		t.Errorf("offset of one host changes: %v, %v", a, b)
	}
	// 1,000 hosts over ten buckets of the splay: each bucket holds about a
	// tenth of them (a fleet spreads its fetches).
	var buckets [10]int
	for i := range 1000 {
		o := Offset(fmt.Sprintf("web-%d.example.org", i), splay)
		if o < 0 || o >= splay {
			t.Fatalf("offset %v outside [0, %v)", o, splay)
		}
		buckets[int(o*10/splay)]++
	}
	for i, n := range buckets {
		if n < 60 || n > 140 {
			t.Errorf("bucket %d of the splay holds %d of 1000 hosts: %v", i, n, buckets)
		}
	}
}
