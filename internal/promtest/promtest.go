package promtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
)

// Tool returns the path of a program of the Debian package prometheus
// ("prometheus", "promtool"); without it the test skips, unless CI is
// "true", where a missing program is a failure.
func Tool(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (Debian package prometheus)", name)
		}
		t.Skipf("%s is not installed (Debian package prometheus)", name)
	}
	return bin
}

// Server is a running Prometheus server.
type Server struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL         string
	logFile     string
	targetsFile string
}

// SetTargets replaces the targets Prometheus scrapes: it reads them from a
// file that it watches, and scrapes a new target within a second or two.
func (s *Server) SetTargets(t testing.TB, targets ...string) {
	t.Helper()
	if err := writeTargets(s.targetsFile, targets); err != nil {
		t.Fatal(err)
	}
}

func writeTargets(file string, targets []string) error {
	b, err := json.Marshal([]map[string][]string{{"targets": append([]string{}, targets...)}})
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// Log is what the server logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logFile)
	return string(b)
}

// Start runs Prometheus scraping targets (host:port) every second as job
// "cairn", with the rule files ruleFiles (absolute paths) evaluated every
// second, and waits until it is ready.
func Start(t testing.TB, ruleFiles []string, targets ...string) *Server {
	t.Helper()
	bin := Tool(t, "prometheus")
	dir := t.TempDir()
	quote := func(list []string) string {
		quoted := make([]string, len(list))
		for i, a := range list {
			quoted[i] = fmt.Sprintf("%q", a)
		}
		return strings.Join(quoted, ", ")
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: cairn
    file_sd_configs:
      - files: [%q]
        refresh_interval: 1s
`, quote(ruleFiles), filepath.Join(dir, "targets.json"))
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := gittest.FreeAddr(t)
	s := &Server{URL: "http://" + addr, logFile: filepath.Join(dir, "prometheus.log"), targetsFile: filepath.Join(dir, "targets.json")}
	if err := writeTargets(s.targetsFile, targets); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(s.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // the process has its own copy
	cmd := exec.Command(bin, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	cl := http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			t.Fatalf("prometheus exited before it was ready:\n%s", s.Log())
		default:
		}
		resp, err := cl.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 30 s:\n%s", s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
