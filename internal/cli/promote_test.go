package cli_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-cm/cairn/agent/metrics"
	"github.com/cairn-cm/cairn/internal/cli"
	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/promtest"
)

// canaryHost serves the metrics of a cairn agent of group canary, made by
// the agent's metrics package, on a loopback address.
type canaryHost struct {
	addr string
	mu   sync.Mutex
	m    *metrics.Metrics
	reg  *prometheus.Registry
}

func newCanaryHost(t *testing.T, ip, name, commit string) *canaryHost {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	h := &canaryHost{addr: l.Addr().String(), reg: prometheus.NewRegistry()}
	if h.m, err = metrics.New(h.reg, metrics.Options{Version: "test", Host: name, States: []string{"idle"}, Kinds: []string{"FILE"}}); err != nil {
		t.Fatal(err)
	}
	h.m.SetGroup("canary", "canary")
	h.at(commit)
	h.m.SetConverged(true)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

// at makes the host run commit.
func (h *canaryHost) at(commit string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m.SetApplied(commit, "canary", "canary", time.Unix(1700000000, 0))
	h.m.SetTarget(commit, "canary", time.Unix(1700000000, 0))
}

func (h *canaryHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// TestPromoteWithPrometheus runs cairn promote against a git daemon and a
// real Prometheus scraping two canaries: refused (exit 1, naming the host
// that lags) while one runs another commit, promoted (exit 0) once both ran
// the canary tip for the whole soak, and then nothing to do.
func TestPromoteWithPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus for about 10 s")
	}
	work := gittest.New(t)
	base := work.Commit("main", map[string]string{"hosts.cairn": `hosts {
  group "canary" {
    match  = ["canary-*"]
    branch = "canary"
  }
  group "web" {
    match = ["web-*"]
  }
}
`})
	tip := work.Commit("canary", map[string]string{"main.cairn": "# a change\n"})
	bare := filepath.Join(t.TempDir(), "config.git")
	gittest.Run(t, work.Dir, "clone", "-q", "--bare", work.Dir, bare)
	gittest.Run(t, bare, "config", "daemon.receivepack", "true")
	repo := gittest.ServeDaemon(t, bare)

	one := newCanaryHost(t, "127.0.0.2", "canary-01", tip)
	two := newCanaryHost(t, "127.0.0.3", "canary-02", base)
	prom := promtest.Start(t, nil, one.addr, two.addr)

	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Run(append([]string{"promote", "--repo", repo, "--from", "canary", "--to", "web",
			"--prometheus", prom.URL, "--soak", "2s", "--min-hosts", "2"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	// Once Prometheus has scraped both (it takes a few seconds to start):
	// canary-02 lags.
	lags := "canary-02 (" + two.addr + "): at commit " + base[:8]
	var code int
	var out, errs string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if code, out, errs = run(); strings.Contains(out, lags) {
			break
		}
	}
	if code != 1 || !strings.Contains(out, "not promoted canary -> web") || !strings.Contains(out, lags) {
		t.Fatalf("with canary-02 behind: exit %d\n%s%s", code, out, errs)
	}
	if got := gittest.Run(t, bare, "rev-parse", "main"); got != base {
		t.Fatalf("main moved to %s", got)
	}

	two.at(tip)
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(time.Second)
		code, out, errs = run("--dry-run")
		if code == 0 || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || !strings.HasPrefix(out, "dry run: would promote canary -> web: branch main (group web) from "+base[:10]+" to "+tip[:10]+"; nothing was pushed") ||
		!strings.Contains(out, "  canary-02 "+two.addr) {
		t.Fatalf("--dry-run: exit %d\n%s%s", code, out, errs)
	}
	if got := gittest.Run(t, bare, "rev-parse", "main"); got != base {
		t.Fatalf("a dry run moved main to %s", got)
	}
	code, out, errs = run()
	if code != 0 || !strings.HasPrefix(out, "promoted canary -> web: branch main (group web) moved from "+base[:10]+" to "+tip[:10]) {
		t.Fatalf("both canaries at the tip: exit %d\n%s%s", code, out, errs)
	}
	if got := gittest.Run(t, bare, "rev-parse", "main"); got != tip {
		t.Errorf("main on the server = %s, want %s", got, tip)
	}
	note := gittest.Run(t, bare, "notes", "--ref", "cairn-promotions", "show", tip)
	for _, want := range []string{"canary-01 " + one.addr, "canary-02 " + two.addr, "prometheus: " + prom.URL, "hosts: 2 (min 2)"} {
		if !strings.Contains(note, want) {
			t.Errorf("the note lacks %q:\n%s", want, note)
		}
	}

	code, out, _ = run("--json")
	var res struct {
		Status string `json:"status"`
		OK     bool   `json:"ok"`
		Commit string `json:"commit"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Status != "up-to-date" || !res.OK || res.Commit != tip {
		t.Errorf("again, --json: exit %d, %+v, %v\n%s", code, res, err, out)
	}
}
