package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifyUnit writes a unit file named cairn.service to a temp dir and runs
// systemd-analyze verify on it; it returns the exit error and what the tool
// printed about the file.
func verifyUnit(t *testing.T, content []byte) (string, error) {
	t.Helper()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): cannot verify cairn.service")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, UnitName)
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(tool, "verify", "--man=no", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	// systemd-analyze also reports on units the file pulls in
	// (multi-user.target, network-online.target) when they are broken on
	// this host; only lines about our file count.
	var ours []string
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, UnitName) {
			ours = append(ours, strings.TrimSpace(line))
		}
	}
	if err != nil && len(ours) == 0 && strings.Contains(out.String(), "Failed to") {
		t.Skipf("systemd-analyze cannot run here: %s", strings.TrimSpace(out.String()))
	}
	return strings.Join(ours, "\n"), err
}

// TestUnitFileVerifies runs systemd-analyze verify on cairn.service, with
// ExecStart naming a real executable (this test binary) instead of
// /usr/bin/cairn, which is not installed here. systemd-analyze exits 0 on
// unknown keys and bad values, which it only warns about, so any line about
// the file fails the test.
func TestUnitFileVerifies(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		content []byte
		wantBad string // "" if the file must verify clean
	}{
		{"cairn.service", UnitFileFor(exe), ""},
		// The same check catches mistakes, so it can fail.
		{"unknown key", bytes.Replace(UnitFileFor(exe), []byte("[Service]\n"), []byte("[Service]\nProtectEverything=yes\n"), 1), "Unknown key"},
		{"bad value", bytes.Replace(UnitFileFor(exe), []byte("KillMode=mixed"), []byte("KillMode=gently"), 1), "kill mode"},
		{"missing binary", UnitFile(), "/usr/bin/cairn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantBad == "/usr/bin/cairn" {
				if _, err := os.Stat("/usr/bin/cairn"); err == nil {
					t.Skip("/usr/bin/cairn exists here")
				}
			}
			msgs, err := verifyUnit(t, tc.content)
			if tc.wantBad == "" {
				if err != nil || msgs != "" {
					t.Errorf("systemd-analyze verify: %v\n%s", err, msgs)
				}
				return
			}
			if !strings.Contains(msgs, tc.wantBad) {
				t.Errorf("systemd-analyze verify did not report %q: %v\n%s", tc.wantBad, err, msgs)
			}
		})
	}
}

func TestUnitFileContent(t *testing.T) {
	u := string(UnitFile())
	for _, want := range []string{
		"Type=notify", "ExecStart=/usr/bin/cairn agent", "EnvironmentFile=-/etc/default/cairn", "Restart=on-failure", "WatchdogSec=",
		"ProtectSystem=strict", "ReadWritePaths=/etc /usr /var",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("cairn.service lacks %q", want)
		}
	}
	for line := range strings.Lines(u) {
		if strings.HasPrefix(line, "NoNewPrivileges=") || strings.HasPrefix(line, "RestrictSUIDSGID=") {
			t.Errorf("cairn.service sets %s, which breaks dpkg maintainer scripts", strings.TrimSpace(line))
		}
	}
	if got := string(UnitFileFor("/opt/x/cairn")); !strings.Contains(got, "ExecStart=/opt/x/cairn agent\n") {
		t.Errorf("UnitFileFor did not replace ExecStart")
	}
}
