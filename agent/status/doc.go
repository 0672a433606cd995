// Package status holds the status document of the agent: where a host
// stands, as `GET /status` and `cairn status --json` show it (spec §6), and
// the text that `cairn status` prints from it.
//
// The package is data only. The daemon fills a [Document] from its state
// and its records; package agent/web serves it as JSON and as a small HTML
// page; `cairn status` decodes it from the running agent (or builds it from
// the state directory) and prints it with [Document.WriteText].
//
// # The JSON form
//
// The field names are the contract of spec §6; everything the spec names is
// always present:
//
//   - host, group, branch, state and state_since (when the state was
//     entered);
//   - held: null, or {reason, commit, since} while a rollback pins the host;
//   - applied: null before the first move, else {commit, time, steps} where
//     time is when the host moved there, plus branch, group and committed
//     (the committer time) when known;
//   - target: null before the first fetch, else {commit}, plus branch,
//     committed and fetched when known;
//   - converged;
//   - drift: a list (never null) of {step, source, diff}: the step in
//     canonical form, its source position, what differs;
//   - last_run: null before the first run, else {started, finished, result,
//     commit, ops, error, states}, plus from (the commit applied when it
//     started) when known; error is "" for a run without one, states is the
//     list of lifecycle states the run went through;
//   - bad_commits: a list (never null) of {commit, reason}, plus from (the
//     applied commit the move started from) and since when known;
//   - recent_runs: the last runs, newest first (last_run is the first);
//   - version: the agent's version.
//
// Times are RFC 3339 with nanoseconds, as [time.Time] marshals them; the
// daemon gives them in UTC. Times that are not known are left out rather
// than shown as the zero time.
//
// # The text form
//
// [Document.WriteText] prints one "label: value" line per fact, in the
// order host, group, state, held, applied, target, converged, drift, last
// run, bad commits, with the drift's diffs indented beneath their steps.
// Control characters in any string are shown escaped (\x1b), so that a
// commit message or a diff cannot drive the terminal.
package status
