package steps_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// TestApplyFromGitCommit: the agent's way, a configuration compiled and
// applied straight from a git commit through agent/gitfs (no checkout),
// with the compiler writing rendered content straight into the state's blob
// store, gives exactly the tree the command line's way gives (the
// configuration as a directory on disk, compiled into a blob directory):
// COPY of source files (small, large, through a link inside the tree),
// COPY - of inline, rendered and plugin-written content, and KUBECTL-APPLY
// inputs handed to kubectl.
func TestApplyFromGitCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	rec := standIn(t)
	big := strings.Repeat("a large source file, a blob of its own\n", 4<<10) // > 64 KiB
	plugged := "written by a plugin\n"
	pluggedSum := sha256hex(plugged)
	files := map[string]string{
		"site.cairn": `
dir "/etc/app" {}

file "/etc/app/motd" {
  source = "files/motd"
}

file "/etc/app/big" {
  source = "files/big"
}

file "/etc/app/linked" {
  source = "files/linked"
}

file "/etc/app/inline" {
  content = "inline content\n"
  mode    = "0600"
}

file "/etc/app/app.conf" {
  template = "app.conf.tmpl"
}

plugin "blob" {
  command = "./plug.sh"
}

kube "deploy/web" {}
`,
		"files/motd":    "hello from the repository\n",
		"files/big":     big,
		"files/linked":  "->motd",
		"app.conf.tmpl": "host={{.fact.hostname}}\n",
		"plug.sh": "#!/bin/sh\nset -e\nprintf 'written by a plugin\\n' > \"$CAIRN_BLOBS/" + pluggedSum + "\"\n" +
			"echo 'COPY - /etc/app/plugged sha256=" + pluggedSum + "'\n",
		"deploy/web/a.yaml":     "kind: ConfigMap\nmetadata: {name: a}\n",
		"deploy/web/sub/b.yaml": "kind: ConfigMap\nmetadata: {name: b}\n",
	}
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	toolsWrite(t, repo, files)
	if err := os.Chmod(filepath.Join(repo, "plug.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "config"}} {
		cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	tools := debian.Tools{Kubeconfig: "/etc/cairn-t/kubeconfig"}
	ctx := context.Background()
	opts := compiler.Options{Host: "cairn-t", Env: []string{"PATH=/usr/bin:/bin"}}

	// open opens a root with a /etc and the applier of its state.
	open := func(name string) (*steps.Applier, string) {
		t.Helper()
		root := filepath.Join(base, name, "root")
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := rootfs.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		a, err := steps.Open(ctx, steps.Options{Root: r, StateDir: filepath.Join(base, name, "state"), Create: true, Host: steps.Host{Tools: tools}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a, root
	}
	apply := func(a *steps.Applier, js []journal.Step, m steps.Move) {
		t.Helper()
		m.Journal, m.Steps = "site.journal", js
		if _, err := a.Apply(ctx, m); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}

	// The command line's way: a directory, a blob directory.
	dirA, rootA := open("dir")
	blobDir := filepath.Join(base, "blobs")
	dopts := opts
	dopts.Dir, dopts.Blobs = repo, compiler.BlobDir(blobDir)
	res, err := compiler.Compile(ctx, os.DirFS(repo), dopts)
	if err != nil {
		t.Fatalf("compile the directory: %v", err)
	}
	src, err := treefs.OpenDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	apply(dirA, res.Steps, steps.Move{Source: src, SourceName: repo, Blobs: os.DirFS(blobDir), BlobsName: blobDir})
	dirJournal := res.Journal()

	// The agent's way: the commit's file system; rendered content straight
	// into the state's store; no blob source.
	gitA, rootB := open("git")
	r, err := gitfs.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	commit, hash, err := r.FS("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	gopts := opts
	gopts.Blobs = gitA.Env().Blobs
	res, err = compiler.Compile(ctx, commit, gopts)
	if err != nil {
		t.Fatalf("compile the commit: %v", err)
	}
	if !bytes.Equal(res.Journal(), dirJournal) {
		t.Fatalf("the commit compiles to another journal:\n%s\nthan the directory:\n%s", res.Journal(), dirJournal)
	}
	apply(gitA, res.Steps, steps.Move{Commit: hash.String(), Source: commit, SourceName: hash.String()})

	want, got := crashSnapshot(t, rootA), crashSnapshot(t, rootB)
	if d := crashDiff(want, got, 20); len(d) > 0 {
		t.Errorf("the tree applied from the commit differs from the one applied from the directory:\n%s", strings.Join(d, "\n"))
	}
	for name, content := range map[string]string{"motd": files["files/motd"], "big": big, "linked": files["files/motd"], "inline": "inline content\n", "app.conf": "host=cairn-t\n", "plugged": plugged} {
		if data, err := os.ReadFile(filepath.Join(rootB, "etc/app", name)); err != nil || string(data) != content {
			t.Errorf("/etc/app/%s from the commit: %.40q, %v; want %.40q", name, data, err, content)
		}
	}
	calls := kubeCalls(t, rec)
	if len(calls) != 2 {
		t.Fatalf("kubectl ran %d times, want twice (once a way)", len(calls))
	}
	if !maps.Equal(calls[0].files, calls[1].files) || calls[1].files["sub/b.yaml"] != files["deploy/web/sub/b.yaml"] {
		t.Errorf("kubectl was handed %v from the directory, %v from the commit", calls[0].files, calls[1].files)
	}

	// A source missing from the commit is named at its step, with the
	// commit's name.
	bad, err := journal.Parse("bad.journal", []byte("MKDIR /etc/app\nCOPY files/nope /etc/app/motd sha256=1111111111111111111111111111111111111111111111111111111111111111\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gitA.Apply(ctx, steps.Move{Journal: "bad.journal", Steps: bad.Steps, Source: commit, SourceName: hash.String(), DryRun: true})
	if want := "COPY files/nope: source " + hash.String() + "/files/nope: " + fs.ErrNotExist.Error(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a source missing from the commit: %v; want %q", err, want)
	}
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
