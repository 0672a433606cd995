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
	"github.com/cairn-cm/cairn/agent/mirror"
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
		return &exitError{code: exitBadInput, err: promError(c.Prometheus, fmt.Errorf("cannot read the fleet from Prometheus at %s: %w", mirror.Redact(c.Prometheus), err))}
	}
	groups := fleet.Summarize(hosts)
	if c.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(fleetDocument{Time: now, Groups: groups, Hosts: append([]fleet.Host{}, hosts...)}); err != nil {
			return err
		}
	} else if err := writeFleet(e.stdout, groups, hosts); err != nil {
		return err
	}
	if len(hosts) == 0 {
		return &exitError{code: exitDiffers, err: fmt.Errorf("no cairn agent: no target of the Prometheus at %s reports cairn_host_info", mirror.Redact(c.Prometheus))}
	}
	for _, g := range groups {
		if !g.Settled() {
			return exitCode(exitDiffers)
		}
	}
	return nil
}

// prometheusAPI checks a --prometheus URL and makes the client of its API.
// Its errors show the URL without its credentials.
func prometheusAPI(raw string) (v1.API, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, promError(raw, fmt.Errorf("--prometheus %q: %w", mirror.Redact(raw), err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--prometheus %q: want an http or https URL, such as http://prometheus:9090", mirror.Redact(raw))
	}
	cl, err := api.NewClient(api.Config{Address: raw})
	if err != nil {
		return nil, promError(raw, fmt.Errorf("--prometheus %q: %w", mirror.Redact(raw), err))
	}
	return v1.NewAPI(cl), nil
}

// promError is err with the user name and password of the Prometheus URL
// raw taken out of its text: net/http masks a password in the URLs of its
// errors, but not a user name, which may be a token.
func promError(raw string, err error) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return err
	}
	msg := err.Error()
	pass, _ := u.User.Password()
	for _, s := range []string{u.User.Username(), pass} {
		for _, v := range []string{s, url.PathEscape(s), url.QueryEscape(s)} {
			if len(v) >= 3 {
				msg = strings.ReplaceAll(msg, v, "xxxxx")
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose text was cleaned of credentials, and
// which still wraps the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// writeFleet writes the table of groups, then the hosts not at the tip of
// their group, then those at the tip that are not converged (drift, a hold,
// a failing run); nothing when there is no group (Run says that there is no
// agent).
func writeFleet(w io.Writer, groups []fleet.Group, hosts []fleet.Host) error {
	if len(groups) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tBRANCH\tTIP\tHOSTS\tCONVERGED\tDRIFTING\tFAILING\tHELD\tDOWN\tCOMMITS")
	var lagging []fleet.Host
	tips := map[string]string{}
	for _, g := range groups {
		var commits []string
		for _, c := range g.Commits {
			commits = append(commits, fmt.Sprintf("%s:%d", cell(abbrev(8, c.Commit)), c.Hosts))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", cell(g.Name), cell(g.Branch), cell(abbrev(8, g.Tip)),
			g.Hosts, g.Converged, g.Drifting, g.Failing, g.Held, g.Down, strings.Join(commits, " "))
		lagging = append(lagging, g.Lagging...)
		tips[g.Name] = g.Tip
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var unsettled []fleet.Host // at the tip, not converged
	for _, h := range hosts {
		if h.Up && h.Applied != "" && h.Applied == tips[h.Group] && (!h.Converged || h.Held || h.Failing) {
			unsettled = append(unsettled, h)
		}
	}
	switch {
	case len(lagging) == 0 && len(unsettled) == 0:
		_, err := fmt.Fprintln(w, "\nEvery host is converged at its group's tip.")
		return err
	case len(lagging) == 0:
		fmt.Fprintln(w, "\nEvery host is at its group's tip.")
	default:
		fmt.Fprintf(w, "\n%d %s not at the tip of its group:\n", len(lagging), pluralWord(len(lagging), "host is", "hosts are"))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tINSTANCE\tGROUP\tAPPLIED\tTARGET\tSTATE\tWHY")
		for _, h := range lagging {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(h.Host), cell(h.Instance), cell(h.Group), cell(abbrev(8, h.Applied)),
				cell(abbrev(8, h.Target)), cell(h.State), lagReason(h, tips[h.Group]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(unsettled) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n%d %s at the tip but not converged:\n", len(unsettled), pluralWord(len(unsettled), "host is", "hosts are"))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tINSTANCE\tGROUP\tSTATE\tWHY")
	for _, h := range unsettled {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cell(h.Host), cell(h.Instance), cell(h.Group), cell(h.State), unsettledReason(h))
	}
	return tw.Flush()
}

// unsettledReason says why a host at its group's tip is not converged.
func unsettledReason(h fleet.Host) string {
	var why []string
	if h.Drift > 0 {
		why = append(why, fmt.Sprintf("%d %s drifted", h.Drift, pluralWord(h.Drift, "step", "steps")))
	}
	if h.Held {
		why = append(why, "held by a rollback")
	}
	if h.Failing {
		why = append(why, "its last run failed")
	}
	if len(why) == 0 {
		return "not converged"
	}
	return strings.Join(why, ", ")
}

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

// cell is a value of the tables: "-" for none; a label value that holds
// a line break or a control character quoted (fleet.Printable), since it
// comes from what a host exports.
func cell(s string) string { return orDash(fleet.Printable(s)) }

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
