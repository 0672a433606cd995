package cli_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/internal/cli"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// TestPromoteCannotDecide: promote that cannot ask Prometheus (nothing
// listens) exits 2, not 1: cairn-promote.service counts exit 1 as a
// success (conditions not met), so an outage must not look like one. No
// credential of --repo or --prometheus reaches the output or the log, at
// any level, with or without --json.
func TestPromoteCannotDecide(t *testing.T) {
	work := gittest.New(t)
	work.Commit("main", map[string]string{"hosts.cairn": canaryWebHosts})
	work.Commit("canary", map[string]string{"main.cairn": "# a change\n"})
	bare := filepath.Join(t.TempDir(), "config.git")
	gittest.Run(t, work.Dir, "clone", "-q", "--bare", work.Dir, bare)
	url, _ := gittest.ServeHTTP(t, bare)
	repo := strings.Replace(url, "http://", "http://repouser:repopass1@", 1)
	closed := "http://promuser:prompass1@" + gittest.FreeAddr(t)
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"prometheus down", []string{"--prometheus", closed}, 2},
		{"prometheus down, json, debug", []string{"--prometheus", closed, "--json", "--log-level", "debug"}, 2},
		{"bad prometheus URL", []string{"--prometheus", "ftp://promuser:prompass1@x"}, 2},
		{"unknown group", []string{"--prometheus", closed, "--to", "nosuch", "--log-level", "debug"}, 2},
	} {
		var stdout, stderr bytes.Buffer
		code := cli.Run(append([]string{"promote", "--repo", repo, "--from", "canary", "--to", "web", "--soak", "1s"}, c.args...), &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.code, out)
		}
		for _, secret := range []string{"repopass1", "repouser", "prompass1", "promuser"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: the output shows %q:\n%s", c.name, secret, out)
			}
		}
	}
}
