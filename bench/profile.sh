#!/usr/bin/env bash
# Where the cold apply, the no-op and diff --plan spend their time:
#
#   bench/profile.sh [OUTDIR]     (default: a new directory under /tmp, kept)
#
# 1. Go CPU and allocation profiles of the benchmarks BenchmarkApplyCold10k,
#    BenchmarkNoopRepair10k (steps) and BenchmarkParsePlan100k (journal); the
#    applier's timed work carries the pprof label bench=cold|noop, so the
#    tables below leave out the setup. The Go profiler puts all kernel time
#    under Syscall6: see 2 and 3 for what the kernel does.
# 2. syscall counts of one whole cold apply and one no-op (strace -c -f).
# 3. if perf works here: perf record -g of the same processes, with the
#    kernel's share by system call and by function (perf report in OUTDIR).
#
# Inspect further with
#   go tool pprof -http=: -tagfocus bench=cold OUTDIR/steps.test OUTDIR/steps.cpu
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
O=${1:-$(mktemp -d /tmp/cairn-profile.XXXXXX)}
mkdir -p "$O"
O=$(cd "$O" && pwd)
log() { echo "[$(date +%T)] $*" >&2; }
pp() { go tool pprof "$@" 2>/dev/null | grep -vE '^(File|Build ID|Type|Time|Active filters|Dropped|Showing)' || true; }
# show: print the first N lines matching; never fails (head closes the pipe early)
show() { local n=$1; shift; grep -E "$@" | head -n "$n" || true; }

cd "$REPO"
log "Go benchmarks with profiles into $O"
go test -run '^$' -bench 'ApplyCold10k|NoopRepair10k' -benchmem -benchtime 3x \
  -cpuprofile "$O/steps.cpu" -o "$O/steps.test" ./steps | grep -E '^Bench'
go test -run '^$' -bench 'ParsePlan100k' -benchmem -benchtime 5x \
  -cpuprofile "$O/journal.cpu" -memprofile "$O/journal.mem" -o "$O/journal.test" ./journal | grep -E '^Bench'
for phase in cold noop; do
  echo "== $phase: Go CPU profile, cumulative (tagfocus bench=$phase)"
  pp -top -cum -tagfocus "bench=$phase" -nodecount=35 "$O/steps.test" "$O/steps.cpu" | show 40 'cairn|flat'
done
echo "== diff --plan in-process: CPU, cumulative"
pp -top -cum -nodecount=30 "$O/journal.test" "$O/journal.cpu" | show 40 'journal\.|flat|mallocgc$|gcBgMarkWorker$'
echo "== diff --plan in-process: allocated bytes by line"
pp -sample_index=alloc_space -top -nodecount=8 "$O/journal.test" "$O/journal.mem"

log "whole processes"
CGO_ENABLED=0 go build -o "$O/cairn" ./cmd/cairn
go build -o "$O/gen" ./bench/gen
"$O/gen" tree 10000 "$O/src"
"$O/gen" journal -o "$O/files.journal" /dst "$O/src"
mkdir -p "$O/root"
APPLY="$O/cairn journal apply --root $O/root --state $O/state --source $O/src $O/files.journal"
mkdir -p "$O/diff" && "$O/gen" diff 100000 "$O/diff"
DIFF="$O/cairn journal diff --plan $O/diff/a.journal $O/diff/b.journal"
fresh() { rm -rf "$O/root/dst" "$O/state"; sync; }

if command -v strace >/dev/null; then
  fresh
  strace -f -c -o "$O/cold.strace" $APPLY >/dev/null
  strace -f -c -o "$O/noop.strace" $APPLY --repair >/dev/null
  for w in cold noop; do
    echo "== $w: system calls (strace -c -f; its times are inflated by strace itself, the counts are exact)"
    grep -E '^ *[0-9.]+ ' "$O/$w.strace" | grep -vE ' (futex|nanosleep|epoll_pwait|sched_yield|rt_sig|tgkill|getpid|madvise|mmap|munmap|clone3|sigaltstack|gettid|mprotect|rseq|set_robust_list|sched_getaffinity)$' |
      sort -k4,4nr | show 20 .
  done
else
  log "strace not installed: no system call counts"
fi

if command -v perf >/dev/null && perf record -o /dev/null true >/dev/null 2>&1; then
  fresh
  perf record -q -F 1999 -g -o "$O/cold.perf" $APPLY >/dev/null 2>&1
  perf record -q -F 4999 -g -o "$O/noop.perf" $APPLY --repair >/dev/null 2>&1
  perf record -q -F 4999 -g -o "$O/diff.perf" $DIFF >/dev/null 2>&1 || true
  for w in cold noop diff; do
    echo "== $w: perf, share of all samples (children), system calls and the top kernel and Go functions"
    perf report -i "$O/$w.perf" --children --sort sym --stdio -g none 2>/dev/null >"$O/$w.perf.txt" || true
    show 8 '\[k\] (__x64_sys_|__do_sys_)' "$O/$w.perf.txt"
    grep -vE 'entry_SYSCALL|do_syscall_64|__x64_sys|__do_sys|runtime\.(main|goexit|mstart|systemstack)|main\.main|cli\.|kong\.|reflect\.|runtime\.(call16|reflectcall)' "$O/$w.perf.txt" | show 25 '%' 
  done
else
  log "perf not usable here: no kernel profile"
fi
log "profiles kept in $O"
