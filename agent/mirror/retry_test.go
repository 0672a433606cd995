package mirror_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// droppingProxy listens on loopback and resets the first drop connections
// (as git daemon does to those beyond its --max-connections), then relays
// the others to the git daemon at target. It returns the git:// URL of
// path through it, and how many connections it took.
func droppingProxy(t *testing.T, target string, drop int32) (string, *atomic.Int32) {
	t.Helper()
	tu, err := neturl.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for i := 0; i < 100; i++ { // bounded: a test makes a handful
			c, err := l.Accept()
			if err != nil {
				return
			}
			if n.Add(1) <= drop {
				c.(*net.TCPConn).SetLinger(0) // close with a reset
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", tu.Host)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return "git://" + l.Addr().String() + tu.Path, &n
}

// TestFetchRetriesDroppedConnections: a server that drops the connection or
// answers 503 is tried again (up to mirror.Attempts times), so a host a
// busy server turned away still moves in this run; one that keeps doing it
// fails with the cause; a refusal that is an answer (no such branch) is not
// tried again.
func TestFetchRetriesDroppedConnections(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit(t, "one")
	u.push(t)
	daemon := gittest.ServeDaemon(t, u.bare)

	t.Run("git daemon resets twice", func(t *testing.T) {
		url, conns := droppingProxy(t, daemon, 2)
		m, err := mirror.Open(filepath.Join(t.TempDir(), "git"), url, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		wantTip(t, fetch(t, m, "main"), "main", c1)
		if got := conns.Load(); got != 3 {
			t.Errorf("%d connections, want 3 (two reset, one served)", got)
		}
	})

	t.Run("git daemon resets every time", func(t *testing.T) {
		url, conns := droppingProxy(t, daemon, 100)
		m, err := mirror.Open(filepath.Join(t.TempDir(), "git"), url, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		start := time.Now()
		_, err = m.Fetch(context.Background(), "main")
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("fetch through a server that always resets: %v, want a reset", err)
		}
		if got := conns.Load(); got != mirror.Attempts {
			t.Errorf("%d connections, want %d attempts", got, mirror.Attempts)
		}
		// 0.25-0.5 s, 0.5-1 s, 1-2 s: the waits grow.
		if d := time.Since(start); d < 1750*time.Millisecond {
			t.Errorf("%d attempts took %s: the waits between them are too short", mirror.Attempts, d)
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		url, _ := droppingProxy(t, daemon, 100)
		m, err := mirror.Open(filepath.Join(t.TempDir(), "git"), url, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := m.Fetch(ctx, "main"); err == nil {
			t.Fatal("fetch succeeded through a server that always resets")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("a cancelled fetch went on waiting to try again: %s", d)
		}
	})

	t.Run("no such branch is not tried again", func(t *testing.T) {
		url, conns := droppingProxy(t, daemon, 0)
		m, err := mirror.Open(filepath.Join(t.TempDir(), "git"), url, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.Fetch(context.Background(), "nosuch"); !errors.Is(err, mirror.ErrNoBranch) {
			t.Fatalf("fetch of a missing branch: %v", err)
		}
		if got := conns.Load(); got != 1 {
			t.Errorf("a missing branch took %d connections, want 1", got)
		}
	})

	t.Run("http 503 then served", func(t *testing.T) {
		backend, _ := gittest.ServeHTTP(t, u.bare)
		bu, err := neturl.Parse(backend)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(&neturl.URL{Scheme: bu.Scheme, Host: bu.Host})
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		defer srv.Close()
		m, err := mirror.Open(filepath.Join(t.TempDir(), "git"), srv.URL+bu.Path, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		wantTip(t, fetch(t, m, "main"), "main", c1)
		if got := n.Load(); got < 3 {
			t.Errorf("%d requests, want the 503, then the advertisement and the pack", got)
		}
	})
}
