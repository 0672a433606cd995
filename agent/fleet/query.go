package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// API is the part of client_golang's Prometheus HTTP API (v1.API) that the
// package uses: instant queries. A v1.API made with v1.NewAPI is one.
type API interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

var _ API = v1.API(nil)

// target names one scrape target: Prometheus' instance and job labels.
type target struct{ instance, job string }

func targetOf(m model.Metric) target {
	return target{instance: string(m[model.InstanceLabel]), job: string(m[model.JobLabel])}
}

// selector is the label matchers that pick t's series, without braces.
func (t target) selector() string {
	return fmt.Sprintf("instance=%q,job=%q", t.instance, t.job)
}

// vector runs an instant query at ts whose answer is an instant vector.
func vector(ctx context.Context, api API, q string, ts time.Time) (model.Vector, error) {
	v, _, _, err := api.Query(ctx, q, ts)
	if err != nil {
		return nil, fmt.Errorf("prometheus: query %s: %w", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("prometheus: query %s: a %s, want a vector", q, v.Type())
	}
	return vec, nil
}

// matrix runs an instant query of a range selector at ts: the raw samples
// of each series in the range, not samples at steps.
func matrix(ctx context.Context, api API, q string, ts time.Time) (model.Matrix, error) {
	v, _, _, err := api.Query(ctx, q, ts)
	if err != nil {
		return nil, fmt.Errorf("prometheus: query %s: %w", q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("prometheus: query %s: a %s, want a matrix", q, v.Type())
	}
	for _, s := range m {
		sort.Slice(s.Values, func(i, j int) bool { return s.Values[i].Timestamp < s.Values[j].Timestamp })
	}
	return m, nil
}

// byTarget maps a vector's samples to their targets; a target with
// several series keeps the greatest value.
func byTarget(vec model.Vector) map[target]float64 {
	out := make(map[target]float64, len(vec))
	for _, s := range vec {
		t := targetOf(s.Metric)
		if old, ok := out[t]; !ok || float64(s.Value) > old {
			out[t] = float64(s.Value)
		}
	}
	return out
}

// promDuration writes d as a PromQL duration, in milliseconds.
func promDuration(d time.Duration) string {
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// stamp writes a time as the reasons do: UTC, to the second.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// short is a commit hash as the reasons write it.
func short(commit string) string {
	if len(commit) > 8 {
		return commit[:8]
	}
	return commit
}

// hostInfo is one target's last cairn_host_info.
type hostInfo struct {
	target
	host, group, branch string
}

// hostInfos returns, for each target that reported cairn_host_info in the
// range of length d that ends at ts, its labels at its latest sample. A
// target whose labels changed in the range has several series; the raw
// samples say which is the latest.
func hostInfos(ctx context.Context, api API, d time.Duration, ts time.Time) (map[target]hostInfo, error) {
	vec, err := vector(ctx, api, fmt.Sprintf("last_over_time(cairn_host_info[%s])", promDuration(d)), ts)
	if err != nil {
		return nil, err
	}
	series := map[target][]model.Metric{}
	for _, s := range vec {
		t := targetOf(s.Metric)
		series[t] = append(series[t], s.Metric)
	}
	out := make(map[target]hostInfo, len(series))
	for t, ms := range series {
		latest := ms[0]
		if len(ms) > 1 {
			m, err := matrix(ctx, api, fmt.Sprintf("cairn_host_info{%s}[%s]", t.selector(), promDuration(d)), ts)
			if err != nil {
				return nil, err
			}
			var at model.Time
			for _, s := range m {
				if n := len(s.Values); n > 0 && s.Values[n-1].Timestamp >= at {
					at, latest = s.Values[n-1].Timestamp, s.Metric
				}
			}
		}
		out[t] = hostInfo{target: t, host: string(latest["host"]), group: string(latest["group"]), branch: string(latest["branch"])}
	}
	return out, nil
}
