package promote

import "time"

// SetCacheWait sets how long a run waits for a cache in use, for a test,
// and returns what puts it back.
func SetCacheWait(d time.Duration) (restore func()) {
	old := cacheWait
	cacheWait = d
	return func() { cacheWait = old }
}
