package fleet

import "time"

// GateOptions name what [Gate] checks: that every host of Group ran Commit,
// healthily, for the whole window of length Soak that ends at Now.
type GateOptions struct {
	// Group is the host group whose hosts are checked (the --from group).
	Group string
	// Commit is the full hash every host must run.
	Commit string
	// Soak is how long the conditions must have held without a break.
	Soak time.Duration
	// MinHosts is the least number of hosts the group must have; fewer is a
	// failed condition of the group. Values below 1 mean 1.
	MinHosts int
	// Now is the end of the window; the zero value means time.Now().
	Now time.Time
}

// Verdict is Gate's answer: the window it looked at, every host of the group
// with what held and what did not, and whether the group may be promoted.
type Verdict struct {
	// Group and Commit are GateOptions' Group and Commit.
	Group, Commit string
	// From and To bound the soak window.
	From, To time.Time
	// OK is true when every condition held for every host, and the group
	// has at least MinHosts hosts.
	OK bool
	// Hosts are the group's hosts, sorted by Host then Instance, in
	// natural order (web-2 before web-10).
	Hosts []HostVerdict
	// Reasons say why the group as a whole fails (fewer hosts than
	// MinHosts, say); the hosts' own reasons are in Hosts. Empty when OK.
	Reasons []string
}

// HostVerdict is one host's part of a Verdict.
type HostVerdict struct {
	// Host is the agent's host name (cairn_host_info's host label; empty
	// for an agent older than that metric);
	// Instance is Prometheus' instance label of its scrape target.
	Host, Instance string
	// OK is true when every condition held for the whole window.
	OK bool
	// Reasons say which condition broke and when, one sentence each
	// ("at commit 1a2b3c4d, not 5e6f7a8b, from 12:03:15Z"); empty when OK.
	Reasons []string
}
