package compiler

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPluginTimeout: a plugin that runs past the timeout is killed with
// everything it started, and the error names the plugin block. The test
// shortens PluginTimeout to a second.
func TestPluginTimeout(t *testing.T) {
	defer func(d time.Duration) { pluginTimeout = d }(pluginTimeout)
	pluginTimeout = time.Second
	dir := t.TempDir()
	pids := filepath.Join(t.TempDir(), "pids")
	files := map[string]string{
		"site.cairn": "dir \"/a\" {}\n\nplugin \"slow\" {\n  command = \"./slow.sh\"\n}\n",
		// A child in the background with its output redirected, and the
		// plugin itself, both sleeping.
		"slow.sh": "#!/bin/sh\nsleep 600 >/dev/null 2>&1 &\necho $! >" + pids + "\necho $$ >>" + pids + "\nexec sleep 600\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err := Compile(context.Background(), nil, Options{Host: "web-01", Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the compile took %v", took)
	}
	want := `site.cairn:3:1: plugin "slow": ./slow.sh: killed: it ran longer than 1s`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	data, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(field)
		for i := 0; ; i++ {
			if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
				break
			}
			if i == 100 {
				t.Errorf("process %d the plugin started still runs", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
