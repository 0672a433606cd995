package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/internal/gittest"
)

// tamper rewrites the message of the commit at the tip of branch, keeping
// its signature, and moves the branch to the result: a signature that no
// longer verifies over its commit.
func tamper(t *testing.T, r *gittest.Repo, branch string) string {
	t.Helper()
	raw := r.Git("cat-file", "commit", branch) + "\n"
	if !strings.Contains(raw, "\ngpgsig ") {
		t.Fatalf("the tip of %s is not signed:\n%s", branch, raw)
	}
	head, msg, _ := strings.Cut(raw, "\n\n")
	p := filepath.Join(t.TempDir(), "commit")
	if err := os.WriteFile(p, []byte(head+"\n\n"+strings.Replace(msg, "change", "tampered change", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	forged := r.Git("hash-object", "-t", "commit", "-w", p)
	r.Git("update-ref", "refs/heads/"+branch, forged)
	return forged
}

// TestTrust moves a host along commits signed with real keys, made by
// git commit -S, with an allowed-signers file and with an OpenPGP keyring:
// only a commit signed by a trusted key is applied; every refusal changes
// nothing, exits 2, costs one attempt, and the next good commit goes
// through; a force-push signed by a trusted key is still refused, and only
// an explicit move (apply --to, rollback) leaves the history.
func TestTrust(t *testing.T) {
	for _, kind := range []struct {
		name   string
		signer func(t *testing.T, who string) *gittest.Signer
	}{
		{"ssh", func(t *testing.T, who string) *gittest.Signer { return gittest.NewSSHSigner(t, who) }},
		{"openpgp", func(t *testing.T, who string) *gittest.Signer { return gittest.NewGPGSigner(t, who) }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			r := gittest.New(t)
			trusted := kind.signer(t, "ops@example.org")
			stranger := kind.signer(t, "mallory@example.org")
			trust := gittest.TrustFile(t, trusted)
			h := newHost(t)
			p := h.pipeline(t, r, "web-02", func(c *Config) { c.Trust, c.AllowUnsigned = trust, false })

			r.SignWith(trusted)
			c1 := r.Commit("main", files(2, "v1\n"), "-S")
			rep := runOnce(t, p, Request{})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != c1 || rep.ExitCode(Follow) != 0 {
				t.Fatalf("a commit signed by a trusted key: %s to %s, exit %d, %v", rep.Run.Result, rep.Run.Commit, rep.ExitCode(Follow), rep.Err)
			}
			if got := h.read(t, "srv/f00"); got != "v1\n" {
				t.Fatalf("srv/f00 = %q after the first move", got)
			}

			at, content := c1, "v1\n" // the commit applied, and its srv/f00
			refused := func(what string, commit string, reason Reason) {
				t.Helper()
				rep := runOnce(t, p, Request{})
				if rep.Run.Result != ResultRefused || rep.Run.Reason != reason || rep.Run.Commit != commit || rep.ExitCode(Follow) != 2 {
					t.Errorf("%s: %s (%s) of %.12s, exit %d, %v; want %.12s refused (%s), exit 2",
						what, rep.Run.Result, rep.Run.Reason, rep.Run.Commit, rep.ExitCode(Follow), rep.Err, commit, reason)
				}
				if slices.Contains(rep.Run.States, Compiling) {
					t.Errorf("%s: a refused commit was compiled: %v", what, rep.Run.States)
				}
				if got := h.read(t, "srv/f00"); got != content {
					t.Errorf("%s: srv/f00 = %q: the refusal changed the host", what, got)
				}
				// Once is enough: the next run does not verify it again.
				rep = runOnce(t, p, Request{})
				if rep.Run.Result != ResultUnchanged || rep.ExitCode(Follow) != 0 || slices.Contains(rep.Run.States, Verifying) {
					t.Errorf("%s, the run after: %s, exit %d, states %v; want unchanged without verifying", what, rep.Run.Result, rep.ExitCode(Follow), rep.Run.States)
				}
				doc, err := p.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if doc.Applied == nil || doc.Applied.Commit != at {
					t.Errorf("%s: the applied commit is %+v, want %.12s still", what, doc.Applied, at)
				}
				if i := slices.IndexFunc(doc.BadCommits, func(b status.BadCommit) bool { return b.Commit == commit }); i < 0 ||
					doc.BadCommits[i].Reason != string(reason) || doc.BadCommits[i].From != at {
					t.Errorf("%s: bad commits %+v lack %.12s from %.12s (%s)", what, doc.BadCommits, commit, at, reason)
				}
			}

			unsigned := r.Commit("main", files(2, "unsigned\n"))
			refused("an unsigned commit", unsigned, Unsigned)

			r.SignWith(stranger)
			unknown := r.Commit("main", files(2, "by a stranger\n"), "-S")
			refused("a commit signed by an unknown key", unknown, UnknownKey)

			// Trusting that key makes the same move worth a try again: the
			// trust file is read at every run, and a signature refusal
			// holds only for the keys that made it.
			both, err := os.ReadFile(gittest.TrustFile(t, trusted, stranger))
			if err != nil {
				t.Fatal(err)
			}
			only, err := os.ReadFile(trust)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(trust, both, 0o644); err != nil {
				t.Fatal(err)
			}
			rep = runOnce(t, p, Request{})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != unknown {
				t.Fatalf("the stranger's commit once its key is trusted: %s to %.12s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
			}
			at, content = unknown, "by a stranger\n"
			if err := os.WriteFile(trust, only, 0o644); err != nil {
				t.Fatal(err)
			}

			r.SignWith(trusted)
			r.Commit("main", files(2, "to be tampered with\n"), "-S")
			forged := tamper(t, r, "main")
			refused("a tampered commit", forged, BadSignature)

			// The next good commit, on top of the refused ones, goes through.
			c2 := r.Commit("main", files(2, "v2\n"), "-S")
			rep = runOnce(t, p, Request{})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 || rep.Run.From != unknown {
				t.Fatalf("the good commit after the refusals: %s to %.12s from %.12s, %v", rep.Run.Result, rep.Run.Commit, rep.Run.From, rep.Err)
			}
			if got := h.read(t, "srv/f00"); got != "v2\n" {
				t.Errorf("srv/f00 = %q after the good commit", got)
			}
			at, content = c2, "v2\n"

			// A force-push, signed by the trusted key, is not a way back.
			r.Git("checkout", "-q", "--orphan", "forced")
			forcedCommit := r.Commit("forced", files(2, "forced\n"), "-S")
			r.Git("branch", "-f", "main", "forced")
			refused("a signed force-push", forcedCommit, NotDescendant)

			// apply --to is an explicit move: not held to the history.
			rep = runOnce(t, p, Request{Mode: Apply, To: forcedCommit})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != forcedCommit || rep.ExitCode(Apply) != 0 {
				t.Fatalf("apply --to the force-pushed commit: %s to %.12s, %v", rep.Run.Result, rep.Run.Commit, rep.Err)
			}
			if got := h.read(t, "srv/f00"); got != "forced\n" {
				t.Errorf("srv/f00 = %q after apply --to", got)
			}
			// ... but still to the signatures.
			rep = runOnce(t, p, Request{Mode: Apply, To: unsigned})
			if rep.Run.Result != ResultRefused || rep.Run.Reason != Unsigned || rep.ExitCode(Apply) != 2 {
				t.Errorf("apply --to an unsigned commit: %s (%s), exit %d, %v", rep.Run.Result, rep.Run.Reason, rep.ExitCode(Apply), rep.Err)
			}
			if got := h.read(t, "srv/f00"); got != "forced\n" {
				t.Errorf("srv/f00 = %q after a refused apply --to", got)
			}

			// A rollback goes back to c2, which the forced commit does
			// not descend from either.
			rep = runOnce(t, p, Request{Mode: Rollback, Reason: "test"})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 || rep.ExitCode(Rollback) != 0 {
				t.Fatalf("rollback: %s to %.12s, %v; want %.12s", rep.Run.Result, rep.Run.Commit, rep.Err, c2)
			}
			if got := h.read(t, "srv/f00"); got != "v2\n" {
				t.Errorf("srv/f00 = %q after the rollback", got)
			}
		})
	}
}

// TestPipelineOverEachTransport runs the agent's pipeline against a
// repository served over each transport, with signed commits: a first
// move (the control branch, then the group's branch), a run with nothing
// to do, and a second commit.
func TestPipelineOverEachTransport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, dir string, c *Config)
	}{
		{"file", func(t *testing.T, dir string, c *Config) { c.Repo = "file://" + dir }},
		{"git", func(t *testing.T, dir string, c *Config) { c.Repo = gittest.ServeDaemon(t, dir) }},
		{"http", func(t *testing.T, dir string, c *Config) { c.Repo, _ = gittest.ServeHTTP(t, dir) }},
		{"ssh", func(t *testing.T, dir string, c *Config) { c.Repo, c.SSHKey, c.KnownHosts = gittest.ServeSSH(t, dir) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gittest.New(t)
			signer := gittest.NewSSHSigner(t, "ops@example.org")
			r.SignWith(signer)
			r.Commit("main", files(2, "main\n"), "-S")
			c1 := r.Commit("canary", files(2, "one\n"), "-S")
			trust := gittest.TrustFile(t, signer)
			h := newHost(t)
			var repo string
			p := h.pipeline(t, r, "web-01", func(c *Config) {
				tc.serve(t, r.Dir, c)
				c.Trust, c.AllowUnsigned = trust, false
				repo = c.Repo
			})
			if !strings.HasPrefix(repo, tc.name+"://") {
				t.Fatalf("the repository is %s, not over %s", repo, tc.name)
			}

			rep := runOnce(t, p, Request{})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != c1 || rep.Branch != "canary" {
				t.Fatalf("first run from %s: %s to %.12s of %s, %v", repo, rep.Run.Result, rep.Run.Commit, rep.Branch, rep.Err)
			}
			if got := h.read(t, "srv/f01"); got != "one\n" {
				t.Errorf("srv/f01 = %q after the first move", got)
			}
			rep = runOnce(t, p, Request{})
			if rep.Run.Result != ResultUnchanged || rep.Err != nil {
				t.Errorf("second run: %s, %v", rep.Run.Result, rep.Err)
			}

			c2 := r.Commit("canary", files(3, "two\n"), "-S")
			rep = runOnce(t, p, Request{})
			if rep.Run.Result != ResultApplied || rep.Run.Commit != c2 || rep.Run.From != c1 {
				t.Fatalf("the second commit: %s to %.12s from %.12s, %v", rep.Run.Result, rep.Run.Commit, rep.Run.From, rep.Err)
			}
			if got := h.read(t, "srv/f02"); got != "two\n" {
				t.Errorf("srv/f02 = %q after the second move", got)
			}
		})
	}
}
