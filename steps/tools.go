package steps

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cairn-cm/cairn/blobstore"
	"github.com/cairn-cm/cairn/journal"
)

// Tools runs the outside tools that KUBECTL-APPLY and PLAYBOOK drive
// (debian implements it). The applier hands it inputs it materialised from
// the blob store into a temporary directory, never the source itself, so
// that an inverse or a rollback runs on exactly what was applied.
type Tools interface {
	// Kubectl runs kubectl VERB ("apply" or "delete") on the manifests in
	// dir: with -k dir when kustomize is set, else with -f dir (all files
	// beneath it). Its output goes to out.
	Kubectl(ctx context.Context, verb, dir string, kustomize bool, out io.Writer) error
	// Playbook runs ansible-playbook on this host (-c local -i localhost,)
	// with the playbook file and the extra vars operation=OPERATION
	// ("apply" or "delete") and cairn_root=ROOT. Its output goes to out.
	Playbook(ctx context.Context, playbook, operation, root string, out io.Writer) error
}

// The inputs of a KUBECTL-APPLY or PLAYBOOK step are kept in the blob store
// by hash, so that neither its inverse nor a rollback needs the source again:
//
//   - PLAYBOOK PATH sha256=H: the playbook file is blob H (the compiler
//     hashes just that file).
//   - KUBECTL-APPLY PATH sha256=H: every regular file beneath the directory
//     is a blob of its own, and a manifest blob lists them, one line each in
//     the order of a lexical walk, "RELPATH\x00SHA256\n". The manifest is
//     exactly what the compiler hashes to make H, so the manifest is blob H.

// toolDriver returns the outside-tools driver, or an error naming the step.
func toolDriver(env *Env, s *journal.Step) (Tools, error) {
	if env.Tools == nil {
		return nil, fmt.Errorf("%s %s: no driver for outside tools (kubectl, ansible-playbook) in this build", s.Op, s.Args[0])
	}
	return env.Tools, nil
}

// isToolOp reports whether op runs an outside tool on inputs kept by hash.
func isToolOp(op string) bool {
	return op == journal.OpKubectlApply || op == journal.OpPlaybook
}

// toolInputs is the preflight of a KUBECTL-APPLY or PLAYBOOK op: a driver
// must be there; a forward op's inputs are read from the source (src,
// named srcName in messages), checked against the step's sha256 and kept in
// sink, the blob store (unless they are there already); an inverse op's
// inputs must be in the store.
func (a *Applier) toolInputs(op journal.Op, src fs.FS, srcName string, done map[string]bool, sink blobSink) journal.ErrorList {
	s := op.Step
	if op.Noop {
		return nil
	}
	if _, err := toolDriver(a.env, s); err != nil {
		return journal.ErrorList{&journal.Error{Pos: s.Pos, Msg: err.Error()}}
	}
	sum := s.Get("sha256")
	key := s.Op + " " + sum
	if done[key] {
		return nil
	}
	done[key] = true
	var err error
	if op.Action == journal.Inverse {
		err = checkInputs(a.env.Blobs, s)
	} else if !sink.Has(sum) || checkInputs(a.env.Blobs, s) != nil {
		// Stored before is not enough: every input the manifest names must
		// be there too, or the op (and then its undo) would fail at run time.
		err = storeInputs(sink, s, src, srcName)
	}
	if err != nil {
		return journal.ErrorList{&journal.Error{Pos: s.Pos, Msg: fmt.Sprintf("%s %s: %v", s.Op, s.Args[0], err)}}
	}
	return nil
}

// storeInputs reads a step's inputs from src (the directory of a
// KUBECTL-APPLY, the file of a PLAYBOOK, at the step's PATH), checks them
// against its sha256 and puts them in the store.
func storeInputs(b blobSink, s *journal.Step, src fs.FS, srcName string) error {
	want := s.Get("sha256")
	rel := path.Clean(s.Args[0])
	display := filepath.Join(srcName, filepath.FromSlash(s.Args[0]))
	if s.Op == journal.OpPlaybook {
		if _, err := putInput(b, src, rel, sourceName{dir: display}, want); err != nil {
			return fmt.Errorf("playbook %s: %w", display, errnoOf(err))
		}
		return nil
	}
	manifest, err := storeDir(b, src, rel, display)
	if err != nil {
		return fmt.Errorf("directory %s: %w", display, err)
	}
	if _, err := b.Put(bytes.NewReader(manifest), want); err != nil {
		return fmt.Errorf("directory %s: %w", display, err)
	}
	return nil
}

// storeDir puts every regular file beneath the directory dir of src in the
// store and returns the manifest that lists them. The walk is the
// compiler's (fs.WalkDir, which follows a link at dir itself and skips
// every other non-regular file), so the manifest hashes to the compiler's
// sha256 of the directory.
func storeDir(b blobSink, src fs.FS, dir, display string) ([]byte, error) {
	if src == nil {
		return nil, errors.New("no source to read it from")
	}
	if fi, err := fs.Stat(src, dir); err != nil {
		return nil, errnoOf(err)
	} else if !fi.IsDir() {
		return nil, errors.New("not a directory")
	}
	var manifest bytes.Buffer
	err := fs.WalkDir(src, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if dir == "." {
			rel = p
		}
		if strings.ContainsAny(rel, "\x00\n") {
			return fmt.Errorf("%q: a file name with a newline cannot be listed", rel)
		}
		sum, err := putInput(b, src, p, sourceName{display, rel}, "")
		if err != nil {
			return err
		}
		fmt.Fprintf(&manifest, "%s\x00%s\n", rel, sum)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return manifest.Bytes(), nil
}

// inputFile is one file of a KUBECTL-APPLY manifest.
type inputFile struct{ rel, sum string }

// readManifest reads a KUBECTL-APPLY manifest from the store.
func readManifest(b *Blobs, sum string) ([]inputFile, error) {
	r, err := b.Open(sum)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var files []inputFile
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		rel, fsum, ok := strings.Cut(sc.Text(), "\x00")
		if !ok || !filepath.IsLocal(rel) || path.Clean(rel) != rel {
			return nil, fmt.Errorf("manifest blob %s: bad line %q", sum, sc.Text())
		}
		if !blobstore.ValidSum(fsum) {
			return nil, fmt.Errorf("manifest blob %s: bad sha256 in line %q", sum, sc.Text())
		}
		files = append(files, inputFile{rel, fsum})
	}
	return files, sc.Err()
}

// checkInputs checks that the inputs of a step that ran before are in the
// store.
func checkInputs(b *Blobs, s *journal.Step) error {
	sum := s.Get("sha256")
	if !b.Has(sum) {
		return fmt.Errorf("its inputs (sha256=%s) are not in the state's blob store", sum)
	}
	if s.Op == journal.OpPlaybook {
		return nil
	}
	files, err := readManifest(b, sum)
	if err != nil {
		return err
	}
	for _, f := range files {
		if !b.Has(f.sum) {
			return fmt.Errorf("its input %s (sha256=%s) is not in the state's blob store", f.rel, f.sum)
		}
	}
	return nil
}

// materialize writes a step's inputs from the store into a new temporary
// directory: the KUBECTL-APPLY directory, or the PLAYBOOK file, each under
// the base name of the step's PATH. It returns that path and a function
// that removes the temporary directory.
func materialize(env *Env, s *journal.Step) (string, func(), error) {
	if env.Blobs == nil {
		return "", nil, errors.New("no blob store to take the inputs from")
	}
	sum := s.Get("sha256")
	tmp, err := os.MkdirTemp("", "cairn-"+strings.ToLower(s.Op)+"-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dst := filepath.Join(tmp, path.Base(s.Args[0]))
	if s.Op == journal.OpPlaybook {
		err = writeBlob(env.Blobs, sum, dst)
	} else {
		err = writeTree(env.Blobs, sum, dst)
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("inputs sha256=%s from the blob store: %w", sum, err)
	}
	return dst, cleanup, nil
}

// writeTree writes the files a manifest lists beneath dir.
func writeTree(b *Blobs, sum, dir string) error {
	files, err := readManifest(b, sum)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		name := filepath.Join(dir, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			return err
		}
		if err := writeBlob(b, f.sum, name); err != nil {
			return fmt.Errorf("%s: %w", f.rel, err)
		}
	}
	return nil
}

// writeBlob writes a blob to a new file.
func writeBlob(b *Blobs, sum, name string) error {
	r, err := b.Open(sum)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := blobstore.CopyBuffer(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
