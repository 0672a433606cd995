package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/agent/fleet"
)

// TestWriteFleetHostileLabels: the labels a host exports (its host name,
// its state, the commits it reports) reach the table quoted when they hold
// a line break or an escape sequence: no forged row, no terminal control.
func TestWriteFleetHostileLabels(t *testing.T) {
	evil := "web-02\nweb  main  0000000  9  9  0  0  0  0  all good\x1b[2J"
	hosts := []fleet.Host{
		{Instance: "10.0.0.1:9479", Job: "cairn", Host: "web-01", Group: "web", Branch: "main", Up: true,
			Applied: strings.Repeat("a", 40), Target: strings.Repeat("a", 40), Converged: true, State: "idle"},
		{Instance: "10.0.0.2:9479", Job: "cairn", Host: evil, Group: "web", Branch: "main", Up: true,
			Applied: "bad\rcommit", Target: strings.Repeat("a", 40), State: "idle\x1b]0;x\x07"},
	}
	var b bytes.Buffer
	if err := writeFleet(&b, fleet.Summarize(hosts)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	if strings.ContainsAny(out, "\x1b\r\x07") {
		t.Errorf("the table holds a control character:\n%q", out)
	}
	if n := strings.Count(out, "\n"); n != 6 {
		t.Errorf("the table has %d lines, want 6 (header, a group, a blank, a sentence, header, a host)", n)
	}
	if want := fmt.Sprintf("%q", evil); !strings.Contains(out, want) {
		t.Errorf("the host name is not quoted as %s:\n%s", want, out)
	}
}
