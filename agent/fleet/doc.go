// Package fleet reads the state of a fleet of cairn agents from Prometheus,
// which scrapes them: what `cairn fleet` shows and what `cairn promote` asks
// before it moves a commit from one group to the next.
//
// The agents' metrics (spec agent.md §6) are the only source: the package
// never talks to an agent. A host is one scrape target (Prometheus' instance
// label); its name and group come from cairn_host_info.
//
// # Use
//
//   - [Snapshot] returns every host as Prometheus sees it now, and
//     [Summarize] groups the hosts by host group, for `cairn fleet`.
//   - [Gate] decides whether a group has run one commit healthily for a
//     whole soak window, host by host, for `cairn promote`: its [Verdict]
//     says which hosts failed which condition, and when.
//
// Both ask Prometheus through [API], the instant queries of client_golang's
// api/prometheus/v1 client. Gate's conditions are range functions
// (*_over_time, increase) over the whole window, evaluated at its end, so
// that every stored sample counts; it reads a host's raw samples only to
// say when a condition it failed broke. docs/rollout.md ("What promote
// checks", "cairn fleet") says the same for operators.
//
// # Which targets are hosts
//
// A target is a host when it reported cairn_host_info in the window asked
// about or in the [MembershipLookback] before it, and Prometheus still has
// an up series for it; its host name, group and branch are the labels of
// its latest cairn_host_info sample. A host that is down is one of its
// group's hosts, with up 0.
package fleet
