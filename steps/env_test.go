package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/rootfs"
)

// TestResolveIDs pins how owners and groups resolve: numeric ids in range
// always; out of range an error, never an int that chown(2) truncates to 32
// bits (4294967295 is "no change", 4294967296 is root); a passwd entry with
// an id out of range is no entry.
func TestResolveIDs(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0::/root:/bin/sh\ndeploy:x:1000:1000::/home/deploy:/bin/sh\nghost:x:4294967295:0::/:/bin/sh\nhuge:x:99999999999:0::/:/bin/sh\n3com:x:1001:1001::/:/bin/sh\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	env := &Env{Root: root}
	tests := []struct {
		name string
		want int
		err  string
	}{
		{"root", 0, ""},
		{"0", 0, ""},
		{"65534", 65534, ""},
		{"4294967294", 4294967294, ""},
		{"007", 7, ""},
		{"deploy", 1000, ""},
		{"3com", 1001, ""},
		{"4294967295", 0, "out of range"},
		{"4294967296", 0, "out of range"},
		{"99999999999999999999", 0, "out of range"},
		{"-1", 0, `no entry "-1"`},
		{"ghost", 0, `no entry "ghost"`},
		{"huge", 0, `no entry "huge"`},
	}
	for _, tt := range tests {
		got, err := env.UID(tt.name)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("UID(%s): %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("UID(%s) = %d, %v; want an error with %q", tt.name, got, err, tt.err)
		case tt.err == "" && got != tt.want:
			t.Errorf("UID(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
