package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/agent/trust"
	"github.com/cairn-cm/cairn/steps"
)

// loadKeys reads the trust file: every run reads it again, so that keys
// added or removed take effect at the next run, without a restart. It
// returns the keys (nil without a trust file) and the sha256 of the file,
// which a bad move refused for its signature records: once the trust file
// changes, the same move is tried again.
func (p *Pipeline) loadKeys() (*trust.Keys, string, error) {
	if p.cfg.Trust == "" {
		return nil, "", nil
	}
	data, err := os.ReadFile(p.cfg.Trust)
	if err != nil {
		return nil, "", fmt.Errorf("trust file: %w", err)
	}
	keys, err := trust.Parse(p.cfg.Trust, data)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	return keys, hex.EncodeToString(sum[:]), nil
}

// verify applies the trust rules of §4 to the commit want.
func (r *run) verify(want, from string) error {
	h := plumbing.NewHash(want)
	if err := r.signed(h); err != nil {
		return err
	}
	if r.req.To != "" || r.req.Mode == Rollback || from == "" {
		// An explicit move, or the first: no history to descend from.
		return nil
	}
	ok, err := r.m.IsAncestor(plumbing.NewHash(from), h)
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return err
	}
	if !ok {
		return &Refusal{Reason: NotDescendant, Commit: want, Err: fmt.Errorf("it does not descend from %s, the commit applied (a force-push? cairn rollback and cairn apply --to move elsewhere on purpose)", short(from))}
	}
	return nil
}

// signed applies the signature rule of §4 to commit h, with the trust
// file as it is now.
func (r *run) signed(h plumbing.Hash) error {
	c, err := r.m.Commit(h)
	if err != nil {
		return err
	}
	if r.trusted[h] {
		// Checked already in this run (the control tip is often the
		// target too).
		return nil
	}
	keys, _, err := r.keys()
	if err != nil {
		return err
	}
	if keys != nil {
		if _, err := keys.VerifyCommit(c); err != nil {
			var tr *trust.Refusal
			if errors.As(err, &tr) {
				return &Refusal{Reason: Reason(tr.Reason), Commit: h.String(), Err: err}
			}
			return err
		}
	} else if !r.p.cfg.AllowUnsigned {
		// A plan says what apply would do: refuse it.
		return &Refusal{Reason: Unsigned, Commit: h.String(), Err: errors.New("no --trust file to check its signature against (--allow-unsigned applies any)")}
	}
	if r.trusted == nil {
		r.trusted = map[plumbing.Hash]bool{}
	}
	r.trusted[h] = true
	return nil
}

// keys returns the trust file as this run reads it: once, whichever stage
// asks first, so that one run judges every commit by the same keys.
func (r *run) keys() (*trust.Keys, string, error) {
	t := &r.trustFile
	if !t.loaded {
		t.keys, t.sum, t.err = r.p.loadKeys()
		t.loaded = true
	}
	return t.keys, t.sum, t.err
}

// guard is the blast-radius guard of §5.
func (r *run) guard(planned *steps.Planned) error {
	if r.req.AllowRemoval {
		return nil
	}
	managed, removed := planned.Managed, planned.Removed
	limit := r.p.cfg.MaxRemoval
	if removed > 10 && float64(removed)*100 > limit*float64(managed) {
		return &Refusal{Reason: BlastRadius, Commit: r.rep.Run.Commit,
			Err: fmt.Errorf("the plan removes %d of the %d managed objects, more than --max-removal %v%%; --allow-removal lets this move through", removed, managed, limit)}
	}
	return nil
}

// refuse ends a run whose target was refused.
func (r *run) refuse(want string, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		r.rep.Run.Reason = rf.Reason
		if r.req.Mode == Follow {
			r.markBad(r.rep.Run.From, want, string(rf.Reason))
		}
		r.end(ResultRefused, err)
		return
	}
	r.end(ResultFailed, err)
}

// isBad reports whether the move from → to is known to be bad.
func (r *run) isBad(from, to string) bool {
	var bad []BadMove
	if _, err := r.a.ReadRecord(recordBad, &bad); err != nil {
		return false
	}
	_, sum, err := r.keys()
	if err != nil {
		// Let the run go on to verify, which reports the trust file.
		return false
	}
	for _, b := range bad {
		if b.From == from && b.To == to && (b.Keys == "" || b.Keys == sum) {
			return true
		}
	}
	return false
}

// markBad records the move from → to as bad, so that it is not tried again.
func (r *run) markBad(from, to, reason string) {
	var bad []BadMove
	if _, err := r.a.ReadRecord(recordBad, &bad); err != nil {
		r.p.log().Warn("cannot read the bad moves", "err", err)
	}
	b := BadMove{From: from, To: to, Reason: reason, At: time.Now().UTC()}
	switch Reason(reason) {
	case Unsigned, BadSignature, UnknownKey:
		_, b.Keys, _ = r.keys()
	}
	bad = append(bad, b)
	if len(bad) > keepBad {
		bad = bad[len(bad)-keepBad:]
	}
	if err := r.a.WriteRecord(recordBad, bad); err != nil {
		r.p.log().Warn("cannot record a bad move", "err", err)
	}
}
