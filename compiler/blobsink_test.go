package compiler_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/blobstore"
	"github.com/cairn-cm/cairn/compiler"
)

// TestBlobsIntoStore: with Options.Blobs a blob store (no directory), every
// COPY - content, inline, rendered, and written by a plugin into
// CAIRN_BLOBS, ends in the store under its sha256 with exactly its bytes;
// nothing is written into the configuration, and the plugin's temporary
// directory is gone after the compile. A plugin blob whose content does not
// hash to its name is an error at the plugin's block.
func TestBlobsIntoStore(t *testing.T) {
	plugged := "written by a plugin\n"
	files := map[string]string{
		"site.cairn": `
file "/etc/motd" {
  content = "hello\n"
}

file "/etc/app.conf" {
  template = "app.conf.tmpl"
}

plugin "blob" {
  command = "./plug.sh"
}
`,
		"app.conf.tmpl": "host={{.fact.hostname}}\n",
		"plug.sh": "#!/bin/sh\nset -e\nprintf 'written by a plugin\\n' > \"$CAIRN_BLOBS/" + sum(plugged) + "\"\n" +
			"echo 'COPY - /etc/plugged sha256=" + sum(plugged) + "'\n",
	}
	want := []string{"hello\n", "host=web-01\n", plugged}

	dir := t.TempDir()
	writeTree(t, dir, files)
	store, err := blobstore.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	before := listTree(t, dir)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	res, err := compiler.Compile(context.Background(), os.DirFS(dir), compiler.Options{
		Host:  "web-01",
		Facts: map[string]string{"release": "12", "codename": "bookworm", "arch": "amd64"},
		Dir:   dir,
		Blobs: store,
		Env:   []string{"PATH=/usr/bin:/bin"},
	})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, content := range want {
		r, err := store.Open(sum(content))
		if err != nil {
			t.Errorf("blob of %q: %v", content, err)
			continue
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(data) != content {
			t.Errorf("blob %s holds %q (%v), want %q", sum(content), data, err, content)
		}
	}
	if !strings.Contains(string(res.Journal()), "COPY - /etc/plugged sha256="+sum(plugged)) {
		t.Errorf("the plugin's step is missing:\n%s", res.Journal())
	}
	if after := listTree(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("compiling into a store changed the configuration directory: %v, then %v", before, after)
	}
	if left := listDir(t, tmp); len(left) != 0 {
		t.Errorf("the compile left %v in the temporary directory", left)
	}

	// A plugin that writes content under another sha256.
	files["plug.sh"] = "#!/bin/sh\nprintf 'other\\n' > \"$CAIRN_BLOBS/" + sum(plugged) + "\"\n"
	writeTree(t, dir, files)
	_, err = compiler.Compile(context.Background(), os.DirFS(dir), compiler.Options{
		Host: "web-01", Facts: map[string]string{"release": "12"}, Dir: dir, Blobs: store, Env: []string{"PATH=/usr/bin:/bin"},
	})
	if err == nil || !strings.Contains(err.Error(), `site.cairn:10:1: plugin "blob": the plugin wrote blob `+sum(plugged)+" whose content hashes to "+sum("other\n")) {
		t.Errorf("a plugin blob of other content: %v", err)
	}
}
