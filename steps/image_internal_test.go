package steps

import "testing"

// TestImageMtime checks which modification times an image keeps: every
// time RFC 3339 can write, and none outside the years 0 to 9999.
func TestImageMtime(t *testing.T) {
	for _, c := range []struct {
		sec  int64
		keep bool
	}{
		{0, true},
		{1_700_000_000, true},
		{-62_000_000_000, true},  // year 35
		{253_402_300_799, true},  // 9999-12-31T23:59:59Z
		{253_402_300_800, false}, // year 10000
		{400_000_000_000, false}, // year 14645
		{-62_200_000_000, false}, // year -1
	} {
		got := imageMtime(c.sec, 0)
		if got.IsZero() == c.keep {
			t.Errorf("imageMtime(%d): %v, kept %v, want kept %v", c.sec, got, !got.IsZero(), c.keep)
		}
		if c.keep && got.Unix() != c.sec {
			t.Errorf("imageMtime(%d): %v, want that second", c.sec, got)
		}
	}
}
