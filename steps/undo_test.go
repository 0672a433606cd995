package steps

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestUndoReverse checks the order undos run in, and that an undo that
// must wait for a later one (a package another package of the same move
// needs) succeeds on a second pass, while one that always fails is reported.
func TestUndoReverse(t *testing.T) {
	tests := []struct {
		name string
		n    int
		// blockedBy[i] = j: undo i fails while undo j has not run.
		blockedBy map[int]int
		broken    []int
		wantOrder []int // the successful undos, in order
		wantErrs  int
	}{
		{"plain reverse order", 3, nil, nil, []int{2, 1, 0}, 0},
		{"a dependency listed first", 3, map[int]int{1: 0}, nil, []int{2, 0, 1}, 0},
		{"a chain against the order", 3, map[int]int{2: 1, 1: 0}, nil, []int{0, 1, 2}, 0},
		{"one broken for good", 3, nil, []int{1}, []int{2, 0}, 1},
		{"broken blocks its dependent", 2, map[int]int{1: 0}, []int{0}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var order []int
			done := map[int]bool{}
			errs := undoReverse(tt.n, func(i int) error {
				if slices.Contains(tt.broken, i) {
					return fmt.Errorf("op %d: broken", i)
				}
				if j, ok := tt.blockedBy[i]; ok && !done[j] {
					return errors.New("blocked")
				}
				done[i] = true
				order = append(order, i)
				return nil
			})
			if !slices.Equal(order, tt.wantOrder) {
				t.Errorf("undone in order %v, want %v", order, tt.wantOrder)
			}
			if len(errs) != tt.wantErrs {
				t.Errorf("%d errors (%v), want %d", len(errs), errs, tt.wantErrs)
			}
		})
	}
}
