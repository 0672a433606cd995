package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// prom is the real Prometheus scraping the fleet (job "cairn") with the
// shipped rules loaded.
type prom struct {
	base string // http://127.0.0.1:PORT
	log  string
	proc *proc
}

// startProm writes prometheus.yml for targets and runs o.prometheus on a
// free loopback port, and waits until it is ready.
func startProm(ctx context.Context, o *options, ps *procs, targets []string) (*prom, error) {
	dir := filepath.Join(o.dir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rules, err := filepath.Abs(o.rules)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(rules); err != nil {
		return nil, fmt.Errorf("the alert rules: %w", err)
	}
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	timeout := min(o.scrape, 5*time.Second)
	config := fmt.Sprintf(`global:
  scrape_interval: %v
  scrape_timeout: %v
  evaluation_interval: %v
rule_files: [%q]
scrape_configs:
  - job_name: cairn
    static_configs:
      - targets: [%s]
`, o.scrape, timeout, o.scrape, rules, strings.Join(quoted, ", "))
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(o.prometheus, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Dir = dir
	p := &prom{base: "http://" + addr, log: filepath.Join(dir, "prometheus.log")}
	if p.proc, err = ps.start("prometheus", cmd, p.log, nil); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/-/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if p.proc.exited() {
			return nil, fmt.Errorf("prometheus exited before it was ready:\n%s", tail(p.log, 20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("prometheus not ready within 60 s:\n%s", tail(p.log, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// series is one series of an instant vector.
type series struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [time, "value"]
}

func (s series) value() string {
	v, _ := s.Value[1].(string)
	return v
}

// get fetches path (with query) from the Prometheus API into data.
func (p *prom) get(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}{}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("prometheus %s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("prometheus %s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// query runs an instant query.
func (p *prom) query(ctx context.Context, q string) ([]series, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []series `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, not a vector", q, data.ResultType)
	}
	return data.Result, nil
}

// alert is one alert of /api/v1/alerts.
type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// alerts returns the alerts pending or firing.
func (p *prom) alerts(ctx context.Context) ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	err := p.get(ctx, "/api/v1/alerts", &data)
	return data.Alerts, err
}

// waitFor calls check every second until it returns nil, for at most
// timeout; the error is check's last.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
