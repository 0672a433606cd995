package steps_test

// KUBECTL-APPLY and PLAYBOOK through the real applier and the real debian
// driver. No cluster can run here, so kubectl is a stand-in script put first
// on PATH that records its arguments, its KUBECONFIG and a copy of the files
// it was handed (docs/tools.md); ansible-playbook is the real one.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// kubectlStandIn records each call in $KUBECTL_STUB_DIR/call-N: argv (one
// argument a line), kubeconfig, and files (a copy of the last argument, the
// directory). It fails when its arguments contain $KUBECTL_STUB_FAIL.
const kubectlStandIn = `#!/bin/sh
rec="$KUBECTL_STUB_DIR"
n=$(( $(cat "$rec/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$rec/count"
d="$rec/call-$n"
mkdir -p "$d"
printf '%s\n' "$@" > "$d/argv"
printf '%s' "$KUBECONFIG" > "$d/kubeconfig"
for last in "$@"; do :; done
cp -a "$last" "$d/files"
if [ -n "$KUBECTL_STUB_FAIL" ] && case " $* " in *"$KUBECTL_STUB_FAIL"*) true;; *) false;; esac; then
	echo "error: the stand-in was told to fail" >&2
	exit 1
fi
echo "stand-in kubectl $*"
`

// toolsHost is a root, a state directory and a source directory.
type toolsHost struct {
	root, state, src string
	tools            debian.Tools
}

func newToolsHost(t *testing.T, files map[string]string) *toolsHost {
	t.Helper()
	base := t.TempDir()
	h := &toolsHost{root: filepath.Join(base, "root"), state: filepath.Join(base, "state"), src: filepath.Join(base, "src")}
	if err := os.MkdirAll(filepath.Join(h.root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	toolsWrite(t, h.src, files)
	return h
}

func toolsWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// compile compiles the source directory with the real compiler.
func (h *toolsHost) compile(t *testing.T) []journal.Step {
	t.Helper()
	res, err := compiler.Compile(context.Background(), os.DirFS(h.src), compiler.Options{Host: "cairn-t", Dir: h.src})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return res.Steps
}

// apply moves the host to steps with the library, as the CLI does.
func (h *toolsHost) apply(t *testing.T, js []journal.Step) (string, error) {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var out strings.Builder
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state, Create: true, Output: &out, Host: steps.Host{Tools: h.tools}})
	if err != nil {
		t.Fatalf("open the state: %v", err)
	}
	defer a.Close()
	_, err = a.Apply(ctx, steps.Move{Journal: "site.journal", Steps: js, Source: os.DirFS(h.src), SourceName: h.src, AllowRemoval: true})
	return out.String(), err
}

// kubeCall is one recorded call of the stand-in.
type kubeCall struct {
	argv       []string
	kubeconfig string
	files      map[string]string // relative path → content
}

func kubeCalls(t *testing.T, rec string) []kubeCall {
	t.Helper()
	var calls []kubeCall
	for n := 1; ; n++ {
		d := filepath.Join(rec, "call-"+strconv.Itoa(n))
		argv, err := os.ReadFile(filepath.Join(d, "argv"))
		if errors.Is(err, fs.ErrNotExist) {
			return calls
		} else if err != nil {
			t.Fatal(err)
		}
		kc, _ := os.ReadFile(filepath.Join(d, "kubeconfig"))
		c := kubeCall{argv: strings.Split(strings.TrimSuffix(string(argv), "\n"), "\n"), kubeconfig: string(kc), files: readTree(t, filepath.Join(d, "files"))}
		calls = append(calls, c)
	}
}

// readTree reads every file beneath dir; a link reads as "->TARGET".
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			m[rel] = "->" + target
			return err
		}
		data, err := os.ReadFile(p)
		m[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// standIn puts the kubectl stand-in first on PATH and returns where it
// records its calls.
func standIn(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(kubectlStandIn), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := t.TempDir()
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("KUBECTL_STUB_DIR", rec)
	t.Setenv("KUBECTL_STUB_FAIL", "")
	return rec
}

var (
	kubeWeb = map[string]string{
		"a.yaml":       "kind: ConfigMap\nmetadata: {name: a}\n",
		"sub/b.yaml":   "kind: ConfigMap\nmetadata: {name: b}\n",
		"a.yaml.notes": "not a manifest, but an input all the same\n",
	}
	kubeKust = map[string]string{
		"kustomization.yaml": "resources: [svc.yaml]\n",
		"svc.yaml":           "kind: Service\nmetadata: {name: svc}\n",
	}
)

func kubeSource() map[string]string {
	files := map[string]string{
		"site.cairn":          "kube \"deploy/web\" {}\nkube \"deploy/kust\" {\n  kustomize = true\n}\n",
		"deploy/web/link":     "->a.yaml", // not a regular file: not an input
		"deploy/kust/.hidden": "hidden files are inputs too\n",
	}
	for k, v := range kubeWeb {
		files["deploy/web/"+k] = v
	}
	for k, v := range kubeKust {
		files["deploy/kust/"+k] = v
	}
	return files
}

// TestKubectlApplyStandIn applies two KUBECTL-APPLY steps (-f and -k) and
// then the empty journal after the source was deleted, and checks the exact
// commands, environment and files handed to kubectl.
func TestKubectlApplyStandIn(t *testing.T) {
	rec := standIn(t)
	h := newToolsHost(t, kubeSource())
	h.tools = debian.Tools{Kubeconfig: "/etc/cairn-t/kubeconfig", Context: "cairn-t"}
	js := h.compile(t)
	if len(js) != 2 || js[0].Op != journal.OpKubectlApply {
		t.Fatalf("want two KUBECTL-APPLY steps, got %v", js)
	}
	kust := merge(kubeKust, map[string]string{".hidden": "hidden files are inputs too\n"})
	type want struct {
		argv  []string // the last, the directory, is checked by its base name
		base  string
		files map[string]string
	}
	check := func(t *testing.T, calls []kubeCall, wants []want) {
		t.Helper()
		if len(calls) != len(wants) {
			t.Fatalf("kubectl ran %d times, want %d: %v", len(calls), len(wants), calls)
		}
		for i, w := range wants {
			c := calls[i]
			dir := c.argv[len(c.argv)-1]
			if !slices.Equal(c.argv[:len(c.argv)-1], w.argv) || filepath.Base(dir) != w.base {
				t.Errorf("call %d: kubectl %q, want %q and a directory named %s", i+1, c.argv, w.argv, w.base)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("call %d: the directory handed to kubectl is still there (%v)", i+1, err)
			}
			if c.kubeconfig != "/etc/cairn-t/kubeconfig" {
				t.Errorf("call %d: KUBECONFIG=%q", i+1, c.kubeconfig)
			}
			if !maps.Equal(c.files, w.files) {
				t.Errorf("call %d: kubectl was handed %v, want %v", i+1, c.files, w.files)
			}
		}
	}

	if out, err := h.apply(t, js); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	} else if !strings.Contains(out, "stand-in kubectl --context=cairn-t apply") {
		t.Errorf("kubectl's output is not in the applier's output:\n%s", out)
	}
	check(t, kubeCalls(t, rec), []want{
		{[]string{"--context=cairn-t", "apply", "--recursive", "-f"}, "web", kubeWeb},
		{[]string{"--context=cairn-t", "apply", "-k"}, "kust", kust},
	})

	// The inverse needs no source: its inputs come from the state.
	if err := os.RemoveAll(h.src); err != nil {
		t.Fatal(err)
	}
	if out, err := h.apply(t, nil); err != nil {
		t.Fatalf("apply the empty journal: %v\n%s", err, out)
	}
	check(t, kubeCalls(t, rec)[2:], []want{
		{[]string{"--context=cairn-t", "delete", "--ignore-not-found=true", "-k"}, "kust", kust},
		{[]string{"--context=cairn-t", "delete", "--ignore-not-found=true", "--recursive", "-f"}, "web", kubeWeb},
	})
}

// TestKubectlApplyFailures: inputs that do not match their sha256 change
// nothing; a kubectl that fails undoes the plan.
func TestKubectlApplyFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, h *toolsHost)
		fail  string // KUBECTL_STUB_FAIL
		want  []string
		code  int
		calls [][]string // verb and flag of each kubectl call
	}{
		{"changed manifest", func(t *testing.T, h *toolsHost) {
			toolsWrite(t, h.src, map[string]string{"deploy/kust/svc.yaml": "kind: Service\n"})
		}, "", []string{"site.cairn:2:1", "KUBECTL-APPLY deploy/kust: directory", "sha256 mismatch"}, steps.ExitBadInput, nil},
		{"added manifest", func(t *testing.T, h *toolsHost) {
			toolsWrite(t, h.src, map[string]string{"deploy/web/sub/c.yaml": "kind: Secret\n"})
		}, "", []string{"KUBECTL-APPLY deploy/web: directory", "sha256 mismatch"}, steps.ExitBadInput, nil},
		{"missing directory", func(t *testing.T, h *toolsHost) {
			os.RemoveAll(filepath.Join(h.src, "deploy/web"))
		}, "", []string{"KUBECTL-APPLY deploy/web: directory", "no such file or directory"}, steps.ExitBadInput, nil},
		{"kubectl fails", nil, "apply -k", []string{"KUBECTL-APPLY deploy/kust", "kubectl apply deploy/kust", "exit status 1", "the stand-in was told to fail"},
			// The step that failed may have done part of its work: it is
			// undone too, then the one before it.
			steps.ExitFailed, [][]string{{"apply", "--recursive"}, {"apply", "-k"}, {"delete", "--ignore-not-found=true"}, {"delete", "--ignore-not-found=true"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := standIn(t)
			t.Setenv("KUBECTL_STUB_FAIL", tc.fail)
			h := newToolsHost(t, kubeSource())
			h.tools = debian.Tools{}
			js := h.compile(t)
			if tc.spoil != nil {
				tc.spoil(t, h)
			}
			_, err := h.apply(t, js)
			if err == nil {
				t.Fatal("the move succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c := steps.ExitCode(err); c != tc.code {
				t.Errorf("exit code %d, want %d (%v)", c, tc.code, err)
			}
			calls := kubeCalls(t, rec)
			if len(calls) != len(tc.calls) {
				t.Fatalf("kubectl ran %d times, want %d", len(calls), len(tc.calls))
			}
			for i, c := range calls {
				if !slices.Equal(c.argv[:2], tc.calls[i]) {
					t.Errorf("call %d: %q, want it to start %q", i+1, c.argv, tc.calls[i])
				}
			}
			if tc.code == steps.ExitFailed {
				if calls[2].argv[2] != "-k" || calls[3].argv[2] != "--recursive" {
					t.Errorf("the undo ran %q then %q, want -k then --recursive -f", calls[2].argv, calls[3].argv)
				}
				if !maps.Equal(calls[3].files, kubeWeb) {
					t.Errorf("the undo deleted %v, want %v", calls[3].files, kubeWeb)
				}
			}
		})
	}
}

// needAnsible skips a test without ansible-playbook, except in CI, whose
// .ci/run installs it.
func needAnsible(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ansible-playbook is not installed (.ci/run installs ansible-core)")
		}
		t.Skip("needs ansible-playbook (apt-get install ansible-core)")
	}
}

// twoPlays creates (operation=apply) or removes (delete) /srv/marker and
// /srv/second beneath cairn's root, one in each play.
const twoPlays = `- name: first play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: the marker file
      ansible.builtin.copy:
        dest: "{{ cairn_root }}/srv/marker"
        content: "made by ansible\n"
      when: operation == "apply"
    - name: no marker file
      ansible.builtin.file:
        path: "{{ cairn_root }}/srv/marker"
        state: absent
      when: operation == "delete"
- name: second play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: the second directory
      ansible.builtin.file:
        path: "{{ lookup('env', 'CAIRN_ROOT') }}/srv/second"
        state: "{{ 'directory' if operation == 'apply' else 'absent' }}"
`

const failingPlay = `- name: a play that fails
  hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.fail:
        msg: "cairn-t was told to fail ({{ operation }})"
      when: operation == "apply"
    - name: the undo ran
      ansible.builtin.file:
        path: "{{ cairn_root }}/srv/fail-undone"
        state: touch
      when: operation == "delete"
`

// TestPlaybookReal runs a two-play playbook with the real ansible-playbook,
// forward, then back after the source was deleted, and a failing playbook
// whose move is undone.
func TestPlaybookReal(t *testing.T) {
	needAnsible(t)
	h := newToolsHost(t, map[string]string{
		"site.cairn":       "playbook \"ops/site.yml\" {}\n",
		"ops/site.yml":     twoPlays,
		"ops/fail.yml":     failingPlay,
		"ops/ignored.yaml": "not an input of the PLAYBOOK step\n",
	})
	h.tools = debian.Tools{}
	marker, second := filepath.Join(h.root, "srv/marker"), filepath.Join(h.root, "srv/second")
	state := func() string {
		var s []string
		if data, err := os.ReadFile(marker); err == nil {
			s = append(s, "marker="+string(data))
		}
		if fi, err := os.Stat(second); err == nil && fi.IsDir() {
			s = append(s, "second")
		}
		return strings.Join(s, " ")
	}
	js := h.compile(t)
	sum := sha256.Sum256([]byte(twoPlays))
	if len(js) != 1 || js[0].Op != journal.OpPlaybook || js[0].Get("sha256") != hex.EncodeToString(sum[:]) {
		t.Fatalf("want one PLAYBOOK with the playbook file's sha256, got %v", js)
	}

	// A failing playbook after the good one: the good one is undone.
	failSum := sha256.Sum256([]byte(failingPlay))
	bad, err := journal.ParseSteps("bad.journal", []string{js[0].Canonical(), "PLAYBOOK ops/fail.yml sha256=" + hex.EncodeToString(failSum[:])})
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.apply(t, bad)
	var se *steps.StepError
	if !errors.As(err, &se) || se.Step.Args[0] != "ops/fail.yml" {
		t.Fatalf("want a StepError of PLAYBOOK ops/fail.yml, got %v\n%s", err, out)
	}
	for _, w := range []string{"bad.journal:2:1: PLAYBOOK ops/fail.yml", "playbook ops/fail.yml operation=apply", "cairn-t was told to fail (apply)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if !strings.Contains(out, "PLAY [second play]") {
		t.Errorf("the good playbook's output is not in the applier's output:\n%s", out)
	}
	if s := state(); s != "" {
		t.Fatalf("after the failed move the host holds %q, want nothing", s)
	}
	// The step that failed may have done part of its work: it is undone too.
	if err := os.Remove(filepath.Join(h.root, "srv/fail-undone")); err != nil {
		t.Errorf("the failed playbook was not run with operation=delete: %v", err)
	}

	// Forward, then back with the source gone.
	if out, err := h.apply(t, js); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if s := state(); s != "marker=made by ansible\n second" {
		t.Fatalf("after apply the host holds %q", s)
	}
	if err := os.RemoveAll(h.src); err != nil {
		t.Fatal(err)
	}
	if out, err := h.apply(t, nil); err != nil {
		t.Fatalf("apply the empty journal: %v\n%s", err, out)
	}
	if s := state(); s != "" {
		t.Fatalf("after the inverse the host holds %q, want nothing", s)
	}
}

// TestToolsPreflight: a missing driver, a playbook that does not match its
// sha256, and inputs missing from the state are input errors, before
// anything runs.
func TestToolsPreflight(t *testing.T) {
	rec := standIn(t)
	h := newToolsHost(t, map[string]string{"ops/site.yml": twoPlays, "deploy/web/a.yaml": kubeWeb["a.yaml"]})
	sum := sha256.Sum256([]byte(twoPlays))
	other := sha256.Sum256([]byte("other"))
	for _, tc := range []struct {
		name  string
		tools bool
		line  string
		want  string
	}{
		{"no driver", false, "PLAYBOOK ops/site.yml sha256=" + hex.EncodeToString(sum[:]), "PLAYBOOK ops/site.yml: no driver for outside tools"},
		{"playbook mismatch", true, "PLAYBOOK ops/site.yml sha256=" + hex.EncodeToString(other[:]), "PLAYBOOK ops/site.yml: playbook " + filepath.Join(h.src, "ops/site.yml") + ": sha256 mismatch"},
		{"missing playbook", true, "PLAYBOOK ops/none.yml sha256=" + hex.EncodeToString(sum[:]), "no such file or directory"},
		{"kube directory is a file", true, "KUBECTL-APPLY ops/site.yml sha256=" + hex.EncodeToString(sum[:]), "directory " + filepath.Join(h.src, "ops/site.yml") + ": not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.tools = debian.Tools{}
			js, err := journal.ParseSteps("p.journal", []string{tc.line})
			if err != nil {
				t.Fatal(err)
			}
			root, err := rootfs.Open(h.root)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			host := steps.Host{}
			if tc.tools {
				host.Tools = h.tools
			}
			a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: h.state, Create: true, Host: host})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			_, err = a.Apply(context.Background(), steps.Move{Journal: "p.journal", Steps: js, Source: os.DirFS(h.src), SourceName: h.src, AllowRemoval: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) || steps.ExitCode(err) != steps.ExitBadInput {
				t.Fatalf("got %v (exit %d), want an input error saying %q", err, steps.ExitCode(err), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "p.journal:1:1: ") {
				t.Errorf("the error %q does not name the step's position", err)
			}
		})
	}
	if calls := kubeCalls(t, rec); len(calls) > 0 {
		t.Errorf("kubectl ran: %v", calls)
	}
}

// TestToolInputsMissingFromState: an inverse whose inputs the state lost
// is an input error, before kubectl runs.
func TestToolInputsMissingFromState(t *testing.T) {
	rec := standIn(t)
	h := newToolsHost(t, kubeSource())
	h.tools = debian.Tools{}
	js := h.compile(t)
	if out, err := h.apply(t, js); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(h.state, "blobs")); err != nil {
		t.Fatal(err)
	}
	_, err := h.apply(t, nil)
	want := "site.cairn:1:1: KUBECTL-APPLY deploy/web: its inputs (sha256=" + js[0].Get("sha256") + ") are not in the state's blob store"
	if err == nil || !strings.Contains(err.Error(), want) || steps.ExitCode(err) != steps.ExitBadInput {
		t.Fatalf("got %v (exit %d), want an input error saying %q", err, steps.ExitCode(err), want)
	}
	if calls := kubeCalls(t, rec); len(calls) != 2 {
		t.Errorf("kubectl ran %d times, want 2 (the applies)", len(calls))
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}
