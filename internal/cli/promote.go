package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-cm/cairn/agent/fleet"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/agent/promote"
)

// repoFlags name the configuration repository for promote, lock and
// unlock: the agent's flags of the same names.
type repoFlags struct {
	remoteFlags
	Branch string `help:"The control branch: its hosts block maps groups to branches, and holds the locks." default:"main" env:"CAIRN_BRANCH" placeholder:"NAME"`
	Cache  string `help:"Keep the repository's mirror in DIR from one run to the next, so that a run fetches only what is new (default: a temporary mirror, with the whole history, each run)." env:"CAIRN_CACHE" placeholder:"DIR"`
}

func (f *repoFlags) conn(e *env) (promote.Conn, error) {
	if f.Repo == "" {
		return promote.Conn{}, &exitError{code: exitBadInput, err: errors.New("no repository: set --repo or CAIRN_REPO")}
	}
	return promote.Conn{Repo: f.Repo, Branch: f.Branch, Cache: f.Cache, SSHKey: f.SSHKey, KnownHosts: f.KnownHosts, Log: e.log}, nil
}

type promoteCmd struct {
	repoFlags
	From       string        `help:"The group whose branch's tip is promoted (the canaries)." required:"" env:"CAIRN_FROM" placeholder:"GROUP"`
	To         string        `help:"The group whose branch is fast-forwarded to it; every group on that branch moves." required:"" env:"CAIRN_TO" placeholder:"GROUP"`
	Prometheus string        `help:"The Prometheus server that scrapes the agents: http(s)://HOST:PORT." required:"" env:"CAIRN_PROMETHEUS" placeholder:"URL"`
	Soak       time.Duration `help:"How long every host of --from must have run the commit healthily." default:"10m" env:"CAIRN_SOAK"`
	MinHosts   int           `help:"The least number of hosts --from must have." default:"1" name:"min-hosts" env:"CAIRN_MIN_HOSTS" placeholder:"N"`
	DryRun     bool          `help:"Check everything, but push nothing." name:"dry-run" env:"CAIRN_DRY_RUN"`
	JSON       bool          `name:"json" help:"Print the result as JSON." env:"CAIRN_JSON"`
}

func (c *promoteCmd) Run(e *env) error {
	conn, err := c.conn(e)
	if err != nil {
		return err
	}
	switch {
	case c.Soak <= 0:
		return &exitError{code: exitBadInput, err: fmt.Errorf("--soak %s: want a positive duration", c.Soak)}
	case c.MinHosts < 1:
		return &exitError{code: exitBadInput, err: fmt.Errorf("--min-hosts %d: want at least 1", c.MinHosts)}
	}
	prom, err := prometheusAPI(c.Prometheus)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	res, err := promote.Promote(e.ctx, promote.Options{
		Conn: conn, From: c.From, To: c.To, Soak: c.Soak, MinHosts: c.MinHosts,
		Prometheus: c.Prometheus, DryRun: c.DryRun,
		Gate: func(ctx context.Context, o fleet.GateOptions) (*fleet.Verdict, error) {
			ctx, cancel := context.WithTimeout(ctx, prometheusTimeout)
			defer cancel()
			v, err := fleet.Gate(ctx, prom, o)
			return v, promError(c.Prometheus, err)
		},
	})
	if err != nil {
		return promoteRunError(err)
	}
	if c.JSON {
		err = printJSON(e.stdout, res)
	} else {
		err = renderPromotion(e.stdout, res)
	}
	if err != nil {
		return err
	}
	if !res.OK {
		return exitCode(exitDiffers)
	}
	return nil
}

// promoteRunError maps an error of Promote to its exit code: 1 for a
// push that lost a race before it was sent (the next run decides again),
// 2 for bad input and for anything that kept promote from deciding (git or
// Prometheus unreachable, a push the server refused, a hosts block that
// does not compile). cairn-promote.service counts exit 1 as a success,
// "conditions not met": an outage must fail the unit, not hide in it.
func promoteRunError(err error) error {
	if errors.Is(err, mirror.ErrStale) && !errors.Is(err, promote.ErrBadInput) {
		return &exitError{code: exitDiffers, err: err}
	}
	return &exitError{code: exitBadInput, err: err}
}

// promoteError maps an error of LockGroup and UnlockGroup to its exit
// code: 2 for bad input, 1 for anything else (locked already, not locked,
// a push that failed).
func promoteError(err error) error {
	if errors.Is(err, promote.ErrBadInput) {
		return &exitError{code: exitBadInput, err: err}
	}
	return &exitError{code: exitDiffers, err: err}
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// renderPromotion prints a promotion's result for people.
func renderPromotion(w io.Writer, r *promote.Result) error {
	var b strings.Builder
	to := fmt.Sprintf("branch %s (%s)", r.To.Branch, groupList(r.To.Groups))
	move := fmt.Sprintf("%s -> %s", r.From.Group, r.To.Group)
	switch r.Status {
	case promote.StatusPromoted:
		fmt.Fprintf(&b, "promoted %s: %s moved from %s to %s\n", move, to, abbrev(10, r.To.Tip), abbrev(10, r.Commit))
	case promote.StatusDryRun:
		fmt.Fprintf(&b, "dry run: would promote %s: %s from %s to %s; nothing was pushed\n", move, to, abbrev(10, r.To.Tip), abbrev(10, r.Commit))
	case promote.StatusUpToDate:
		fmt.Fprintf(&b, "nothing to do: %s is at %s already, as branch %s of %s is\n", to, abbrev(10, r.Commit), r.From.Branch, r.From.Group)
		_, err := io.WriteString(w, b.String())
		return err
	case promote.StatusLocked:
		fmt.Fprintf(&b, "not promoted %s: %s is locked\n", move, to)
	case promote.StatusRefused:
		fmt.Fprintf(&b, "not promoted %s: group %s at %s did not meet the conditions\n", move, r.From.Group, abbrev(10, r.Commit))
	}
	for _, why := range r.Reasons {
		fmt.Fprintf(&b, "  %s\n", why)
	}
	if v := r.Verdict; v != nil {
		fmt.Fprintf(&b, "soak window %s to %s: %d host(s) of %s\n", v.From.UTC().Format(time.RFC3339), v.To.UTC().Format(time.RFC3339), len(v.Hosts), r.From.Group)
		for _, h := range v.Hosts {
			state := "ok"
			if !h.OK {
				state = "failed"
			}
			fmt.Fprintf(&b, "  %-6s %s %s\n", state, fleet.Printable(h.Host), fleet.Printable(h.Instance))
		}
	}
	switch r.Status {
	case promote.StatusPromoted:
		fmt.Fprintf(&b, "evidence: git notes --ref cairn-promotions show %s\n", r.Commit)
	case promote.StatusDryRun:
		fmt.Fprintf(&b, "the note it would add on %s:\n", abbrev(10, r.Commit))
		for line := range strings.SplitSeq(strings.TrimRight(r.Note, "\n"), "\n") {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	case promote.StatusLocked:
		for _, l := range r.Locks {
			fmt.Fprintf(&b, "unlock with: cairn unlock %s\n", l.Group)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func groupList(groups []string) string {
	if len(groups) == 1 {
		return "group " + groups[0]
	}
	return "groups " + strings.Join(groups, ", ")
}

// lockFlags are the flags lock and unlock share.
type lockFlags struct {
	repoFlags
	Group   string `arg:"" name:"GROUP" help:"The group: a group of the hosts block at the control branch's tip."`
	SignKey string `help:"Sign with this key: git's user.signingkey (and gpg.format=ssh for an ssh key file); default: as git's configuration says." name:"sign-key" env:"CAIRN_SIGN_KEY" placeholder:"FILE"`
	DryRun  bool   `help:"Make the signed commit, but push nothing." name:"dry-run" env:"CAIRN_DRY_RUN"`
	JSON    bool   `name:"json" help:"Print the result as JSON." env:"CAIRN_JSON"`
}

type lockCmd struct {
	lockFlags
	Reason string `help:"Why, in one line: promote shows it with who locked and when." required:"" placeholder:"TEXT"`
}

type unlockCmd struct {
	lockFlags
}

func (c *lockCmd) Run(e *env) error {
	return c.run(e, c.Reason, true)
}

func (c *unlockCmd) Run(e *env) error {
	return c.run(e, "", false)
}

func (c *lockFlags) run(e *env, reason string, lock bool) error {
	conn, err := c.conn(e)
	if err != nil {
		return err
	}
	o := promote.LockOptions{Conn: conn, Group: c.Group, Reason: reason, SignKey: c.SignKey, DryRun: c.DryRun}
	var res *promote.LockResult
	if lock {
		res, err = promote.LockGroup(e.ctx, o)
	} else {
		res, err = promote.UnlockGroup(e.ctx, o)
	}
	if err != nil {
		return promoteError(err)
	}
	if c.JSON {
		return printJSON(e.stdout, res)
	}
	verb := "locked"
	if !lock {
		verb = "unlocked"
	}
	if !res.Pushed {
		fmt.Fprintf(e.stdout, "dry run: would have %s group %s with commit %s on %s (pushed nothing)\n", verb, c.Group, abbrev(10, res.Commit), res.Branch)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s group %s: commit %s on %s\n", verb, c.Group, abbrev(10, res.Commit), res.Branch)
	if !lock {
		fmt.Fprintf(e.stdout, "it was %s\n", strings.TrimPrefix(res.Lock.String(), "group "+c.Group+" is "))
	}
	return nil
}
