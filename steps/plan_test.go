package steps_test

// Plan and Run as two calls (what an agent needs between them: the plan,
// the counts of its blast-radius guard), the Observer of every op, the
// typed outcome, where a journal came from, and the agent's records.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// openApplier opens the state of h (creating it with create) until the
// test ends.
func (h *imgHost) openApplier(t *testing.T, create bool, obs steps.Observer) *steps.Applier {
	t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: h.state, Create: create, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// move makes the Move to the journal of lines.
func (h *imgHost) moveTo(t *testing.T, lines ...string) steps.Move {
	t.Helper()
	j, err := journal.Parse("site.journal", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return steps.Move{Journal: "site.journal", Steps: j.Steps, Source: os.DirFS(h.src), SourceName: h.src, AllowRemoval: true}
}

// TestPlanRun: Plan changes nothing and counts what the plan removes; Run
// runs that plan once, and refuses a plan of another applier, of a dry
// run, or made before the applied journal changed.
func TestPlanRun(t *testing.T) {
	h := newImgHost(t)
	ctx := context.Background()
	copyOf := func(name string) string {
		return fmt.Sprintf("COPY %s /etc/%s sha256=%s", name, name, h.source(t, name, []byte(name+"\n")))
	}
	a := h.openApplier(t, true, nil)
	first := h.moveTo(t, copyOf("a"), copyOf("b"), copyOf("c"), "MKDIR /etc/d", `EXEC "true"`)
	p, err := a.Plan(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if p.Managed != 0 || p.Removed != 0 || len(p.Plan.Ops) != 5 {
		t.Errorf("first plan: managed %d removed %d, %d ops; want 0, 0, 5", p.Managed, p.Removed, len(p.Plan.Ops))
	}
	if _, err := os.Lstat(filepath.Join(h.root, "etc/a")); err == nil {
		t.Errorf("Plan wrote /etc/a")
	}
	res, err := a.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != steps.OutcomeApplied || res.Ran != 5 || res.Outcome.String() != "applied" {
		t.Errorf("Run: outcome %v, ran %d; want applied, 5", res.Outcome, res.Ran)
	}
	if _, err := a.Run(ctx, p); steps.ExitCode(err) != steps.ExitBadInput {
		t.Errorf("a second Run of the plan: %v, want it refused (exit 2)", err)
	}

	// The counts of the blast-radius guard: 4 identities (3 paths and a
	// directory; the EXEC manages none), of which 2 go.
	second := h.moveTo(t, copyOf("a"), "MKDIR /etc/d", copyOf("e"))
	p, err = a.Plan(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Managed != 4 || p.Removed != 2 {
		t.Errorf("second plan: managed %d, removed %d; want 4, 2", p.Managed, p.Removed)
	}

	// A plan made before another move ran is stale.
	stale := p
	p, err = a.Plan(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, stale); err == nil || !strings.Contains(err.Error(), "changed since the plan was made") {
		t.Errorf("Run of a stale plan: %v, want it refused", err)
	}

	// A dry run's plan does not run; nor does another applier's.
	dry := second
	dry.DryRun = true
	if p, err = a.Plan(ctx, dry); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, p); err == nil {
		t.Errorf("Run of a dry run's plan succeeded")
	}
	if p, err = a.Plan(ctx, second); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := h.openApplier(t, true, nil)
	if _, err := b.Run(ctx, p); err == nil || !strings.Contains(err.Error(), "another applier") {
		t.Errorf("Run of another applier's plan: %v, want it refused", err)
	}

	// The same journal again: unchanged; after a hand edit, with Repair:
	// repaired.
	if p, err = b.Plan(ctx, second); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Run(ctx, p); err != nil || res.Outcome != steps.OutcomeUnchanged || res.Ran != 0 {
		t.Errorf("the same journal again: %+v, %v; want unchanged, 0 ops", res, err)
	}
	if err := os.WriteFile(filepath.Join(h.root, "etc/e"), []byte("by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repair := second
	repair.Repair = true
	if p, err = b.Plan(ctx, repair); err != nil {
		t.Fatal(err)
	}
	if len(p.Drifted) != 1 || p.Drifted[0].Step.Object() != "/etc/e" {
		t.Errorf("drifted: %v, want /etc/e", p.Drifted)
	}
	if res, err := b.Run(ctx, p); err != nil || res.Outcome != steps.OutcomeRepaired || res.Ran != 1 {
		t.Errorf("repair: %+v, %v; want repaired, 1 op", res, err)
	}
	h.wantHistory(t, steps.HistoryApplied, steps.HistoryApplied, steps.HistoryNoop, steps.HistoryApplied)
}

// wantHistory checks the results of the state's history.
func (h *imgHost) wantHistory(t *testing.T, want ...steps.HistoryResult) []steps.HistoryEntry {
	t.Helper()
	hist, err := steps.History(h.state)
	if err != nil {
		t.Fatal(err)
	}
	var got []steps.HistoryResult
	for _, e := range hist {
		got = append(got, e.Result)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history: %v, want %v", got, want)
	}
	return hist
}

// recorder keeps the events an Observer sees, checking that each op is
// started before it is done.
type recorder struct {
	t       *testing.T
	events  []steps.OpEvent // done events
	started []steps.OpEvent
	open    map[int]bool
}

func (r *recorder) OpStarted(ev steps.OpEvent) {
	if r.open[ev.Index] {
		r.t.Errorf("op %d started twice", ev.Index)
	}
	r.open[ev.Index] = true
	r.started = append(r.started, ev)
}

func (r *recorder) OpDone(ev steps.OpEvent) {
	if !r.open[ev.Index] {
		r.t.Errorf("op %d done before it started", ev.Index)
	}
	delete(r.open, ev.Index)
	r.events = append(r.events, ev)
}

// TestObserver runs real moves under a temporary root and checks what the
// observer saw: every op in order with the plan's numbers, as many as the
// move ran; then a move that fails: the failing op carries the error, and
// the undos that follow are inverse, in reverse order.
func TestObserver(t *testing.T) {
	h := newImgHost(t)
	ctx := context.Background()
	r := &recorder{t: t, open: map[int]bool{}}
	a := h.openApplier(t, true, r)
	copyOf := func(name string) string {
		return fmt.Sprintf("COPY %s /etc/%s sha256=%s", name, name, h.source(t, name, []byte(name+"\n")))
	}
	res, err := a.Apply(ctx, h.moveTo(t, "MKDIR /etc/d", copyOf("a"), copyOf("b"), `EXEC "true"`, copyOf("c")))
	if err != nil {
		t.Fatal(err)
	}
	wantKinds := []string{"MKDIR", "COPY", "COPY", "EXEC", "COPY"}
	if len(r.events) != res.Ran || len(r.started) != res.Ran {
		t.Fatalf("%d started, %d done, want %d (Result.Ran)", len(r.started), len(r.events), res.Ran)
	}
	for i, ev := range r.events {
		if ev.Index != i+1 || ev.Total != 5 || ev.Kind != wantKinds[i] || ev.Direction != steps.DirForward || ev.Undo || ev.Err != nil {
			t.Errorf("event %d: %+v; want op %d of 5, %s, forward, no error", i, ev, i+1, wantKinds[i])
		}
		if ev.Pos.Line != i+1 || ev.Pos.File != "site.journal" || !strings.HasPrefix(ev.Step, wantKinds[i]+" ") {
			t.Errorf("event %d: step %q at %v, want line %d of site.journal", i, ev.Step, ev.Pos, i+1)
		}
	}
	if r.events[1].Object != "/etc/a" {
		t.Errorf("event 1: object %q, want /etc/a", r.events[1].Object)
	}

	// The next move removes b (an inverse op), writes e, then fails.
	r.events, r.started = nil, nil
	_, err = a.Apply(ctx, h.moveTo(t, "MKDIR /etc/d", copyOf("a"), `EXEC "true"`, copyOf("c"), copyOf("e"), `EXEC "exit 3"`))
	if steps.ExitCode(err) != steps.ExitFailed {
		t.Fatalf("the failing move: %v, want a failed step", err)
	}
	type seen struct {
		kind, object string
		dir          steps.Direction
		undo, failed bool
	}
	var got []seen
	for _, ev := range r.events {
		got = append(got, seen{ev.Kind, ev.Object, ev.Direction, ev.Undo, ev.Err != nil})
		if ev.Err != nil && !strings.Contains(ev.Err.Error(), "exit status 3") {
			t.Errorf("the failing op's error: %v, want exit status 3", ev.Err)
		}
	}
	want := []seen{
		{"COPY", "/etc/b", steps.DirInverse, false, false},
		{"COPY", "/etc/e", steps.DirForward, false, false},
		{"EXEC", "", steps.DirForward, false, true},
		{"EXEC", "", steps.DirInverse, true, false}, // an EXEC without undo: nothing, observed all the same
		{"COPY", "/etc/e", steps.DirInverse, true, false},
		{"COPY", "/etc/b", steps.DirInverse, true, false},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
	for _, ev := range r.events {
		if ev.Total != 3 {
			t.Errorf("%s %s: total %d, want 3", ev.Kind, ev.Object, ev.Total)
		}
	}
	if steps.DirInverse.String() != "inverse" || steps.DirForward.String() != "forward" {
		t.Errorf("directions: %s, %s", steps.DirForward, steps.DirInverse)
	}
	h.wantHistory(t, steps.HistoryApplied, steps.HistoryFailed)
}

// TestMoveOrigin: the commit, branch and group of a move are recorded in
// the applied journal and in the history.
func TestMoveOrigin(t *testing.T) {
	h := newImgHost(t)
	a := h.openApplier(t, true, nil)
	m := h.moveTo(t, "MKDIR /etc/d")
	m.Commit, m.Branch, m.Group = "0123456789abcdef0123456789abcdef01234567", "prod", "web"
	if _, err := a.Apply(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if ap := a.Applied(); ap.Commit != m.Commit || ap.Branch != "prod" || ap.Group != "web" {
		t.Errorf("applied: commit %q branch %q group %q", ap.Commit, ap.Branch, ap.Group)
	}
	a.Close()
	if ap := h.openApplier(t, false, nil).Applied(); ap.Branch != "prod" || ap.Group != "web" {
		t.Errorf("applied.json read back: branch %q group %q", ap.Branch, ap.Group)
	}
	hist := h.wantHistory(t, steps.HistoryApplied)
	if e := hist[0]; e.Commit != m.Commit || e.Branch != "prod" || e.Group != "web" {
		t.Errorf("history: %+v", e)
	}
}

// TestRecords: records written under the lock read back; names are
// checked; a link in their place is refused; a command that only reads
// finds none, and creates nothing, where there is no state.
func TestRecords(t *testing.T) {
	h := newImgHost(t)
	type pin struct {
		Commit string `json:"commit"`
		Why    string `json:"why"`
	}

	// Read-only, no state: nothing, and nothing made.
	ro := h.openApplier(t, false, nil)
	var p pin
	if ok, err := ro.ReadRecord("pin", &p); ok || err != nil {
		t.Errorf("ReadRecord without a state: %v, %v", ok, err)
	}
	if err := ro.WriteRecord("pin", p); err == nil {
		t.Errorf("WriteRecord without a state succeeded")
	}
	ro.Close()
	if _, err := os.Lstat(h.state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the state directory: %v, want it not made", err)
	}

	a := h.openApplier(t, true, nil)
	for _, bad := range []string{"", "Pin", "../pin", "a/b", "pin.json", "pin_1"} {
		if err := a.WriteRecord(bad, p); err == nil {
			t.Errorf("WriteRecord(%q) succeeded", bad)
		}
		if _, err := a.ReadRecord(bad, &p); err == nil {
			t.Errorf("ReadRecord(%q) succeeded", bad)
		}
	}
	if ok, err := a.ReadRecord("pin", &p); ok || err != nil {
		t.Errorf("ReadRecord before any: %v, %v", ok, err)
	}
	want := pin{Commit: "abc", Why: "rollback"}
	if err := a.WriteRecord("pin", want); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteRecord("last-runs-2", []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(h.state, "agent", "pin.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk pin
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk != want {
		t.Errorf("%s: %s (%v)", file, data, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600", file, fi.Mode(), err)
	}
	a.Close()

	// Records alone are a state: a read-only open finds them.
	ro = h.openApplier(t, false, nil)
	var got pin
	if ok, err := ro.ReadRecord("pin", &got); !ok || err != nil || got != want {
		t.Errorf("ReadRecord read-only: %v, %v, %+v; want %+v", ok, err, got, want)
	}
	ro.Close()

	// A link in the place of a record, or of their directory, is refused.
	outside := filepath.Join(h.base, "outside.json")
	if err := os.WriteFile(outside, []byte(`{"commit":"evil"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, file); err != nil {
		t.Fatal(err)
	}
	a = h.openApplier(t, true, nil)
	if ok, err := a.ReadRecord("pin", &got); ok || err == nil {
		t.Errorf("ReadRecord through a link: %v, %v; want refused", ok, err)
	}
	if err := a.WriteRecord("pin", want); err == nil {
		t.Errorf("WriteRecord over a link succeeded")
	}
	if data, _ := os.ReadFile(outside); string(data) != `{"commit":"evil"}` {
		t.Errorf("the link's target was written: %s", data)
	}
	a.Close()
	dir := filepath.Join(h.state, "agent")
	if err := os.Rename(dir, dir+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.base, dir); err != nil {
		t.Fatal(err)
	}
	a = h.openApplier(t, true, nil)
	if err := a.WriteRecord("pin", want); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("WriteRecord into a linked directory: %v, want refused", err)
	}
	if _, err := os.Lstat(filepath.Join(h.base, "pin.json")); err == nil {
		t.Errorf("the record was written through the link")
	}
}

// TestFailedPlanKeepsRecords: a state directory this process made is
// dropped when the first move is refused, unless the agent keeps records
// there.
func TestFailedPlanKeepsRecords(t *testing.T) {
	h := newImgHost(t)
	a := h.openApplier(t, true, nil)
	if err := a.WriteRecord("bad-moves", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Plan(context.Background(), h.moveTo(t, "COPY missing /etc/m sha256="+strings.Repeat("0", 64))); steps.ExitCode(err) != steps.ExitBadInput {
		t.Fatalf("a plan with a missing source: %v, want exit 2", err)
	}
	var got []string
	if ok, err := a.ReadRecord("bad-moves", &got); !ok || err != nil || len(got) != 1 {
		t.Errorf("the record after a refused plan: %v, %v, %v", ok, err, got)
	}
}

// TestObserverRecovery: an undo that fails is observed with its error (and
// again when it is retried); the recovery that a later Open runs from the
// intent log is observed too, every op undone and inverse, in reverse
// order.
func TestObserverRecovery(t *testing.T) {
	h := newImgHost(t)
	ctx := context.Background()
	marker := filepath.Join(h.base, "undo-may-succeed")
	r := &recorder{t: t, open: map[int]bool{}}
	a := h.openApplier(t, true, r)
	sum := h.source(t, "a", []byte("a\n"))
	_, err := a.Apply(ctx, h.moveTo(t, "COPY a /etc/a sha256="+sum, fmt.Sprintf("EXEC true undo=%q", "test -e "+marker), `EXEC "exit 3"`))
	if steps.ExitCode(err) != steps.ExitUndoFailed {
		t.Fatalf("the move: %v, want its undo to fail", err)
	}
	var undoFailed int
	for _, ev := range r.events {
		if ev.Undo && ev.Err != nil {
			undoFailed++
			if ev.Index != 2 || ev.Kind != "EXEC" || ev.Direction != steps.DirInverse {
				t.Errorf("the undo that failed: %+v, want op 2, an EXEC, inverse", ev)
			}
		}
	}
	if undoFailed != 2 {
		t.Errorf("%d failed undos observed, want 2 (the undo, and its retry)", undoFailed)
	}
	a.Close()

	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{t: t, open: map[int]bool{}}
	h.openApplier(t, false, rec) // recovers
	var got []string
	for _, ev := range rec.events {
		if !ev.Undo || ev.Direction != steps.DirInverse || ev.Total != 3 || ev.Err != nil {
			t.Errorf("recovery event %+v: want an undo, inverse, of 3 ops, no error", ev)
		}
		got = append(got, fmt.Sprint(ev.Index, " ", ev.Kind))
	}
	if want := []string{"3 EXEC", "2 EXEC", "1 COPY"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recovery events %v, want %v", got, want)
	}
	h.wantHistory(t, steps.HistoryUndoFailed, steps.HistoryRecovered)
}

// TestSameStepsOtherCommit: a journal with the same steps as the applied
// one, from another commit (a revert, a commit that changes another
// group's hosts), runs no op and is applied: the host is at that commit
// now. From the same commit it is unchanged, as before. (Found by the
// tutorial's test: the agent re-applied a revert every run and the host
// never showed converged.)
func TestSameStepsOtherCommit(t *testing.T) {
	h := newImgHost(t)
	ctx := context.Background()
	a := h.openApplier(t, true, nil)
	run := func(commit string) *steps.Result {
		t.Helper()
		m := h.moveTo(t, "MKDIR /etc/d")
		m.Commit, m.Branch, m.Group = commit, "main", "web"
		p, err := a.Plan(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Run(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	if res := run(c1); res.Outcome != steps.OutcomeApplied || res.Ran != 1 {
		t.Fatalf("first move: %v, %d ops", res.Outcome, res.Ran)
	}
	if res := run(c1); res.Outcome != steps.OutcomeUnchanged || res.Ran != 0 {
		t.Errorf("the same commit again: %v, %d ops; want unchanged, 0", res.Outcome, res.Ran)
	}
	if res := run(c2); res.Outcome != steps.OutcomeApplied || res.Ran != 0 {
		t.Errorf("the same steps from another commit: %v, %d ops; want applied, 0", res.Outcome, res.Ran)
	}
	if got := a.Applied(); got.Commit != c2 || got.Generation != 2 {
		t.Errorf("applied: commit %s generation %d; want %s, 2", got.Commit, got.Generation, c2)
	}
	h.wantHistory(t, steps.HistoryApplied, steps.HistoryNoop, steps.HistoryApplied)
}
