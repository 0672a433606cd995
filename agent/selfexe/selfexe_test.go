package selfexe

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replace puts data at path as dpkg does: a new file renamed over the old.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".dpkg-new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestReplaced(t *testing.T) {
	prog := []byte("#!/bin/sh\necho one\n")
	other := []byte("#!/bin/sh\necho two\n")
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, path string)
		want    bool
		wantErr bool
	}{
		{"untouched", func(*testing.T, string) {}, false, false},
		{"the same program in a new file", func(t *testing.T, p string) { replace(t, p, prog) }, false, false},
		{"another program", func(t *testing.T, p string) { replace(t, p, other) }, true, false},
		{"rewritten in place", func(t *testing.T, p string) {
			if err := os.WriteFile(p, other, 0o755); err != nil {
				t.Fatal(err)
			}
			// The same size: the modification time tells.
			os.Chtimes(p, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
		}, true, false},
		{"removed", func(t *testing.T, p string) { os.Remove(p) }, false, false},
		{"unreadable", func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, running := filepath.Join(dir, "prog"), filepath.Join(dir, "running")
			if err := os.WriteFile(path, prog, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(running, prog, 0o755); err != nil {
				t.Fatal(err)
			}
			e, err := openAt(path, running)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, path)
			got, err := e.Replaced()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Replaced: err %v, want an error: %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("Replaced = %v, want %v", got, tc.want)
			}
			// Asked again, the answer stays.
			if again, err := e.Replaced(); again != got || (err != nil) != tc.wantErr {
				t.Fatalf("Replaced again = %v, %v; want %v", again, err, got)
			}
		})
	}
}

// TestSameProgramBecomesTheOne: once a new file with the same program was
// seen, it is the one compared with: a later replacement by another
// program is seen, and the running program is read only once.
func TestSameProgramBecomesTheOne(t *testing.T) {
	dir := t.TempDir()
	path, running := filepath.Join(dir, "prog"), filepath.Join(dir, "running")
	prog := []byte("#!/bin/sh\necho one\n")
	for _, p := range []string{path, running} {
		if err := os.WriteFile(p, prog, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e, err := openAt(path, running)
	if err != nil {
		t.Fatal(err)
	}
	replace(t, path, prog)
	if r, err := e.Replaced(); r || err != nil {
		t.Fatalf("the same program: Replaced = %v, %v", r, err)
	}
	before := e.id
	if id, _ := stat(path); id != before {
		t.Fatalf("identity not taken over: %+v, want %+v", before, id)
	}
	os.Remove(running) // the running program is not read again
	replace(t, path, []byte("#!/bin/sh\necho two\n"))
	if r, err := e.Replaced(); !r || err != nil {
		t.Fatalf("another program: Replaced = %v, %v; want true", r, err)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prog")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n[ \"$1\" = version ] || { echo bad usage >&2; exit 2; }\necho 'cairn 1.1.0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := openAt(path, path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background(), "version")
	if err != nil || out != "cairn 1.1.0" {
		t.Fatalf("Run version = %q, %v", out, err)
	}
	if _, err := e.Run(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "bad usage") {
		t.Fatalf("Run nope: err %v, want exit 2 with its stderr", err)
	}
}

// The helper process of TestExec: this test binary, copied, run with
// SELFEXE_HELPER set.
func TestMain(m *testing.M) {
	switch os.Getenv("SELFEXE_HELPER") {
	case "":
		os.Exit(m.Run())
	case "first":
		e, err := Open()
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("pid", os.Getpid(), e.Path())
		// Wait until the test replaced the file.
		bufio.NewReader(os.Stdin).ReadString('\n')
		r, err := e.Replaced()
		fmt.Println("replaced", r, err)
		if !r {
			os.Exit(1)
		}
		os.Setenv("SELFEXE_HELPER", "second")
		env := os.Environ()
		err = e.Exec(os.Args, env)
		fmt.Println("error", err)
		os.Exit(1)
	case "second":
		e, err := Open()
		fmt.Println("pid", os.Getpid(), err == nil && e != nil, strings.Join(os.Args[1:], " "))
		os.Exit(0)
	}
}

// TestExec runs a copy of this test binary, replaces the file with
// another program (the same one with a byte appended, which still runs),
// and checks that the process sees it and re-executes it with the same
// PID and arguments.
func TestExec(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-test.run=^$", "arg two")
	cmd.Env = append(os.Environ(), "SELFEXE_HELPER=first")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("the helper ended early: %v", lines.Err())
		}
		return lines.Text()
	}
	want := fmt.Sprintf("pid %d %s", cmd.Process.Pid, path)
	if got := next(); got != want {
		t.Fatalf("helper: %q, want %q", got, want)
	}
	replace(t, path, append(data, 0))
	stdin.Write([]byte("go\n"))
	if got := next(); got != "replaced true <nil>" {
		t.Fatalf("helper: %q, want it to see the replacement", got)
	}
	want = fmt.Sprintf("pid %d true -test.run=^$ arg two", cmd.Process.Pid)
	if got := next(); got != want {
		t.Fatalf("after the exec: %q, want %q (same PID and arguments)", got, want)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}
