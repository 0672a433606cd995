package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-cm/cairn/internal/testcert"
)

// serve runs Serve on a free loopback port and returns its base URL; the
// server stops when the test ends, and the test fails if it does not stop
// within the shutdown bound or stops with an error.
func serve(t *testing.T, scheme, webConfig string) (base string, stop func()) {
	t.Helper()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", webConfig, f.h, nil, func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		base = scheme + "://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("Serve did not report its listener")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after cancel: %v", err)
			}
		case <-time.After(ShutdownTimeout + 5*time.Second):
			t.Error("Serve did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return base, stop
}

// get is safe to call from any goroutine: it reports, never fails the test.
func get(c *http.Client, url, user, pass string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestServePlain(t *testing.T) {
	base, stop := serve(t, "http", "")
	c := &http.Client{Timeout: 5 * time.Second}
	code, body, err := get(c, base+"/healthz", "", "")
	if err != nil || code != 200 || body != "ok" {
		t.Fatalf("GET /healthz: %d %q %v", code, body, err)
	}
	resp, err := c.Post(base+"/trigger", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /trigger: %d", resp.StatusCode)
	}
	stop()
	if _, _, err := get(c, base+"/healthz", "", ""); err == nil {
		t.Error("the server still answers after Serve returned")
	}
}

// TestServeTLSBasicAuth serves with a web-config file that turns on TLS,
// with a certificate from a CA made here, and basic auth with a bcrypt
// hash.
func TestServeTLSBasicAuth(t *testing.T) {
	dir := t.TempDir()
	caPool, certFile, keyFile := testcert.Server(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "web-config.yml")
	writeFile(t, config, fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  alice: %s\n", certFile, keyFile, hash))
	base, _ := serve(t, "https", config)

	// bcrypt of an unknown user runs at cost 10: slow under -race on a busy machine.
	trusting := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool}}}
	for _, c := range []struct {
		name, user, pass string
		code             int
	}{
		{"no credentials", "", "", 401},
		{"wrong password", "alice", "guess", 401},
		{"unknown user", "bob", "s3cret", 401},
		{"right password", "alice", "s3cret", 200},
	} {
		code, body, err := get(trusting, base+"/healthz", c.user, c.pass)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.code)
		}
		if code == 200 && body != "ok" {
			t.Errorf("%s: body %q", c.name, body)
		}
	}

	// A client that does not trust the test CA refuses the server: the
	// certificate is the one verified above, not a fallback.
	plain := &http.Client{Timeout: 5 * time.Second}
	_, _, err = get(plain, base+"/healthz", "alice", "s3cret")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client without the test CA: %v, want an unknown authority", err)
	}
	// Plain HTTP to the TLS port gets no answer from the handler.
	code, body, err := get(plain, strings.Replace(base, "https:", "http:", 1)+"/healthz", "alice", "s3cret")
	if err == nil && code == 200 {
		t.Errorf("plain HTTP to the TLS port: %d %q", code, body)
	}
}

// TestServeDrains cancels Serve while a request runs: the request still
// gets its answer, and Serve returns after it.
func TestServeDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "late")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", "", h, nil, func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		code, body, err := get(&http.Client{Timeout: 30 * time.Second}, "http://"+addr.String()+"/", "", "")
		answers <- answer{code, body, err}
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a request was running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if a := <-answers; a.err != nil || a.code != 200 || a.body != "late" {
		t.Errorf("the running request got %d %q %v", a.code, a.body, a.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(ShutdownTimeout):
		t.Error("Serve did not return once the last request was answered")
	}
}

func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n")
	badHash := filepath.Join(dir, "badhash.yml")
	writeFile(t, badHash, "basic_auth_users:\n  alice: plaintext\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct{ name, addr, config string }{
		{"no address", "", ""},
		{"missing config file", "127.0.0.1:0", filepath.Join(dir, "missing.yml")},
		{"missing certificate", "127.0.0.1:0", bad},
		{"password not a bcrypt hash", "127.0.0.1:0", badHash},
		{"address in use", busy.Addr().String(), ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		called := false
		err := Serve(ctx, c.addr, c.config, newFixture(t).h, nil, func(net.Addr) { called = true })
		cancel()
		if err == nil {
			t.Errorf("%s: no error", c.name)
		}
		if called {
			t.Errorf("%s: ready was called", c.name)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
