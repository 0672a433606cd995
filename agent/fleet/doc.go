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
package fleet
