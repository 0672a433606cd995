package agent

import (
	"hash/fnv"
	"time"
)

// Offset returns the host's fixed share of the splay: a duration in
// [0, splay) derived from a hash of its name, so that a fleet spreads its
// fetches evenly over the splay and each host keeps its slot run after run
// and restart after restart.
func Offset(host string, splay time.Duration) time.Duration {
	if splay <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(host))
	return time.Duration(h.Sum64() % uint64(splay))
}
