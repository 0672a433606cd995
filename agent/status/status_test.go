package status

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

const (
	c1 = "0123456789abcdef0123456789abcdef01234567"
	c2 = "89abcdef0123456789abcdef0123456789abcdef"
	c3 = "fedcba9876543210fedcba9876543210fedcba98"
)

// documents are the cases of the golden files: testdata/NAME.json and
// testdata/NAME.txt.
var documents = map[string]Document{
	// A fresh agent before its first run: every list empty, every record null.
	"fresh": {Host: "web1", Group: "web", Branch: "main", State: "idle", StateSince: at("2026-12-03T10:00:00Z"), Version: "0.4.0"},
	// A host that moved, drifted since, and remembers a bad commit.
	"drifted": {
		Host: "web1", Group: "web", Branch: "main", State: "idle", StateSince: at("2026-12-03T10:05:03Z"),
		Applied: &Applied{Commit: c1, Time: at("2026-12-03T10:01:02Z"), Steps: 42, Branch: "main", Group: "web", Committed: at("2026-12-03T09:58:00Z")},
		Target:  &Target{Commit: c2, Branch: "main", Committed: at("2026-12-03T10:03:00Z"), Fetched: at("2026-12-03T10:05:00Z")},
		Drift: []Drift{
			{Step: "FILE /etc/motd mode=0644", Source: "site.cairn:12:3", Diff: "-hello\n+hallo\n"},
			{Step: "USER deploy", Source: "users.cairn:4:1", Diff: "shell: /bin/sh, want /bin/bash"},
		},
		LastRun: &Run{
			Started: at("2026-12-03T10:05:00Z"), Finished: at("2026-12-03T10:05:03.25Z"), Result: "failed",
			Commit: c2, From: c1, Ops: 7, Error: "site.cairn:20:3: CHECK http://127.0.0.1/: connection refused",
			States: []string{"fetching", "verifying", "compiling", "planning", "applying", "failed"},
		},
		BadCommits: []BadCommit{{Commit: c2, Reason: "failed", From: c1, Since: at("2026-12-03T10:05:03Z")}},
		RecentRuns: []Run{
			{Started: at("2026-12-03T10:05:00Z"), Finished: at("2026-12-03T10:05:03.25Z"), Result: "failed", Commit: c2, From: c1, Ops: 7,
				Error: "site.cairn:20:3: CHECK http://127.0.0.1/: connection refused", States: []string{"fetching", "verifying", "compiling", "planning", "applying", "failed"}},
			{Started: at("2026-12-03T10:01:00Z"), Finished: at("2026-12-03T10:01:02Z"), Result: "applied", Commit: c1, Ops: 42},
		},
		Version: "0.4.0",
	},
	// A pinned host, converged at its pin, with hostile strings everywhere.
	"held": {
		Host: "evil\x1b[2Jhost", Group: "web\nfake: line", Branch: "main", State: "held", StateSince: at("2026-12-03T11:00:00Z"),
		Held:      &Hold{Reason: "rollback by root\u202e", Commit: c3, Since: at("2026-12-03T11:00:00Z")},
		Applied:   &Applied{Commit: c3, Time: at("2026-12-03T11:00:00Z"), Steps: 1},
		Target:    &Target{Commit: c1},
		Converged: true,
		Drift:     []Drift{},
		LastRun:   &Run{Started: at("2026-12-03T11:01:00Z"), Finished: at("2026-12-03T11:01:00.5Z"), Result: "unchanged", Commit: c1, States: []string{"fetching", "checking-drift"}},
	},
}

func TestGolden(t *testing.T) {
	for name, d := range documents {
		t.Run(name, func(t *testing.T) {
			js, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", append(js, '\n'))
			var text bytes.Buffer
			if err := d.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".txt", text.Bytes())
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestContract checks the JSON keys that spec §6 names, independently of
// the golden files: a key renamed by mistake fails here even after -update.
func TestContract(t *testing.T) {
	js, err := json.Marshal(documents["drifted"])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	has := func(obj map[string]any, where string, keys ...string) {
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s has no key %q: %v", where, k, obj)
			}
		}
	}
	has(m, "document", "host", "group", "branch", "state", "held", "applied", "target", "converged", "drift", "last_run", "bad_commits")
	has(m["applied"].(map[string]any), "applied", "commit", "time", "steps")
	has(m["target"].(map[string]any), "target", "commit")
	has(m["drift"].([]any)[0].(map[string]any), "drift", "step", "source", "diff")
	has(m["last_run"].(map[string]any), "last_run", "started", "finished", "result", "commit", "ops", "error", "states")
	has(m["bad_commits"].([]any)[0].(map[string]any), "bad_commits", "commit", "reason")
	if m["held"] != nil {
		t.Errorf("held = %v, want null", m["held"])
	}
	js, _ = json.Marshal(documents["held"])
	m = nil
	_ = json.Unmarshal(js, &m)
	has(m["held"].(map[string]any), "held", "reason", "commit", "since")
	if _, err := time.Parse(time.RFC3339, m["held"].(map[string]any)["since"].(string)); err != nil {
		t.Errorf("held.since is not RFC 3339: %v", err)
	}

	// A fresh document: lists are [], records null.
	js, _ = json.Marshal(Document{})
	for _, want := range []string{`"drift":[]`, `"bad_commits":[]`, `"recent_runs":[]`, `"held":null`, `"applied":null`, `"target":null`, `"last_run":null`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("empty document %s lacks %s", js, want)
		}
	}
	js, _ = json.Marshal(&Run{})
	if !strings.Contains(string(js), `"states":[]`) {
		t.Errorf("run %s: states should be []", js)
	}
}

func TestRoundTrip(t *testing.T) {
	for name, d := range documents {
		js, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		var back Document
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		js2, _ := json.Marshal(back)
		if !bytes.Equal(js, js2) {
			t.Errorf("%s: JSON changes on a round trip:\n%s\n%s", name, js, js2)
		}
		if back.Host != d.Host || !reflect.DeepEqual(back.Held, d.Held) || !reflect.DeepEqual(back.Applied, d.Applied) {
			t.Errorf("%s: decoded document differs: %+v", name, back)
		}
	}
}

func TestTextEscapesControls(t *testing.T) {
	var b bytes.Buffer
	d := documents["held"]
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\x1b", "\u202e", "\nfake: line"} {
		if strings.Contains(out, bad) {
			t.Errorf("text holds %q unescaped:\n%s", bad, out)
		}
	}
	for _, want := range []string{`evil\x1b[2Jhost`, `web\nfake: line`, `\u202e`} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks the escaped %q:\n%s", want, out)
		}
	}
}
