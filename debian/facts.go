package debian

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// goArch maps Go's architecture names to Debian's.
var goArch = map[string]string{
	"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf",
	"ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el",
}

// Facts reads the facts of the Debian system beneath root: release (the
// major version, "12"), codename ("bookworm") and arch (dpkg's native
// architecture, "amd64"; where dpkg cannot tell, that of the running
// cairn). A fact it cannot find is left out.
func Facts(root string) (map[string]string, error) {
	facts := map[string]string{}
	if arch := dpkgArch(root); arch != "" {
		facts["arch"] = arch
	} else if arch, ok := goArch[runtime.GOARCH]; ok {
		facts["arch"] = arch
	}
	data, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if os.IsNotExist(err) {
		data, err = os.ReadFile(filepath.Join(root, "usr/lib/os-release"))
	}
	if err != nil {
		if os.IsNotExist(err) {
			return facts, nil
		}
		return facts, fmt.Errorf("debian facts: %w", err)
	}
	release := osRelease(data)
	if v := release["VERSION_ID"]; v != "" {
		facts["release"], _, _ = strings.Cut(v, ".")
	}
	if v := release["VERSION_CODENAME"]; v != "" {
		facts["codename"] = v
	}
	return facts, nil
}

// osRelease parses os-release(5): KEY=VALUE lines, values maybe quoted.
func osRelease(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out
}

// dpkgArch asks dpkg for the native architecture of the system at root, or
// returns "" when it cannot: an i386 cairn on an amd64 host says amd64.
func dpkgArch(root string) string {
	args := []string{"--print-architecture"}
	if root != "/" && root != "" {
		args = append([]string{"--root", root}, args...)
	}
	out, err := exec.Command("dpkg", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Hostname returns the host name of the system beneath root: the first
// line of ROOT/etc/hostname, or, for the running system when that file is
// missing, the kernel's.
func Hostname(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	if err == nil {
		if name, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n"); name != "" {
			return strings.TrimSpace(name), nil
		}
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("host name: %w", err)
	}
	if root == "/" || root == "" {
		return os.Hostname()
	}
	return "", fmt.Errorf("host name: %s has no etc/hostname", root)
}
