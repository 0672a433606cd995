package web

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// TestPageVerdict: the line at the top of the page says "converged" only
// when the host is, and otherwise what is wrong, most pressing first.
func TestPageVerdict(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	at := func(c string) *status.Applied { return &status.Applied{Commit: c} }
	to := func(c string) *status.Target { return &status.Target{Commit: c} }
	drift := []status.Drift{{Step: "x"}, {Step: "y"}}
	for _, c := range []struct {
		name string
		doc  status.Document
		want string
		good bool
	}{
		{"converged", status.Document{Converged: true, Applied: at(a), Target: to(a)}, "converged", true},
		{"fresh", status.Document{}, "not converged: nothing applied yet", false},
		{"behind", status.Document{Applied: at(a), Target: to(b)}, "not converged: target not applied", false},
		{"drifted", status.Document{Applied: at(a), Target: to(a), Drift: drift}, "not converged: 2 steps drifted", false},
		{"held and failed", status.Document{Applied: at(a), Target: to(b), Held: &status.Hold{Reason: "r"}, LastRun: &status.Run{Result: "failed"}},
			"not converged: held, last run failed, target not applied", false},
		{"refused", status.Document{Applied: at(a), Target: to(b), LastRun: &status.Run{Result: "refused"}}, "not converged: last run refused, target not applied", false},
		{"converged flag but drift", status.Document{Converged: true, Applied: at(a), Drift: drift[:1]}, "not converged: 1 step drifted", false},
		{"not converged, no reason known", status.Document{Applied: at(a)}, "not converged", false},
	} {
		p := pageData(c.doc, time.Now())
		if p.Verdict != c.want || p.Good != c.good {
			t.Errorf("%s: %q (good %v), want %q (%v)", c.name, p.Verdict, p.Good, c.want, c.good)
		}
	}
}

func TestPageAgo(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	p := data{Now: now}
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "unknown"},
		{now, "0s ago"},
		{now.Add(-59 * time.Second), "59s ago"},
		{now.Add(-5 * time.Minute), "5m ago"},
		{now.Add(-47 * time.Hour), "47h ago"},
		{now.Add(-72 * time.Hour), "3d ago"},
		{now.Add(time.Minute), "in the future"},
	} {
		if got := p.Ago(c.t); got != c.want {
			t.Errorf("Ago(%v) = %q, want %q", c.t, got, c.want)
		}
	}
}

func TestPageShort(t *testing.T) {
	for in, want := range map[string]string{
		strings.Repeat("0123456789", 4): "012345678901",
		strings.Repeat("ab", 32):        "abababababab",
		"v1.2":                          "v1.2",
		strings.Repeat("G", 40):         strings.Repeat("G", 40),
		"":                              "",
	} {
		if got := short(in); got != want {
			t.Errorf("short(%q) = %q, want %q", in, got, want)
		}
	}
}
