package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// need skips the test when ok is false, unless CI is "true", where a
// missing tool or privilege is a failure.
func need(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// testWriter passes the program's progress to t.Log, line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestFleet runs the program with a small fleet (2 canaries, 3 web, 2 db,
// interval 4 s) through the whole scenario, as make fleet runs 100 agents:
// every phase must reach its expected state, and the figures must be
// written.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("the fleet takes a minute")
	}
	need(t, os.Geteuid() == 0, "the fleet runs as root (the agents apply as root)")
	for _, tool := range []string{"git", "ssh-keygen", "prometheus"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" is not installed (Debian packages git, openssh-client, prometheus)")
	}

	dir := t.TempDir()
	cairn := filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", cairn, "github.com/cairn-cm/cairn/cmd/cairn")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build cairn: %v\n%s", err, out)
	}
	// A port free on the first agent's address: the others are as good.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()

	out := filepath.Join(dir, "fleet.md")
	scratch := filepath.Join(dir, "scratch")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = run(ctx, []string{"-canary", "2", "-web", "3", "-db", "2", "-interval", "4s", "-confirm", "1s",
		"-soak", "5s", "-scrape", "1s", "-drift", "3", "-port", port, "-cairn", cairn,
		"-rules", "../../prometheus/alerts.yml", "-out", out, "-dir", scratch}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("the scratch directory is left without -keep: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| bootstrap |", "| promotion |", "| failing CHECK on canary |", "| drift on 3 hosts |",
		"| push → applied, polling (7 hosts) | p50 ", "| idle RSS per agent | min ", "| git daemon CPU per 100 polls | ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the results lack %q:\n%s", want, b)
		}
	}
	t.Logf("results:\n%s", b)
	// Nothing of the fleet may be left running: every agent had --listen
	// on 127.0.0.N:port.
	for i := 2; i < 9; i++ {
		addr := net.JoinHostPort("127.0.0."+strconv.Itoa(i), port)
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("something still listens on %s after the run", addr)
		}
	}
}
