package steps_test

// APT-INSTALL through the real applier and real apt on this host (as root):
// packages installed (one apt-get call for consecutive steps) and removed
// by the inverse, dpkg-query confirming each state; a package that was
// there before left untouched; the failure paths (a package that does not
// exist, a held dpkg lock, a --root with no Debian system) each a clear
// error with the plan undone.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// aptPkgs are the small real packages the tests install: no dependencies
// beyond what a Debian base system has.
var aptPkgs = []string{"hello", "sl"}

// aptNeed skips unless root with apt, and makes sure the package lists know
// the test packages (apt-get update if they do not; a skip without network).
// It removes, when the test ends, every test package that was not
// installed when it began.
func aptNeed(t *testing.T) {
	t.Helper()
	aptNeedRoot(t)
	if !aptKnown(aptPkgs) {
		if out, err := exec.Command("apt-get", "update", "-q").CombinedOutput(); err != nil || !aptKnown(aptPkgs) {
			t.Skipf("the package lists do not know %v and apt-get update cannot fetch them (no network?): %v\n%s", aptPkgs, err, out)
		}
	}
	var before []string
	for _, p := range aptPkgs {
		if aptState(t, p) == "" {
			before = append(before, p)
		}
	}
	t.Cleanup(func() {
		for _, p := range before {
			if aptState(t, p) != "" {
				if out, err := exec.Command("apt-get", "remove", "-y", "-q", p).CombinedOutput(); err != nil {
					t.Errorf("cleanup: apt-get remove %s: %v\n%s", p, err, out)
				}
			}
		}
	})
}

// aptNeedRoot skips unless root with apt and dpkg.
func aptNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("APT-INSTALL tests need root (they install packages on this host)")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("APT-INSTALL tests need %s", tool)
		}
	}
}

// aptKnown reports whether apt has a candidate for every package.
func aptKnown(pkgs []string) bool {
	out, err := exec.Command("apt-cache", append([]string{"policy"}, pkgs...)...).Output()
	return err == nil && strings.Count(string(out), "Candidate:") == len(pkgs) && !strings.Contains(string(out), "Candidate: (none)")
}

// aptState is dpkg-query's word on a package: its version if installed,
// "" if not.
func aptState(t testing.TB, name string) string {
	t.Helper()
	out, _ := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", name).Output()
	st, ver, _ := strings.Cut(string(out), " ")
	if st != "installed" {
		return ""
	}
	return ver
}

// aptInstallDirect installs packages with apt-get, as an administrator
// would, outside cairn.
func aptInstallDirect(t *testing.T, pkgs ...string) {
	t.Helper()
	out, err := exec.Command("apt-get", append([]string{"install", "-y", "-q"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("apt-get install %v: %v\n%s", pkgs, err, out)
	}
}

// aptHost is the host the applier moves: a root and a state directory.
type aptHost struct {
	root, state string
	apt         *debian.Apt
	installs    [][]string // the specs of every Install call
}

// aptRecorder is the real driver, recording its Install calls.
type aptRecorder struct {
	*debian.Apt
	h *aptHost
}

func (r aptRecorder) Install(ctx context.Context, specs ...string) error {
	r.h.installs = append(r.h.installs, specs)
	return r.Apt.Install(ctx, specs...)
}

func newAptHost(t *testing.T, root string) *aptHost {
	t.Helper()
	apt := debian.NewApt(root)
	apt.LockTimeout = time.Second
	return &aptHost{root: root, state: filepath.Join(t.TempDir(), "state"), apt: apt}
}

// apply moves the host to the journal of lines.
func (h *aptHost) apply(t *testing.T, lines ...string) (*steps.Result, error) {
	t.Helper()
	return h.move(t, false, lines...)
}

// move moves the host to the journal of lines, repairing drift if asked.
func (h *aptHost) move(t *testing.T, repair bool, lines ...string) (*steps.Result, error) {
	t.Helper()
	a := h.open(t)
	defer a.Close()
	for i := range lines {
		lines[i] += fmt.Sprintf(" # site.cairn:%d:1", i+1)
	}
	ss, err := journal.ParseSteps("apt.journal", lines)
	if err != nil {
		t.Fatal(err)
	}
	return a.Apply(context.Background(), steps.Move{Journal: "apt.journal", Steps: ss, Repair: repair, AllowRemoval: true})
}

func (h *aptHost) open(t *testing.T) *steps.Applier {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: h.state, Create: true, Host: steps.Host{Packages: aptRecorder{h.apt, h}}})
	if err != nil {
		t.Fatalf("open the state: %v", err)
	}
	return a
}

// aptWant checks each package's dpkg state ("" not installed, "*" any
// version, else that version).
func aptWant(t *testing.T, when string, want map[string]string) {
	t.Helper()
	for p, w := range want {
		got := aptState(t, p)
		if w == "*" && got != "" || w == got {
			continue
		}
		t.Errorf("%s: dpkg-query says %s is %q, want %q", when, p, got, w)
	}
}

func aptCandidate(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("apt-cache", "policy", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate: "); ok {
			return v
		}
	}
	t.Fatalf("no candidate for %s", name)
	return ""
}

// TestAptInstallApply installs packages forward (batched), checks drift,
// and removes them with the inverse.
func TestAptInstallApply(t *testing.T) {
	aptNeed(t)
	hello := aptCandidate(t, "hello")
	for _, tc := range []struct {
		name     string
		lines    []string
		installs string // the Install calls of the forward move
	}{
		{"a batch of two, one pinned", []string{"APT-INSTALL hello version=" + hello, "APT-INSTALL sl"}, "[[hello=" + hello + " sl]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aptWant(t, "before", map[string]string{"hello": "", "sl": ""})
			h := newAptHost(t, "/")
			res, err := h.apply(t, slices.Clone(tc.lines)...)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if res.Ran != len(tc.lines) {
				t.Errorf("ran %d ops, want %d", res.Ran, len(tc.lines))
			}
			if got := fmt.Sprint(h.installs); got != tc.installs {
				t.Errorf("apt-get install calls %s, want %s", got, tc.installs)
			}
			want := map[string]string{}
			for _, l := range tc.lines {
				want[strings.Fields(l)[1]] = "*"
			}
			aptWant(t, "after forward", want)
			if _, _, auto, _ := h.apt.Status(context.Background(), "hello"); auto {
				t.Error("hello is marked automatically installed after APT-INSTALL")
			}

			// Drift: a package removed behind cairn's back.
			if out, err := exec.Command("apt-get", "remove", "-y", "-q", "hello").CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			a := h.open(t)
			drifted, err := a.Drift(context.Background())
			a.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(drifted) != 1 || drifted[0].Diff != "not installed" {
				t.Errorf("drift = %+v, want hello not installed", drifted)
			}
			if res, err := h.move(t, true, slices.Clone(tc.lines)...); err != nil || len(res.Repaired) != 1 {
				t.Fatalf("repair: %v (%+v)", err, res)
			}
			aptWant(t, "after repair", want)
			if _, err := h.apply(t); err != nil {
				t.Fatalf("apply the empty journal: %v", err)
			}
			for p := range want {
				want[p] = ""
			}
			aptWant(t, "after the inverse", want)
		})
	}
}

// TestAptInstallLeavesPreinstalled checks that the inverse of APT-INSTALL
// of a package that was there before cairn leaves it, and its manual or
// automatic mark, as it was.
func TestAptInstallLeavesPreinstalled(t *testing.T) {
	aptNeedRoot(t)
	aptLocalRepo(t)
	aptInstallDirect(t, aptB)
	ctx := context.Background()
	h := newAptHost(t, "/")
	for _, auto := range []bool{false, true} {
		if err := h.apt.SetAuto(ctx, aptB, auto); err != nil {
			t.Fatal(err)
		}
		ver := aptState(t, aptB)
		if _, err := h.apply(t, "APT-INSTALL "+aptB, "APT-INSTALL "+aptA); err != nil {
			t.Fatalf("apply: %v", err)
		}
		aptWant(t, "after forward", map[string]string{aptB: ver, aptA: "*"})
		if _, err := h.apply(t); err != nil {
			t.Fatalf("apply the empty journal: %v", err)
		}
		aptWant(t, "after the inverse", map[string]string{aptB: ver, aptA: ""})
		if _, _, gotAuto, err := h.apt.Status(ctx, aptB); err != nil || gotAuto != auto {
			t.Errorf("%s marked auto=%v after the inverse (%v), want %v", aptB, gotAuto, err, auto)
		}
	}
}

// TestAptInstallFailures breaks a move with an APT-INSTALL that cannot
// succeed: a clear error naming the step, everything undone.
func TestAptInstallFailures(t *testing.T) {
	aptNeedRoot(t)
	aptLocalRepo(t)
	nope := fmt.Sprintf("cairn-t-nope-%d", os.Getpid())
	for _, tc := range []struct {
		name  string
		lines []string
		hold  bool   // hold the dpkg front-end lock meanwhile
		bad   int    // the line of the step blamed
		want  string // in the error
	}{
		{"a package that does not exist", []string{"APT-INSTALL " + aptA, "APT-INSTALL " + nope}, false, 2, "Unable to locate package " + nope},
		{"a version that does not exist", []string{"APT-INSTALL " + aptB, "APT-INSTALL " + aptA + " version=0.0-cairn"}, false, 2, "'0.0-cairn' for '" + aptA + "' was not found"},
		{"a held dpkg lock", []string{"APT-INSTALL " + aptB, "APT-INSTALL " + aptA}, true, 1, fmt.Sprintf("dpkg lock /var/lib/dpkg/lock-frontend is held by process %d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lines := append([]string{"MKDIR " + dir + "/made"}, tc.lines...)
			h := newAptHost(t, "/")
			if tc.hold {
				f, err := os.OpenFile("/var/lib/dpkg/lock-frontend", os.O_RDWR|os.O_CREATE, 0o640)
				if err != nil {
					t.Fatal(err)
				}
				// apt locks with fcntl(2), which a flock(1) does not block.
				lk := syscall.Flock_t{Type: syscall.F_WRLCK}
				if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
					f.Close()
					t.Skipf("the dpkg lock is busy already: %v", err)
				}
				defer f.Close()
			}
			start := time.Now()
			_, err := h.apply(t, lines...)
			if err == nil {
				t.Fatal("apply succeeded")
			}
			if tc.hold && time.Since(start) > 20*time.Second {
				t.Errorf("the wait for the lock took %v", time.Since(start))
			}
			if steps.ExitCode(err) != steps.ExitFailed {
				t.Errorf("exit code %d, want %d: %v", steps.ExitCode(err), steps.ExitFailed, err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, fmt.Sprintf("site.cairn:%d:1", tc.bad+1)) {
				t.Errorf("error %q does not blame line %d with %q", msg, tc.bad+1, tc.want)
			}
			aptWant(t, "after the failed move", map[string]string{aptA: "", aptB: ""})
			if _, err := os.Lstat(dir + "/made"); err == nil {
				t.Error("the MKDIR was not undone")
			}
		})
	}
}

// TestAptInstallRootWithoutDebian refuses APT-INSTALL under a --root that
// holds no Debian system, before anything changes: in preflight, exit 2.
func TestAptInstallRootWithoutDebian(t *testing.T) {
	crashNeedRoot(t)
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := newAptHost(t, root)
	_, err := h.apply(t, "MKDIR /srv", "APT-INSTALL hello")
	want := root + " holds no Debian system (no var/lib/dpkg/status): APT-INSTALL needs one"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	if code := steps.ExitCode(err); code != steps.ExitBadInput {
		t.Errorf("exit %d, want %d (refused before anything changed)", code, steps.ExitBadInput)
	}
	if _, err := os.Lstat(filepath.Join(root, "srv")); err == nil {
		t.Error("the MKDIR was not undone")
	}
}

// The packages of the local repository: cairn-t-a in versions 1.0 and 2.0,
// cairn-t-b in 1.0.
const (
	aptA = "cairn-t-a"
	aptB = "cairn-t-b"
)

// aptLocalRepo builds a flat apt repository of packages of the tests' own
// (aptA, aptB) and points apt at it alone (through APT_CONFIG, which the
// driver's apt-get inherits: the host's sources and lists stay as they
// are). They install in a moment and depend on nothing. It purges them when
// the test ends.
func aptLocalRepo(t *testing.T) {
	t.Helper()
	repo := t.TempDir()
	var packages strings.Builder
	for _, nv := range [][2]string{{aptA, "1.0"}, {aptA, "2.0"}, {aptB, "1.0"}} {
		name, v := nv[0], nv[1]
		tree := filepath.Join(t.TempDir(), "tree")
		for file, content := range map[string]string{
			"DEBIAN/control":                 fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: cairn tests <cairn@example.invalid>\nDescription: a package of cairn's tests\n", name, v),
			"usr/share/" + name + "/version": v + "\n",
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, file)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, file), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		deb := fmt.Sprintf("%s_%s_all.deb", name, v)
		if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", tree, filepath.Join(repo, deb)).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb: %v\n%s", err, out)
		}
		data, err := os.ReadFile(filepath.Join(repo, deb))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&packages, "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: cairn tests <cairn@example.invalid>\nFilename: ./%s\nSize: %d\nSHA256: %s\nDescription: a package of cairn's tests\n\n", name, v, deb, len(data), hex.EncodeToString(sum[:]))
	}
	for _, d := range []string{"parts", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"Packages":     packages.String(),
		"sources.list": "deb [trusted=yes] file:" + repo + " ./\n",
		"apt.conf": fmt.Sprintf("Dir::Etc::SourceList %q;\nDir::Etc::SourceParts %q;\nDir::State::Lists %q;\nDir::Cache %q;\n",
			repo+"/sources.list", repo+"/parts", repo+"/lists", repo+"/cache"),
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(repo, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("APT_CONFIG", filepath.Join(repo, "apt.conf"))
	if out, err := exec.Command("apt-get", "update", "-q").CombinedOutput(); err != nil {
		t.Fatalf("apt-get update of the local repository: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", aptA, aptB).CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
	})
}

// TestAptInstallVersions pins versions of a package of a local repository:
// the inverse installs the former version again (a downgrade) when cairn
// changed it, and removes the package when cairn installed it.
func TestAptInstallVersions(t *testing.T) {
	aptNeedRoot(t)
	aptLocalRepo(t)
	pkg := aptA
	for _, tc := range []struct {
		name   string
		before string   // installed before cairn ("" none)
		moves  []string // the version pinned by each move
	}{
		{"a package that was there before", "1.0", []string{"2.0"}},
		{"a package that was there before, moved twice", "2.0", []string{"1.0", "2.0"}},
		{"a package cairn installed, then upgraded", "", []string{"1.0", "2.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != "" {
				aptInstallDirect(t, pkg+"="+tc.before)
			}
			aptWant(t, "before", map[string]string{pkg: tc.before})
			h := newAptHost(t, "/")
			for _, v := range tc.moves {
				if _, err := h.apply(t, "APT-INSTALL "+pkg+" version="+v); err != nil {
					t.Fatalf("apply version %s: %v", v, err)
				}
				aptWant(t, "after forward", map[string]string{pkg: v})
			}
			if _, err := h.apply(t); err != nil {
				t.Fatalf("apply the empty journal: %v", err)
			}
			aptWant(t, "after the inverse", map[string]string{pkg: tc.before})
			if out, err := exec.Command("dpkg", "--purge", pkg).CombinedOutput(); err != nil {
				t.Fatalf("dpkg --purge: %v\n%s", err, out)
			}
		})
	}
}
