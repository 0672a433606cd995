package steps_test

import (
	"context"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-cm/cairn/steps"
)

// snapTools is a Tools that records its calls, each with the inputs it
// was handed (the manifests' files, the playbook's text), and, when its
// tool runs forward, copies the state directory as a kill -9 at that
// moment leaves it: what the process wrote to its files, nothing it still
// held.
type snapTools struct {
	mu          sync.Mutex
	state, snap string // snap: where to copy state once, "" for never
	calls       []string
	inputs      []map[string]string // the files of each call, by relative path
	t           *testing.T
}

func (s *snapTools) record(call string, inputs map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
	s.inputs = append(s.inputs, inputs)
	if s.snap != "" && strings.HasSuffix(call, " apply") {
		if err := copyStateTree(s.state, s.snap); err != nil {
			s.t.Errorf("snapshot of the state: %v", err)
		}
		s.snap = ""
	}
}

func (s *snapTools) Kubectl(_ context.Context, verb, dir string, _ bool, _ io.Writer) error {
	s.record("kubectl "+verb, readTree(s.t, dir))
	return nil
}

func (s *snapTools) Playbook(_ context.Context, playbook, operation, _ string, _ io.Writer) error {
	data, err := os.ReadFile(playbook)
	if err != nil {
		s.t.Errorf("the playbook handed to the tool: %v", err)
	}
	s.record("playbook "+operation, map[string]string{"site.yml": string(data)})
	return nil
}

// copyStateTree copies the regular files and directories beneath src to dst.
func copyStateTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o600)
	})
}

// TestToolInputsDurableBeforeToolRuns holds spec §6's crash rule for a
// PLAYBOOK and a KUBECTL-APPLY step: a move killed while (or after) its tool
// ran is undone by the next command, which runs the tool's inverse on the
// inputs kept in the blob store. Those inputs, put by the preflight, must
// therefore be in the store, durably, before the tool runs; the state is
// copied as the kill leaves it, and a recovery from the copy must run
// "playbook delete" (or "kubectl delete"). A batch that made the store
// durable only for undo images with content (undoNeedsBlobs) would lose the
// preflight's inputs, held in the store's write-behind buffer.
func TestToolInputsDurableBeforeToolRuns(t *testing.T) {
	sources := map[string]string{"site.yml": "- hosts: localhost\n  tasks: []\n", "deploy/cm.yaml": "kind: ConfigMap\n"}
	manifest := "cm.yaml\x00" + sha256hex(sources["deploy/cm.yaml"]) + "\n"
	for _, tc := range []struct {
		name, step, want string
		inputs           map[string]string // what the recovery's call must be handed
	}{
		{"playbook", "PLAYBOOK site.yml sha256=" + sha256hex(sources["site.yml"]), "playbook delete", map[string]string{"site.yml": sources["site.yml"]}},
		{"kubectl", "KUBECTL-APPLY deploy sha256=" + sha256hex(manifest), "kubectl delete", map[string]string{"cm.yaml": sources["deploy/cm.yaml"]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toolInputsDurable(t, sources, tc.step, tc.want, tc.inputs)
		})
	}
}

func toolInputsDurable(t *testing.T, sources map[string]string, step, want string, inputs map[string]string) {
	base := t.TempDir()
	rootDir, state, src, snap := filepath.Join(base, "root"), filepath.Join(base, "state"), filepath.Join(base, "src"), filepath.Join(base, "killed")
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	toolsWrite(t, src, sources)
	j, root := parseAndOpenRoot(t, rootDir, step+"\n")
	ctx := context.Background()

	tools := &snapTools{state: state, snap: snap, t: t}
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: state, Create: true, Host: steps.Host{Tools: tools}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, steps.Move{Journal: "site.journal", Steps: j, Source: os.DirFS(src), SourceName: src}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	a.Close()
	if _, err := os.Stat(filepath.Join(snap, "intent.log")); err != nil {
		t.Fatalf("the copy of the state taken while the tool ran has no intent log: %v", err)
	}

	// The next command, on the state as the kill left it, undoes the move
	// with the inputs the blob store kept.
	again := &snapTools{t: t}
	b, err := steps.Open(ctx, steps.Options{Root: root, StateDir: snap, Host: steps.Host{Tools: again}})
	if err != nil {
		t.Fatalf("recovery of a move killed while its tool ran: %v", err)
	}
	b.Close()
	if got := strings.Join(again.calls, ","); got != want {
		t.Fatalf("recovery ran %q, want %q", got, want)
	}
	if got := again.inputs[0]; !maps.Equal(got, inputs) {
		t.Errorf("recovery's %s was handed %q, want %q", want, got, inputs)
	}
}
