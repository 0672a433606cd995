package status

import (
	"encoding/json"
	"time"
)

// Document is the status of one host, as served by `GET /status`.
type Document struct {
	Host       string      `json:"host"`
	Group      string      `json:"group"`
	Branch     string      `json:"branch"` // the target branch the group follows
	State      string      `json:"state"`  // a lifecycle state of spec §3
	StateSince time.Time   `json:"state_since"`
	Held       *Hold       `json:"held"`    // nil unless a rollback pins the host
	Applied    *Applied    `json:"applied"` // nil before the first move
	Target     *Target     `json:"target"`  // nil before the first fetch
	Converged  bool        `json:"converged"`
	Drift      []Drift     `json:"drift"`
	LastRun    *Run        `json:"last_run"` // nil before the first run
	BadCommits []BadCommit `json:"bad_commits"`
	RecentRuns []Run       `json:"recent_runs"` // newest first
	Version    string      `json:"version"`
}

// Hold tells why and since when a rollback pins the host, and to which
// commit.
type Hold struct {
	Reason string    `json:"reason"`
	Commit string    `json:"commit"`
	Since  time.Time `json:"since"`
}

// Applied is the commit the host is at.
type Applied struct {
	Commit    string    `json:"commit"` // full hash
	Time      time.Time `json:"time"`   // when the host moved to it
	Steps     int       `json:"steps"`  // steps of the applied journal
	Branch    string    `json:"branch,omitempty"`
	Group     string    `json:"group,omitempty"`
	Committed time.Time `json:"committed,omitzero"` // the commit's committer time
}

// Target is the tip of the target branch last fetched.
type Target struct {
	Commit    string    `json:"commit"` // full hash
	Branch    string    `json:"branch,omitempty"`
	Committed time.Time `json:"committed,omitzero"` // the commit's committer time
	Fetched   time.Time `json:"fetched,omitzero"`   // end of the fetch that saw it
}

// Drift is one unchanged step whose live state differs from the journal.
type Drift struct {
	Step   string `json:"step"`   // the step in canonical form
	Source string `json:"source"` // its source position, file:line:col
	Diff   string `json:"diff"`   // what differs, one or more lines
}

// Run is the record of one run.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Result   string    `json:"result"` // applied, unchanged, failed, broken or refused
	Commit   string    `json:"commit"` // the target commit of the run
	From     string    `json:"from,omitempty"`
	Ops      int       `json:"ops"`    // ops run, forward and inverse
	Error    string    `json:"error"`  // "" when the run had none
	States   []string  `json:"states"` // the lifecycle states it went through, in order
}

// BadCommit is a move the agent will not try again: from the commit From
// (when known) to Commit.
type BadCommit struct {
	Commit string    `json:"commit"`
	Reason string    `json:"reason"`
	From   string    `json:"from,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// MarshalJSON writes the document with lists that are never null.
func (d Document) MarshalJSON() ([]byte, error) {
	type plain Document // without the method
	p := plain(d)
	if p.Drift == nil {
		p.Drift = []Drift{}
	}
	if p.BadCommits == nil {
		p.BadCommits = []BadCommit{}
	}
	if p.RecentRuns == nil {
		p.RecentRuns = []Run{}
	}
	return json.Marshal(p)
}

// MarshalJSON writes the run with a list of states that is never null.
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run // without the method
	p := plain(r)
	if p.States == nil {
		p.States = []string{}
	}
	return json.Marshal(p)
}
