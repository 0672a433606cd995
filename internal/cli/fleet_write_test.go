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
	if err := writeFleet(&b, fleet.Summarize(hosts), hosts); err != nil {
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

// TestWriteFleetUnsettled: hosts at their group's tip that drift, are held
// or failing are listed with why, so the text agrees with the exit code
// (1: not every host is converged); only a fleet converged everywhere is
// said to be.
func TestWriteFleetUnsettled(t *testing.T) {
	tip := strings.Repeat("a", 40)
	host := func(name string, converged bool, drift int, held bool) fleet.Host {
		return fleet.Host{Instance: name + ":9479", Job: "cairn", Host: name, Group: "web", Branch: "main", Up: true,
			Applied: tip, Target: tip, Converged: converged, Drift: drift, Held: held, State: "idle"}
	}
	for _, c := range []struct {
		name  string
		hosts []fleet.Host
		want  []string
		not   []string
	}{
		{"converged", []fleet.Host{host("web-1", true, 0, false), host("web-2", true, 0, false)},
			[]string{"Every host is converged at its group's tip."}, []string{"not converged:"}},
		{"drift and hold", []fleet.Host{host("web-1", true, 0, false), host("web-2", false, 3, false), host("web-10", false, 0, true)},
			[]string{"Every host is at its group's tip.", "2 hosts are at the tip but not converged:", "web-2 ", "3 steps drifted", "web-10 ", "held by a rollback"},
			[]string{"converged at its group's tip", "web-1 "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeFleet(&b, fleet.Summarize(c.hosts), c.hosts); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("%q in:\n%s", w, out)
				}
			}
		})
	}
}
