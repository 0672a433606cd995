package debian

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestFacts(t *testing.T) {
	tests := []struct {
		name, osRelease string
		want            map[string]string
	}{
		{"bookworm", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
			map[string]string{"release": "12", "codename": "bookworm"}},
		{"point release and single quotes", "VERSION_ID='11.7'\nVERSION_CODENAME='bullseye'\n",
			map[string]string{"release": "11", "codename": "bullseye"}},
		{"sid has no version", "# comment\nID=debian\n", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte(tt.osRelease), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Facts(root)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range []string{"release", "codename"} {
				if _, want := tt.want[k]; !want && got[k] != "" {
					t.Errorf("%s = %q, want none", k, got[k])
				}
			}
			if runtime.GOARCH == "amd64" && got["arch"] != "amd64" {
				t.Errorf("arch = %q", got["arch"])
			}
		})
	}
}

func TestFactsWithoutOSRelease(t *testing.T) {
	got, err := Facts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["release"]; ok {
		t.Errorf("release from nowhere: %v", got)
	}
}

func TestHostname(t *testing.T) {
	root := t.TempDir()
	if _, err := Hostname(root); err == nil {
		t.Error("a root without etc/hostname gave a name")
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("  web-07 \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Hostname(root)
	if err != nil || got != "web-07" {
		t.Errorf("Hostname = %q, %v; want web-07", got, err)
	}
	if name, err := Hostname("/"); err != nil || name == "" {
		t.Errorf("Hostname(/) = %q, %v", name, err)
	}
}
