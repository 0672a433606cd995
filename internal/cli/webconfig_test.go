package cli_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/testcert"
)

// TestAgentWebConfig runs the agent with --web-config: TLS with a
// certificate made here, basic auth with a bcrypt hash, or both. /metrics
// answers 401 without the credentials and 200 with them, and cairn status
// still prints the agent's status (read from the state directory, since
// it cannot read the agent's /status).
func TestAgentWebConfig(t *testing.T) {
	const user, password = "prometheus", "s3cret pass"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	r := gittest.New(t)
	c1 := r.Commit("main", fleetFiles(1, "one\n", ""))
	for _, tc := range []struct {
		name      string
		tls, auth bool
	}{
		{"tls and basic auth", true, true},
		{"basic auth", false, true},
		{"tls", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var config strings.Builder
			client := &http.Client{Timeout: 10 * time.Second}
			scheme := "http"
			if tc.tls {
				pool, certFile, keyFile := testcert.Server(t, dir)
				fmt.Fprintf(&config, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile)
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
				scheme = "https"
			}
			if tc.auth {
				fmt.Fprintf(&config, "basic_auth_users:\n  %s: %s\n", user, hash)
			}
			webConfig := filepath.Join(dir, "web.yml")
			if err := os.WriteFile(webConfig, []byte(config.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			a, root, state := startWeb02(t, r.Dir, "--web-config", webConfig)
			base := scheme + "://" + a.addr

			get := func(path, user, password string) (int, string) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, base+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if user != "" {
					req.SetBasicAuth(user, password)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			// The first run, seen through the authenticated endpoint.
			deadline := time.Now().Add(60 * time.Second)
			for {
				code, body := get("/status", user, password)
				var doc status.Document
				if code == http.StatusOK && json.Unmarshal([]byte(body), &doc) == nil && appliedIs(c1)(doc) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("waited 60 s for the first commit: %d %s", code, body)
				}
				time.Sleep(50 * time.Millisecond)
			}

			if tc.auth {
				for _, cred := range [][2]string{{"", ""}, {user, "wrong"}, {"nobody", password}} {
					if code, _ := get("/metrics", cred[0], cred[1]); code != http.StatusUnauthorized {
						t.Errorf("GET /metrics as %q/%q: %d, want 401", cred[0], cred[1], code)
					}
				}
			}
			code, body := get("/metrics", user, password)
			if code != http.StatusOK || !strings.Contains(body, `cairn_applied_commit_info{branch="main",commit="`+c1+`",group="web"} 1`) {
				t.Errorf("GET /metrics with the credentials: %d\n%s", code, grepLines(body, "cairn_applied"))
			}
			if tc.tls {
				// Plain HTTP gets no metrics from a TLS listener.
				resp, err := http.Get("http://" + a.addr + "/metrics")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						t.Errorf("plain GET /metrics of a TLS listener: %d", resp.StatusCode)
					}
				}
			}

			// cairn status, pointed at the agent's --listen, still tells
			// the agent's status, and within the time a person waits.
			doc, code := cairnStatus(t, "--listen", a.addr, "--root", root, "--state", state, "--host", "web-02")
			if code != 0 || doc.Applied == nil || doc.Applied.Commit != c1 || !doc.Converged || doc.State != "idle" {
				t.Errorf("cairn status: exit %d, %+v", code, doc)
			}
		})
	}
}

// cairnStatus runs cairn status --json with args, for at most 30 s, and
// returns its document and exit code.
func cairnStatus(t *testing.T, args ...string) (status.Document, int) {
	t.Helper()
	bin, err := exec.LookPath("cairn")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"status", "--json"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("cairn status: %v\n%s", err, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("cairn status did not end within 30 s\n%s", stderr.String())
	}
	var doc status.Document
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("cairn status --json: %v\n%s\n%s", err, out, stderr.String())
	}
	return doc, code
}
