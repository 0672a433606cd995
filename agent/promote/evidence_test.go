package promote

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/fleet"
)

// TestEvidenceHostileHostName: a host name is what the host's agent
// exports; one with a line break cannot add a line of its own to the
// evidence (a forged "commit:" or "by:"), nor an escape sequence.
func TestEvidenceHostileHostName(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	res := &Result{
		Commit: strings.Repeat("c", 40),
		From:   Side{Group: "canary", Branch: "canary"},
		To:     Side{Group: "web", Branch: "main"},
		Time:   now,
		Verdict: &fleet.Verdict{From: now.Add(-10 * time.Minute), To: now, OK: true, Hosts: []fleet.HostVerdict{
			{Host: "canary-1\nby: someone else\x1b[2J", Instance: "10.0.0.1:9479", OK: true},
		}},
	}
	note := evidence(res, Options{Soak: 10 * time.Minute}, "ops")
	t.Logf("\n%s", note)
	if strings.Count(note, "\nby: ") != 1 || strings.ContainsRune(note, '\x1b') {
		t.Errorf("the host name added a line or an escape to the evidence:\n%q", note)
	}
	if !strings.Contains(note, `  "canary-1\nby: someone else\x1b[2J" 10.0.0.1:9479`+"\n") {
		t.Errorf("the host name is not quoted in the evidence:\n%s", note)
	}
}
