package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// parseAgent parses "cairn agent" as run does, in the environment the test
// set, and returns the command tree it filled.
func parseAgent(t *testing.T) (*CLI, error) {
	t.Helper()
	var c CLI
	parser, err := newParser(&c, kong.Exit(func(code int) { t.Fatalf("kong exited with %d", code) }))
	if err != nil {
		t.Fatal(err)
	}
	emptyEnvUnset(parser.Model.Node)
	_, err = parser.Parse([]string{"agent"})
	return &c, err
}

// TestEmptyEnvIsUnset: a line "CAIRN_X=" of /etc/default/cairn is as if it
// were absent (the setting keeps its default), whatever the setting's type,
// except CAIRN_LISTEN=, which turns the listener off.
func TestEmptyEnvIsUnset(t *testing.T) {
	for _, name := range []string{
		"CAIRN_REPO", "CAIRN_SSH_KEY", "CAIRN_SSH_KNOWN_HOSTS", "CAIRN_HOST", "CAIRN_GROUP",
		"CAIRN_BRANCH", "CAIRN_FACT", "CAIRN_ROOT", "CAIRN_STATE", "CAIRN_TRUST",
		"CAIRN_ALLOW_UNSIGNED", "CAIRN_DRIFT", "CAIRN_MAX_REMOVAL", "CAIRN_CONFIRM",
		"CAIRN_LISTEN", "CAIRN_LOG_FORMAT", "CAIRN_LOG_LEVEL", "CAIRN_INTERVAL",
		"CAIRN_SPLAY", "CAIRN_WEB_CONFIG", "CAIRN_ONCE",
	} {
		t.Setenv(name, "")
	}
	c, err := parseAgent(t)
	if err != nil {
		t.Fatalf("empty CAIRN_* variables: %v", err)
	}
	a := c.Agent
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"branch", a.Branch, "main"},
		{"root", a.Root, "/"},
		{"drift", a.Drift, "report"},
		{"log format", a.LogFormat, "auto"},
		{"allow-unsigned", a.AllowUnsigned, false},
		{"once", a.Once, false},
		{"max-removal", a.MaxRemoval, 25.0},
		{"confirm", a.Confirm, 30 * time.Second},
		{"interval", a.Interval, time.Minute},
		{"splay", a.Splay, time.Duration(0)},
		{"fact", len(a.Fact), 0},
		{"listen (empty turns it off)", a.Listen, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

// TestEnvSet: a CAIRN_* variable with a value still sets its setting, and a
// bad value is still an error that names the variable.
func TestEnvSet(t *testing.T) {
	t.Setenv("CAIRN_ALLOW_UNSIGNED", "true")
	t.Setenv("CAIRN_CONFIRM", "5s")
	t.Setenv("CAIRN_BRANCH", "canary")
	t.Setenv("CAIRN_FACT", "release=12,role=web")
	t.Setenv("CAIRN_LISTEN", "127.0.0.1:1")
	c, err := parseAgent(t)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Agent
	if !a.AllowUnsigned || a.Confirm != 5*time.Second || a.Branch != "canary" || a.Listen != "127.0.0.1:1" ||
		len(a.Fact) != 2 || a.Fact[1] != "role=web" {
		t.Errorf("settings from the environment: %+v", a)
	}

	t.Setenv("CAIRN_CONFIRM", "soon")
	if _, err := parseAgent(t); err == nil {
		t.Error("CAIRN_CONFIRM=soon parsed")
	} else if want := "CAIRN_CONFIRM"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
}
