package steps

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallel calls fn(i) for every i in [0, n) on a few goroutines: the file
// work of a journal is many small system calls, which overlap well.
func parallel(n int, fn func(i int)) {
	workers := min(n, 2*runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// parallelAfter is parallel where some calls must wait: fn(i) starts only
// once fn(j) has returned for every j < i for which barrier(j) holds. The
// barriers of a group of ops are its MKDIRs: the files and directories
// after one may be made in it, while the ops before it need not have
// finished (a cold apply's directory is made while the files of the one
// before are written). The calls are taken in order, so the earliest
// unfinished barrier waits for nothing and the wait always ends; barriers
// finish in order, and one count of them is the whole state.
func parallelAfter(n int, barrier func(i int) bool, fn func(i int)) {
	before := make([]int32, n) // the barriers before each call
	barriers := int32(0)
	for i := range n {
		before[i] = barriers
		if barrier(i) {
			barriers++
		}
	}
	if barriers == 0 || (barriers == 1 && barrier(n-1)) {
		parallel(n, fn)
		return
	}
	var (
		mu       sync.Mutex
		finished = sync.NewCond(&mu)
		done     atomic.Int32 // the barriers finished, which are the first ones
	)
	parallel(n, func(i int) {
		if done.Load() < before[i] {
			mu.Lock()
			for done.Load() < before[i] {
				finished.Wait()
			}
			mu.Unlock()
		}
		fn(i)
		if barrier(i) {
			mu.Lock()
			done.Add(1)
			mu.Unlock()
			finished.Broadcast()
		}
	})
}
