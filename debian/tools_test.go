package debian

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestToolArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"apply -f", KubectlArgs("", "apply", "/d", false), []string{"apply", "--recursive", "-f", "/d"}},
		{"apply -k with a context", KubectlArgs("prod", "apply", "/d", true), []string{"--context=prod", "apply", "-k", "/d"}},
		{"delete -f", KubectlArgs("", "delete", "/d", false), []string{"delete", "--ignore-not-found=true", "--recursive", "-f", "/d"}},
		{"delete -k", KubectlArgs("", "delete", "/d", true), []string{"delete", "--ignore-not-found=true", "-k", "/d"}},
		{"playbook", PlaybookArgs("/p/site.yml", "delete", "/r"), []string{"-c", "local", "-i", "localhost,", "-e", "operation=delete", "-e", "cairn_root=/r", "/p/site.yml"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestToolsRun runs the driver with scripts standing in for the tools: the
// environment it passes, its output, and the errors of a tool that fails.
func TestToolsRun(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	echo := script("echo", `echo "KUBECONFIG=$KUBECONFIG CAIRN_ROOT=$CAIRN_ROOT args=$*"`+"\n")
	fail := script("fail", "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; done\necho 'fatal: it broke' >&2\nexit 3\n")
	t.Setenv("KUBECONFIG", "/from/env")
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name    string
		run     func(out *strings.Builder) error
		out     string
		wantErr []string
		notErr  string
	}{
		{"kubectl, KUBECONFIG passed through", func(out *strings.Builder) error {
			return Tools{KubectlProgram: echo}.Kubectl(ctx, "apply", "/d", false, out)
		}, "KUBECONFIG=/from/env CAIRN_ROOT= args=apply --recursive -f /d\n", nil, ""},
		{"kubectl, KUBECONFIG and context set", func(out *strings.Builder) error {
			return Tools{KubectlProgram: echo, Kubeconfig: "/k", Context: "c"}.Kubectl(ctx, "delete", "/d", true, out)
		}, "KUBECONFIG=/k CAIRN_ROOT= args=--context=c delete --ignore-not-found=true -k /d\n", nil, ""},
		{"playbook", func(out *strings.Builder) error {
			return Tools{PlaybookProgram: echo}.Playbook(ctx, "/p.yml", "apply", "/r", out)
		}, "KUBECONFIG=/from/env CAIRN_ROOT=/r args=-c local -i localhost, -e operation=apply -e cairn_root=/r /p.yml\n", nil, ""},
		{"a tool that fails", func(out *strings.Builder) error {
			return Tools{PlaybookProgram: fail}.Playbook(ctx, "/p.yml", "delete", "/", out)
		}, "", []string{fail + " -c local", "exit status 3", "line 10\nfatal: it broke"}, "line 2\n"},
		{"a bad verb", func(out *strings.Builder) error {
			return Tools{KubectlProgram: echo}.Kubectl(ctx, "create", "/d", false, out)
		}, "", []string{`kubectl: unknown verb "create"`}, ""},
		{"a canceled context", func(out *strings.Builder) error {
			return Tools{KubectlProgram: echo}.Kubectl(canceled, "apply", "/d", false, out)
		}, "", []string{"not started", "context canceled"}, ""},
		{"no such program", func(out *strings.Builder) error {
			return Tools{KubectlProgram: filepath.Join(dir, "none")}.Kubectl(ctx, "apply", "/d", false, out)
		}, "", []string{"none apply --recursive -f /d", "no such file or directory"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := tc.run(&out)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if out.String() != tc.out {
					t.Errorf("output %q, want %q", out.String(), tc.out)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.notErr != "" && strings.Contains(err.Error(), tc.notErr) {
				t.Errorf("error %q quotes more than the last lines", err)
			}
		})
	}
}

// TestToolsKilled cancels the context of a tool that runs, with a child of
// its own: the whole process group dies at once, and the error says so.
func TestToolsKilled(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	tool := filepath.Join(dir, "kubectl")
	body := "#!/bin/sh\nsleep 30 &\necho $! > " + pidFile + ".tmp\nmv " + pidFile + ".tmp " + pidFile + "\nwait\n"
	if err := os.WriteFile(tool, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Tools{KubectlProgram: tool}.Kubectl(ctx, "apply", "/d", false, io.Discard) }()
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tool did not start its child")
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	cancel(errors.New("killed by the test"))
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "its process group was killed: killed by the test") {
			t.Errorf("error = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tool still runs 10s after its context was canceled")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	for deadline := time.Now().Add(5 * time.Second); processAlive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tool's child %d outlived it", pid)
		}
	}
}

// processAlive reports whether pid runs (a zombie, killed and waiting for
// its parent, does not).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
