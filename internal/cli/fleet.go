package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/cairn-cm/cairn/agent/fleet"
)

// fleetCmd is cairn fleet: the fleet as Prometheus sees it.
type fleetCmd struct {
	Prometheus string `help:"The Prometheus server that scrapes the agents (its base URL, http or https)." name:"prometheus" env:"CAIRN_PROMETHEUS" placeholder:"URL" required:""`
	JSON       bool   `help:"Print the groups and every host as JSON." name:"json"`
}

// prometheusTimeout bounds the queries of one command.
const prometheusTimeout = 30 * time.Second

// fleetDocument is the --json output.
type fleetDocument struct {
	Time   time.Time     `json:"time"`
	Groups []fleet.Group `json:"groups"`
	Hosts  []fleet.Host  `json:"hosts"`
}

// Run prints each group, then the hosts that lag behind their group's tip.
// Exit 0 when every host is up and converged at its group's tip, 1 when
// not (or when Prometheus knows no agent), 2 when Prometheus cannot be
// asked.
func (c *fleetCmd) Run(e *env) error {
	a, err := prometheusAPI(c.Prometheus)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	ctx, cancel := context.WithTimeout(e.ctx, prometheusTimeout)
	defer cancel()
	now := time.Now().UTC()
	hosts, err := fleet.Snapshot(ctx, a, now)
	if err != nil {
		return &exitError{code: exitBadInput, err: fmt.Errorf("cannot read the fleet from Prometheus at %s: %w", c.Prometheus, err)}
	}
	groups := fleet.Summarize(hosts)
	if c.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(fleetDocument{Time: now, Groups: groups, Hosts: append([]fleet.Host{}, hosts...)}); err != nil {
			return err
		}
	} else if err := writeFleet(e.stdout, groups); err != nil {
		return err
	}
	if len(hosts) == 0 {
		return &exitError{code: exitDiffers, err: fmt.Errorf("no cairn agent: no target of the Prometheus at %s reports cairn_host_info", c.Prometheus)}
	}
	for _, g := range groups {
		if !g.Settled() {
			return exitCode(exitDiffers)
		}
	}
	return nil
}

// prometheusAPI checks a --prometheus URL and makes the client of its API.
func prometheusAPI(raw string) (v1.API, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--prometheus %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--prometheus %q: want an http or https URL, such as http://prometheus:9090", raw)
	}
	cl, err := api.NewClient(api.Config{Address: raw})
	if err != nil {
		return nil, fmt.Errorf("--prometheus %q: %w", raw, err)
	}
	return v1.NewAPI(cl), nil
}

// writeFleet writes the table of groups, then the table of lagging hosts.
func writeFleet(w io.Writer, groups []fleet.Group) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tBRANCH\tTIP\tHOSTS\tCONVERGED\tDRIFTING\tFAILING\tHELD\tDOWN\tCOMMITS")
	var lagging []fleet.Host
	tips := map[string]string{}
	for _, g := range groups {
		var commits []string
		for _, c := range g.Commits {
			commits = append(commits, fmt.Sprintf("%s:%d", orDash(shortCommit(c.Commit)), c.Hosts))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", orDash(g.Name), orDash(g.Branch), orDash(shortCommit(g.Tip)),
			g.Hosts, g.Converged, g.Drifting, g.Failing, g.Held, g.Down, strings.Join(commits, " "))
		lagging = append(lagging, g.Lagging...)
		tips[g.Name] = g.Tip
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(lagging) == 0 {
		_, err := fmt.Fprintln(w, "\nEvery host is at its group's tip.")
		return err
	}
	fmt.Fprintf(w, "\n%d %s not at the tip of its group:\n", len(lagging), pluralWord(len(lagging), "host is", "hosts are"))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tINSTANCE\tGROUP\tAPPLIED\tTARGET\tSTATE\tWHY")
	for _, h := range lagging {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(h.Host), h.Instance, orDash(h.Group), orDash(shortCommit(h.Applied)),
			orDash(shortCommit(h.Target)), orDash(h.State), lagReason(h, tips[h.Group]))
	}
	return tw.Flush()
}

// lagReason says in a few words why a host is not at its group's tip.
func lagReason(h fleet.Host, tip string) string {
	switch {
	case !h.Up:
		return "down (its last scrape failed)"
	case h.Held:
		return "held by a rollback"
	case h.Failing:
		return "could not move to its target"
	case h.Target == "":
		return "has not fetched yet"
	case h.Target != tip:
		return "has not fetched the tip"
	case h.Applied == "":
		return "has applied nothing yet"
	}
	return "moving to the tip"
}

func shortCommit(c string) string {
	if len(c) > 8 {
		return c[:8]
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
