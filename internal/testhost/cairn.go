package testhost

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-cm/cairn/internal/debroot"
)

// binDirPrefix names the directories, in the temporary directory, where
// test processes build cairn: binDirPrefix + the PID of the process.
const binDirPrefix = "cairn-testhost-bin-"

var cairnBuild struct {
	once sync.Once
	path string
	err  error
}

// Cairn returns the path of a cairn binary built from this checkout for a
// host: static (CGO_ENABLED=0, as the package ships it), built once per
// test process, with go build's cache. It stays in the temporary directory
// while the process runs; the next process to build one removes those of
// processes that are gone. It fails the test if cairn does not build.
func Cairn(t testing.TB) string {
	t.Helper()
	b := &cairnBuild
	b.once.Do(func() { b.path, b.err = buildCairn() })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func buildCairn() (string, error) {
	gomod, err := debroot.RepoFile("go.mod")
	if err != nil {
		return "", err
	}
	removeStaleBins()
	dir := filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cairn")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build cairn for a test host: CGO_ENABLED=0 go build ./cmd/cairn: %v\n%s", err, out)
	}
	return bin, nil
}

// removeStaleBins removes the cairn builds of test processes that are gone.
func removeStaleBins() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binDirPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// InstallCairn installs cairn into the host as its Debian package lays it
// out, without dpkg: the binary of [Cairn] as /usr/bin/cairn, the
// checkout's systemd/cairn.service as /lib/systemd/system/cairn.service,
// /etc/default/cairn with settings (CAIRN_REPO=..., one line each, sorted;
// no file when settings is nil) and /var/lib/cairn (0700); then it reloads
// systemd. It neither enables nor starts the agent.
func (h *Host) InstallCairn(settings map[string]string) {
	h.t.Helper()
	unit, err := debroot.RepoFile("systemd/cairn.service")
	if err != nil {
		h.t.Fatal(err)
	}
	h.CopyIn(Cairn(h.t), "/usr/bin/cairn")
	h.CopyIn(unit, "/lib/systemd/system/cairn.service")
	if settings != nil {
		h.WriteCairnDefaults(settings)
	}
	if err := os.MkdirAll(h.Path("/var/lib/cairn"), 0o700); err != nil {
		h.t.Fatal(err)
	}
	h.Run("systemctl", "daemon-reload")
}

// WriteCairnDefaults writes /etc/default/cairn, the agent's settings, from
// settings: KEY=VALUE lines, sorted, each value double-quoted as systemd's
// EnvironmentFile= reads it.
func (h *Host) WriteCairnDefaults(settings map[string]string) {
	h.t.Helper()
	var b strings.Builder
	b.WriteString("# written by a test (testhost.InstallCairn)\n")
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(settings[k])
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, v)
	}
	h.WriteFile("/etc/default/cairn", []byte(b.String()), 0o644)
}
