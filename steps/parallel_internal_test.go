package steps

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallelAfter runs groups with barriers in many patterns: every call
// runs once, and none starts before the barriers ahead of it have
// returned. (That a barrier does not wait for the calls before it is
// TestParallelAfterOverlaps'.)
func TestParallelAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	patterns := [][]bool{
		{},
		{true},
		{false},
		{true, true, true},
		{false, false, true},
		{true, false, false, false},
		{false, true, false, true, false},
	}
	for range 40 {
		p := make([]bool, 1+rng.IntN(60))
		for i := range p {
			p[i] = rng.IntN(5) == 0
		}
		patterns = append(patterns, p)
	}
	for _, barrier := range patterns {
		n := len(barrier)
		var mu sync.Mutex
		finished := make([]bool, n)
		calls := make([]int, n)
		var violations []string
		parallelAfter(n, func(i int) bool { return barrier[i] }, func(i int) {
			mu.Lock()
			calls[i]++
			for j := range i {
				if barrier[j] && !finished[j] {
					violations = append(violations, fmt.Sprintf("call %d started before barrier %d returned", i, j))
				}
			}
			mu.Unlock()
			if i%3 == 0 {
				time.Sleep(50 * time.Microsecond) // let the others run ahead
			}
			mu.Lock()
			finished[i] = true
			mu.Unlock()
		})
		for i, c := range calls {
			if c != 1 {
				t.Errorf("%v: call %d ran %d times", barrier, i, c)
			}
		}
		for _, v := range violations {
			t.Errorf("%v: %s", barrier, v)
		}
	}
}

// TestParallelAfterOverlaps holds the first call (not a barrier) until the
// barrier after it has run: with parallel's workers, the barrier must not
// wait for the calls before it.
func TestParallelAfterOverlaps(t *testing.T) {
	barrierRan := make(chan struct{})
	var waited atomic.Bool
	parallelAfter(3, func(i int) bool { return i == 1 }, func(i int) {
		switch i {
		case 0:
			select {
			case <-barrierRan:
			case <-time.After(10 * time.Second):
				waited.Store(true)
			}
		case 1:
			close(barrierRan)
		}
	})
	if waited.Load() {
		t.Fatal("the barrier waited for the call before it")
	}
}
