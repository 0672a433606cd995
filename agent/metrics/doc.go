// Package metrics holds the agent's Prometheus metrics (spec §6): their
// names, types, labels and help texts, registered on a registry the caller
// passes in (never the global one), and the setters the daemon calls as a
// run goes.
//
// # The metrics
//
//	metric                                      type       labels                        set by
//	cairn_build_info                            gauge = 1  version, revision, goversion  New
//	cairn_host_info                             gauge = 1  host, group, branch           New, SetGroup
//	cairn_applied_commit_info                   gauge = 1  commit, branch, group         SetApplied
//	cairn_applied_commit_timestamp_seconds      gauge                                    SetApplied
//	cairn_target_commit_info                    gauge = 1  commit, branch                SetTarget
//	cairn_target_commit_timestamp_seconds       gauge                                    SetTarget
//	cairn_converged                             gauge 0/1                                SetConverged
//	cairn_drift_steps                           gauge                                    SetDrift
//	cairn_journal_steps                         gauge                                    SetJournalSteps
//	cairn_state                                 gauge 0/1  state                         SetState
//	cairn_held                                  gauge 0/1                                SetHeld
//	cairn_runs_total                            counter    result                        RunDone
//	cairn_refusals_total                        counter    reason                        Refused
//	cairn_run_duration_seconds                  histogram                                RunDone
//	cairn_ops_total                             counter    kind, direction               OpDone
//	cairn_git_fetch_total                       counter    result = success, error       FetchDone
//	cairn_last_run_timestamp_seconds            gauge                                    RunDone
//	cairn_last_success_timestamp_seconds        gauge                                    RunDone
//	cairn_last_fetch_success_timestamp_seconds  gauge                                    FetchDone
//
// The info metrics (cairn_host_info, cairn_applied_commit_info,
// cairn_target_commit_info) have at most one series, replaced as a whole
// when a label changes: a scrape sees the old series or the new one, never
// both. cairn_host_info has its series from New on, with the host name of
// Options.Host and group and branch empty until SetGroup; the commit info
// metrics have none until the first commit is known. Every other metric has all its series
// from New on: the counters at 0 for every value of [Results], [Reasons]
// and [Directions] (and cairn_ops_total for every kind of Options.Kinds),
// cairn_state at 1 for the first of Options.States and 0 for the others,
// the other gauges at 0. Timestamps are seconds since the epoch, with
// fractions; the committer times are those of the commits.
//
// # Label values
//
// No label holds a path, a step or an error text. The values of result,
// reason, direction and state are fixed lists (the exported constants, and
// Options.States); a setter given any other value panics. Those values are
// constants in the daemon, never input, so a wrong one is a programming
// error that the daemon's tests find at once, and a series that the spec
// does not name never reaches a production scrape. The step kind of
// cairn_ops_total is the one open label; it comes from the journal's table
// of kinds, so it stays small.
//
// # Queries over them
//
// The alert rules prometheus/alerts.yml and the dashboard
// grafana/cairn-fleet.json, at the root of the repository, query these
// metrics by name; this package's tests run promtool on the rules and check
// that every name they and the dashboard use is one registered here.
package metrics
