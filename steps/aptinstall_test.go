package steps_test

// APT-INSTALL through the real applier and real apt, chrooted into a Debian
// root of the test's own (internal/debroot): packages installed (one
// apt-get call for consecutive steps) and removed by the inverse,
// dpkg-query confirming each state; a package that was there before left
// untouched; the failure paths (a package that does not exist, a held dpkg
// lock, a --root with no Debian system) each a clear error with the plan
// undone. The tests never touch this host's own dpkg.

import (
	"context"
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
	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// aptState is dpkg-query's word on a package beneath root: its version if
// installed, "" if not.
func aptState(t testing.TB, root, name string) string {
	t.Helper()
	out, _ := exec.Command("chroot", root, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", name).Output()
	st, ver, _ := strings.Cut(string(out), " ")
	if st != "installed" {
		return ""
	}
	return ver
}

// aptInstallDirect installs packages beneath root with apt-get, as an
// administrator would, outside cairn.
func aptInstallDirect(t *testing.T, root string, pkgs ...string) {
	t.Helper()
	debroot.Chroot(t, root, append([]string{"apt-get", "install", "-y", "-q"}, pkgs...)...)
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

// aptWant checks each package's dpkg state beneath root ("" not
// installed, "*" any version, else that version).
func aptWant(t *testing.T, root, when string, want map[string]string) {
	t.Helper()
	for p, w := range want {
		got := aptState(t, root, p)
		if w == "*" && got != "" || w == got {
			continue
		}
		t.Errorf("%s: dpkg-query says %s is %q, want %q", when, p, got, w)
	}
}

func aptCandidate(t *testing.T, root, name string) string {
	t.Helper()
	for l := range strings.SplitSeq(debroot.Chroot(t, root, "apt-cache", "policy", name), "\n") {
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
	root := debroot.New(t)
	jq := aptCandidate(t, root, "jq")
	for _, tc := range []struct {
		name     string
		lines    []string
		installs string // the Install calls of the forward move
	}{
		{"a batch of two, one pinned", []string{"APT-INSTALL jq version=" + jq, "APT-INSTALL bfs"}, "[[jq=" + jq + " bfs]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aptWant(t, root, "before", map[string]string{"jq": "", "bfs": ""})
			h := newAptHost(t, root)
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
			aptWant(t, root, "after forward", want)
			if _, _, auto, _ := h.apt.Status(context.Background(), "jq"); auto {
				t.Error("jq is marked automatically installed after APT-INSTALL")
			}

			// Drift: a package removed behind cairn's back.
			debroot.Chroot(t, root, "apt-get", "remove", "-y", "-q", "jq")
			a := h.open(t)
			drifted, err := a.Drift(context.Background())
			a.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(drifted) != 1 || drifted[0].Diff != "not installed" {
				t.Errorf("drift = %+v, want jq not installed", drifted)
			}
			if res, err := h.move(t, true, slices.Clone(tc.lines)...); err != nil || len(res.Repaired) != 1 {
				t.Fatalf("repair: %v (%+v)", err, res)
			}
			aptWant(t, root, "after repair", want)
			if _, err := h.apply(t); err != nil {
				t.Fatalf("apply the empty journal: %v", err)
			}
			for p := range want {
				want[p] = ""
			}
			aptWant(t, root, "after the inverse", want)
		})
	}
}

// TestAptInstallLeavesPreinstalled checks that the inverse of APT-INSTALL
// of a package that was there before cairn leaves it, and its manual or
// automatic mark, as it was.
func TestAptInstallLeavesPreinstalled(t *testing.T) {
	root := debroot.New(t)
	aptLocalRepo(t, root)
	aptInstallDirect(t, root, aptB)
	ctx := context.Background()
	h := newAptHost(t, root)
	for _, auto := range []bool{false, true} {
		if err := h.apt.SetAuto(ctx, aptB, auto); err != nil {
			t.Fatal(err)
		}
		ver := aptState(t, root, aptB)
		if _, err := h.apply(t, "APT-INSTALL "+aptB, "APT-INSTALL "+aptA); err != nil {
			t.Fatalf("apply: %v", err)
		}
		aptWant(t, root, "after forward", map[string]string{aptB: ver, aptA: "*"})
		if _, err := h.apply(t); err != nil {
			t.Fatalf("apply the empty journal: %v", err)
		}
		aptWant(t, root, "after the inverse", map[string]string{aptB: ver, aptA: ""})
		if _, _, gotAuto, err := h.apt.Status(ctx, aptB); err != nil || gotAuto != auto {
			t.Errorf("%s marked auto=%v after the inverse (%v), want %v", aptB, gotAuto, err, auto)
		}
	}
}

// TestAptInstallFailures breaks a move with an APT-INSTALL that cannot
// succeed: a clear error naming the step, everything undone.
func TestAptInstallFailures(t *testing.T) {
	root := debroot.New(t)
	aptLocalRepo(t, root)
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
			lines := append([]string{"MKDIR /srv/made"}, tc.lines...)
			h := newAptHost(t, root)
			if tc.hold {
				f, err := os.OpenFile(filepath.Join(root, "var/lib/dpkg/lock-frontend"), os.O_RDWR|os.O_CREATE, 0o640)
				if err != nil {
					t.Fatal(err)
				}
				// apt locks with fcntl(2), which a flock(1) does not block.
				lk := syscall.Flock_t{Type: syscall.F_WRLCK}
				if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			start := time.Now()
			_, err := h.apply(t, lines...)
			if err == nil {
				t.Fatal("apply succeeded")
			}
			// The move, its images and its undo take a few seconds, more on
			// a busy machine; the wait for the lock itself is 1 s.
			if tc.hold && time.Since(start) > 60*time.Second {
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
			aptWant(t, root, "after the failed move", map[string]string{aptA: "", aptB: ""})
			if _, err := os.Lstat(filepath.Join(root, "srv/made")); err == nil {
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

// aptLocalRepo makes a repository of packages of the tests' own (aptA,
// aptB) the only one apt knows in the Debian root: they install in a
// moment and depend on nothing.
func aptLocalRepo(t *testing.T, root string) {
	t.Helper()
	debroot.OnlyLocalRepo(t, root,
		debroot.Deb{Name: aptA, Version: "1.0"},
		debroot.Deb{Name: aptA, Version: "2.0"},
		debroot.Deb{Name: aptB, Version: "1.0"})
}

// TestAptInstallVersions pins versions of a package of a local repository:
// the inverse installs the former version again (a downgrade) when cairn
// changed it, and removes the package when cairn installed it.
func TestAptInstallVersions(t *testing.T) {
	root := debroot.New(t)
	aptLocalRepo(t, root)
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
				aptInstallDirect(t, root, pkg+"="+tc.before)
			}
			aptWant(t, root, "before", map[string]string{pkg: tc.before})
			h := newAptHost(t, root)
			for _, v := range tc.moves {
				if _, err := h.apply(t, "APT-INSTALL "+pkg+" version="+v); err != nil {
					t.Fatalf("apply version %s: %v", v, err)
				}
				aptWant(t, root, "after forward", map[string]string{pkg: v})
			}
			if _, err := h.apply(t); err != nil {
				t.Fatalf("apply the empty journal: %v", err)
			}
			aptWant(t, root, "after the inverse", map[string]string{pkg: tc.before})
			debroot.Chroot(t, root, "dpkg", "--purge", pkg)
		})
	}
}
