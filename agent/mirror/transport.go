package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// A dialer opens the upload-pack sessions of one fetch and watches their
// network connections for silence.
type dialer struct {
	idle     time.Duration
	timedOut atomic.Bool // a connection was silent for idle
	closers  []func()    // run when the fetch is over
}

// open starts an upload-pack session with the remote. The session's
// connections are closed when ctx is done, which unblocks any read or write.
// has reports whether the mirror holds an object (and so all it reaches).
func (d *dialer) open(ctx context.Context, r *remote, o *Options, has func(plumbing.Hash) bool) (transport.UploadPackSession, error) {
	switch r.ep.Protocol {
	case "file":
		// In this process, with no git binary: go-git's upload-pack for
		// the advertisement, and a pack of what the mirror lacks.
		st, err := loadLocal(r.ep.Path)
		if err != nil {
			return nil, err
		}
		s, err := server.NewClient(fixedLoader{st}).NewUploadPackSession(r.ep, nil)
		if err != nil {
			return nil, err
		}
		return &localSession{UploadPackSession: s, st: st, has: has}, nil
	case "http", "https":
		c, auth := d.httpClient(r)
		return c.NewUploadPackSession(r.ep, auth)
	case "git":
		return d.openGit(ctx, r, transport.UploadPackServiceName)
	case "ssh":
		return d.openSSH(ctx, r, o, transport.UploadPackServiceName)
	}
	return nil, fmt.Errorf("scheme %q: %w", r.ep.Protocol, ErrUnsupportedURL)
}

// httpClient is go-git's smart HTTP client over connections of the
// dialer, and the remote's credentials.
func (d *dialer) httpClient(r *remote) (transport.Transport, transport.AuthMethod) {
	tr := &http.Transport{
		// The connections' own deadlines bound the TLS handshake and the
		// wait for an answer.
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.dialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 1,
	}
	d.closers = append(d.closers, tr.CloseIdleConnections)
	var auth transport.AuthMethod
	if r.user != "" || r.password != "" {
		auth = &githttp.BasicAuth{Username: r.user, Password: r.password}
	}
	return githttp.NewClient(&http.Client{Transport: tr}), auth
}

// close releases what the fetch's sessions left behind.
func (d *dialer) close() {
	for _, c := range d.closers {
		c()
	}
}

// dialContext opens a TCP connection whose reads and writes fail when the
// peer stays silent for d.idle.
func (d *dialer) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: d.idle, KeepAlive: 15 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &idleConn{Conn: c, d: d}, nil
}

// idleConn is a connection with a deadline renewed at every read and write.
type idleConn struct {
	net.Conn
	d *dialer
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.d.idle))
	n, err := c.Conn.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.d.timedOut.Store(true)
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.d.idle))
	n, err := c.Conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.d.timedOut.Store(true)
	}
	return n, err
}

// openGit starts service (git-upload-pack or git-receive-pack) on a git
// daemon.
func (d *dialer) openGit(ctx context.Context, r *remote, service string) (*streamSession, error) {
	port := r.ep.Port
	if port == 0 {
		port = defaultPorts["git"]
	}
	addr := net.JoinHostPort(trimBrackets(r.ep.Host), strconv.Itoa(port))
	conn, err := d.dialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newStreamSession(ctx, conn, conn, conn.Close)
	req := packp.GitProtoRequest{RequestCommand: service, Pathname: r.ep.Path, Host: hostPort(r.ep)}
	if err := req.Encode(conn); err != nil {
		s.Close()
		return nil, s.fail(err)
	}
	return s, nil
}

func trimBrackets(host string) string {
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}

// streamSession speaks the upload-pack protocol (version 0) over a stream:
// a git daemon connection or the standard input and output of
// git-upload-pack run through ssh. go-git has its own for these transports,
// but they connect without a context and without a time limit.
type streamSession struct {
	w       io.Writer
	r       io.Reader
	close   func() error // ends the session and its connection
	stop    func() bool  // stops closing on the context
	ctx     context.Context
	stderr  *headBuffer // the remote's standard error, if it has one
	adv     *packp.AdvRefs
	packRun bool
	closed  bool
}

var _ transport.UploadPackSession = (*streamSession)(nil)

func newStreamSession(ctx context.Context, w io.Writer, r io.Reader, close func() error) *streamSession {
	s := &streamSession{w: w, r: r, close: close, ctx: ctx}
	// Closing the connection is what unblocks a read from a stalled server.
	s.stop = context.AfterFunc(ctx, func() { _ = close() })
	return s
}

// fail returns err, or the context's error once it is done (a read from a
// connection closed by the context fails with a less telling error).
func (s *streamSession) fail(err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func (s *streamSession) AdvertisedReferences() (*packp.AdvRefs, error) {
	return s.AdvertisedReferencesContext(s.ctx)
}

// AdvertisedReferencesContext reads the reference advertisement. The
// context of the session, not ctx, bounds it.
func (s *streamSession) AdvertisedReferencesContext(context.Context) (*packp.AdvRefs, error) {
	if s.adv != nil {
		return s.adv, nil
	}
	ar := packp.NewAdvRefs()
	if err := ar.Decode(s.r); err != nil {
		var line *pktline.ErrorLine
		switch {
		case s.ctx.Err() != nil:
			return nil, s.ctx.Err()
		case errors.As(err, &line):
			return nil, fmt.Errorf("server says: %s", line.Text)
		case errors.Is(err, packp.ErrEmptyAdvRefs):
			return nil, transport.ErrEmptyRemoteRepository
		}
		if msg := s.stderr.firstLine(); msg != "" {
			return nil, fmt.Errorf("server says: %s", msg)
		}
		return nil, fmt.Errorf("reading the reference advertisement: %w", err)
	}
	if ar.IsEmpty() {
		return nil, transport.ErrEmptyRemoteRepository
	}
	transport.FilterUnsupportedCapabilities(ar.Capabilities)
	s.adv = ar
	return ar, nil
}

// UploadPack sends the wants and haves and returns the pack the server
// sends back. Like go-git, it does not negotiate: it sends "done" at once.
func (s *streamSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	if _, err := s.AdvertisedReferencesContext(ctx); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	s.packRun = true
	var buf bytes.Buffer
	if err := req.UploadRequest.Encode(&buf); err != nil {
		return nil, err
	}
	if err := req.UploadHaves.Encode(&buf, true); err != nil {
		return nil, err
	}
	if err := pktline.NewEncoder(&buf).Encodef("done\n"); err != nil {
		return nil, err
	}
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return nil, s.fail(fmt.Errorf("sending the request: %w", err))
	}
	res := packp.NewUploadPackResponse(req)
	if err := res.Decode(io.NopCloser(s.r)); err != nil {
		return nil, s.fail(fmt.Errorf("reading the answer: %w", err))
	}
	return res, nil
}

// Close ends the session. Without a pack request, it first sends a flush,
// which tells upload-pack that nothing is wanted so that it exits cleanly.
func (s *streamSession) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.packRun && s.ctx.Err() == nil {
		_, _ = s.w.Write(pktline.FlushPkt)
	}
	s.stop()
	err := s.close()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// headBuffer keeps the first bytes written to it; it is safe for concurrent
// use, and its methods accept a nil receiver.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const headMax = 4096

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := headMax - len(b.buf); n > 0 {
		b.buf = append(b.buf, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// firstLine returns the first line that is not blank.
func (b *headBuffer) firstLine() string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range bytes.Lines(b.buf) {
		if l := bytes.TrimSpace(line); len(l) > 0 {
			return string(l)
		}
	}
	return ""
}

// loadLocal opens the objects of the local repository at dir: a bare one,
// or the top of a work tree with a .git directory or .git file.
func loadLocal(dir string) (storer.Storer, error) {
	gitDir := dir
	if _, err := os.Stat(filepath.Join(dir, "objects")); err != nil {
		if gitDir, err = dotGit(dir); err != nil {
			return nil, err
		}
	}
	// A linked work tree keeps its objects in the common directory.
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := string(bytes.TrimSpace(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		gitDir = filepath.Clean(c)
	}
	if fi, err := os.Stat(filepath.Join(gitDir, "objects")); err != nil || !fi.IsDir() {
		return nil, transport.ErrRepositoryNotFound
	}
	return filesystem.NewStorage(osfs.New(gitDir, osfs.WithBoundOS()), cache.NewObjectLRU(objectCache)), nil
}

// fixedLoader gives go-git's in-process upload-pack one repository.
type fixedLoader struct{ st storer.Storer }

func (l fixedLoader) Load(*transport.Endpoint) (storer.Storer, error) { return l.st, nil }

// localSession is go-git's in-process upload-pack for the advertisement,
// with a pack of its own: go-git's walks the whole history of the haves at
// every fetch (and fails on a have it lacks), while this one walks from the
// wants down to the objects the mirror has, so a fetch costs what it brings.
type localSession struct {
	transport.UploadPackSession
	st  storer.Storer              // the source repository
	has func(h plumbing.Hash) bool // whether the mirror has h, and so all it reaches
}

func (s *localSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	objs, err := missingObjects(ctx, s.st, s.has, req.Wants)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() { // ends when the pack is written or the reader closed
		_, err := packfile.NewEncoder(pw, s.st, false).Encode(objs, 10)
		pw.CloseWithError(err)
	}()
	return packp.NewUploadPackResponseWithPackfile(req, pr), nil
}

// missingObjects lists the objects reachable from wants in src, leaving out
// those that has reports and everything they reach. Submodule commits are
// not followed.
func missingObjects(ctx context.Context, src storer.EncodedObjectStorer, has func(plumbing.Hash) bool,
	wants []plumbing.Hash) ([]plumbing.Hash, error) {
	seen := map[plumbing.Hash]bool{}
	var objs []plumbing.Hash
	stack := slices.Clone(wants)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] || has(h) {
			continue
		}
		seen[h] = true
		if len(seen)%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		o, err := src.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", h, err)
		}
		objs = append(objs, h)
		switch o.Type() {
		case plumbing.CommitObject:
			c, err := object.DecodeCommit(src, o)
			if err != nil {
				return nil, err
			}
			stack = append(append(stack, c.ParentHashes...), c.TreeHash)
		case plumbing.TreeObject:
			t, err := object.DecodeTree(src, o)
			if err != nil {
				return nil, err
			}
			for _, e := range t.Entries {
				if e.Mode != filemode.Submodule {
					stack = append(stack, e.Hash)
				}
			}
		case plumbing.TagObject:
			t, err := object.DecodeTag(src, o)
			if err != nil {
				return nil, err
			}
			stack = append(stack, t.Target)
		}
	}
	return objs, nil
}

// dotGit finds the git directory of the work tree at dir.
func dotGit(dir string) (string, error) {
	p := filepath.Join(dir, ".git")
	fi, err := os.Stat(p)
	if err != nil {
		return "", transport.ErrRepositoryNotFound
	}
	if fi.IsDir() {
		return p, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	target, ok := bytes.CutPrefix(bytes.TrimSpace(b), []byte("gitdir:"))
	if !ok {
		return "", fmt.Errorf("%s: no gitdir line", p)
	}
	t := string(bytes.TrimSpace(target))
	if !filepath.IsAbs(t) {
		t = filepath.Join(dir, t)
	}
	return t, nil
}
