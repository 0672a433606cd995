// Package debroot gives tests a real Debian 12 system to run apt and dpkg
// in: a fresh copy of the root that scripts/debroot.sh builds once per
// machine with debootstrap and caches (in $CAIRN_TEST_CACHE, default
// /var/cache/cairn-test).
package debroot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// New returns a fresh copy of the Debian root, which the test owns; it is
// removed when the test ends, with any process still running in it. It
// skips the test without root or debootstrap, and when the root cannot be
// built (no network), except in CI (CI set), whose .ci/run installs
// debootstrap: there it fails.
//
// The copy is made in /dev/shm where that is a tmpfs (a copy there takes
// about a second, on a disk several), else in the test's temporary
// directory.
func New(t testing.TB) string {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		SkipUnlessCI(t, "a Debian root: "+format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root (debootstrap, chroot)")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		skip("needs debootstrap (apt-get install debootstrap)")
	}
	script, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := ShmTempDir("cairn-debroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		Kill(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the Debian root %s: %v", dir, err)
		}
	})
	root := filepath.Join(dir, "root")
	var out bytes.Buffer
	cmd := exec.Command(script, root)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		skip("%s %s: %v\n%s", script, root, err, out.String())
	}
	t.Logf("a Debian root in %s (%v)", root, time.Since(start).Round(time.Millisecond))
	return root
}

// SkipUnlessCI skips the test with the reason format gives (t.Skipf),
// except in CI (CI set), whose .ci/run installs what the tests need and
// runs as root: there it fails the test with it.
func SkipUnlessCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (in CI this is a failure: .ci/run installs what the tests need and runs as root)", args...)
	}
	t.Skipf(format, args...)
}

// ShmTempDir makes a new directory as os.MkdirTemp does, in /dev/shm where
// that is a tmpfs (a copy of a root there takes about a second, on a disk
// several), else in the default directory for temporary files.
func ShmTempDir(pattern string) (string, error) {
	parent := ""
	var fs syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if syscall.Statfs("/dev/shm", &fs) == nil && fs.Type == tmpfsMagic {
		parent = "/dev/shm"
	}
	return os.MkdirTemp(parent, pattern)
}

// Script returns the path of scripts/debroot.sh, found from the working
// directory up (go test runs in the package's directory).
func Script() (string, error) {
	return RepoFile("scripts/debroot.sh")
}

// RepoFile returns the path of rel (slash-separated) in the module's
// source tree: beneath the first directory holding a go.mod, from the
// working directory up.
func RepoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, filepath.FromSlash(rel)), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the working directory: cannot find %s", rel)
		}
		dir = up
	}
}

// Procs returns the processes whose root directory is root or beneath it
// (those chrooted into it), as /proc tells.
func Procs(root string) []int {
	return ProcsWhere(func(proc string) bool {
		r, err := os.Readlink(filepath.Join(proc, "root"))
		return err == nil && (r == root || strings.HasPrefix(r, root+"/"))
	})
}

// ProcsWhere returns the processes for whose directory in /proc
// (/proc/PID) match is true.
func ProcsWhere(match func(proc string) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && match(filepath.Join("/proc", e.Name())) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Kill kills (SIGKILL) every process chrooted into root or beneath it, and
// waits a little for them to go.
func Kill(root string) {
	for range 50 {
		pids := Procs(root)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Deb is a package of a test's own, which LocalRepo builds.
type Deb struct {
	Name, Version string
	Depends       string // the Depends field, "" for none
	Postinst      string // the postinst script, "" for none
}

// LocalRepo builds the packages of debs (dpkg-deb) into a flat repository
// inside root (/srv/cairn-repo) and makes apt there know them: a source of
// its own in etc/apt/sources.list.d, whose list alone apt-get update
// fetches (the Debian lists of the root stay as they are, and nothing goes
// to the network).
func LocalRepo(t testing.TB, root string, debs ...Deb) {
	t.Helper()
	localRepo(t, root, debs)
	Chroot(t, root, "apt-get", "update", "-q", "-o", "Dir::Etc::SourceList=/dev/null", "-o", "APT::Get::List-Cleanup=0")
}

// OnlyLocalRepo is LocalRepo, but apt beneath root then knows the packages
// of debs and the installed ones alone: the Debian lists go, and apt runs
// many times faster (it no longer reads the whole archive's list).
func OnlyLocalRepo(t testing.TB, root string, debs ...Deb) {
	t.Helper()
	localRepo(t, root, debs)
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	Chroot(t, root, "apt-get", "update", "-q")
}

func localRepo(t testing.TB, root string, debs []Deb) {
	t.Helper()
	repo := filepath.Join(root, "srv/cairn-repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	var packages strings.Builder
	for _, d := range debs {
		tree := t.TempDir()
		control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: cairn tests <cairn@example.invalid>\n", d.Name, d.Version)
		if d.Depends != "" {
			control += "Depends: " + d.Depends + "\n"
		}
		control += "Description: a package of cairn's tests\n"
		files := map[string]string{
			"DEBIAN/control":                   control,
			"usr/share/" + d.Name + "/version": d.Version + "\n",
		}
		if d.Postinst != "" {
			files["DEBIAN/postinst"] = d.Postinst
		}
		for file, content := range files {
			mode := os.FileMode(0o644)
			if file == "DEBIAN/postinst" {
				mode = 0o755
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, file)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, file), []byte(content), mode); err != nil {
				t.Fatal(err)
			}
		}
		deb := fmt.Sprintf("%s_%s_all.deb", d.Name, d.Version)
		if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", tree, filepath.Join(repo, deb)).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb: %v\n%s", err, out)
		}
		data, err := os.ReadFile(filepath.Join(repo, deb))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&packages, "%sFilename: ./%s\nSize: %d\nSHA256: %s\n\n", control, deb, len(data), hex.EncodeToString(sum[:]))
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), []byte(packages.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/cairn-test.list"), []byte("deb [trusted=yes] file:/srv/cairn-repo ./\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Chroot runs a command chrooted into root, non-interactively, and returns
// its output; it fails the test if the command fails.
func Chroot(t testing.TB, root string, args ...string) string {
	t.Helper()
	out, err := chroot(root, args...)
	if err != nil {
		t.Fatalf("chroot %s %s: %v\n%s", root, strings.Join(args, " "), err, out)
	}
	return out
}

// ChrootErr runs a command chrooted into root, as Chroot does, and returns
// its error with its output.
func ChrootErr(root string, args ...string) error {
	out, err := chroot(root, args...)
	if err != nil {
		return fmt.Errorf("chroot %s %s: %w\n%s", root, strings.Join(args, " "), err, out)
	}
	return nil
}

func chroot(root string, args ...string) (string, error) {
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Installed returns the packages dpkg holds installed beneath root, sorted.
func Installed(t testing.TB, root string) []string {
	t.Helper()
	var pkgs []string
	for line := range strings.SplitSeq(Chroot(t, root, "dpkg-query", "-W", "-f=${db:Status-Status} ${Package}\n"), "\n") {
		if name, ok := strings.CutPrefix(line, "installed "); ok {
			pkgs = append(pkgs, name)
		}
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}

// Audit returns what dpkg --audit says beneath root ("" when the database
// is clean).
func Audit(t testing.TB, root string) string {
	t.Helper()
	cmd := exec.Command("chroot", root, "dpkg", "--audit")
	out, _ := cmd.CombinedOutput()
	return strings.TrimSpace(string(out))
}
