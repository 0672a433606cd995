#!/usr/bin/env bash
# Whole-process benchmarks of cairn's journal core, each measured side by side
# with what it is held against, and of the compiler, in one run:
#
#   diff     `cairn journal diff --plan A B`  vs  GNU `diff A B`   (10k, 100k, 1M steps, 1% changed;
#            100k also without source comments), with both peak RSS at 100k
#   cold     `cairn journal apply` of N files to an empty root  vs  `cp -a SRC DST && sync`
#            (goal 4 of issue 12: at most 1.5x, peak RSS at most 32 MiB)
#   noop     `cairn journal apply --repair` when nothing changed  vs  bench/hashall (lstat + sha256):
#            through the state's stat cache (the default), with every file hashed
#            (--rehash-every 1), and without --repair (what is not the drift check)
#   compile  `cairn compile --host web-01 --fact release=12 DIR` of repositories made by
#            bench/genconfig (1k, 10k, 100k resources in N/20 directories over 20 modules):
#            medians, peak RSS, growth from size to size, and the ratios to the goals
#            of issue 12 (10k: 0.25 s, 64 MiB; 100k: 2.5 s, 400 MiB)
#   peak memory of the cold apply and the compiles (and of the others, for reference)
#   agent    `cairn agent` on a 10k-resource repository: bench/agent.sh (unchanged
#            runs, push to applied, RSS; needs root and debootstrap, else skipped)
#   gitload  what one agent poll costs the git server: bench/gitload (git daemon,
#            nginx + fcgiwrap + git http-backend, the same with info/refs cached,
#            and over https), under a minute; GITLOAD_FLAGS=-long for the long run (needs root
#            for its cgroups; nginx and fcgiwrap, else those servers are skipped)
#
#   bench/run.sh [-s "diff cold noop compile agent gitload"] [-k]
#
#   -s SECTIONS  run only these sections (default: all six)
#   -k           keep the work directory (default: removed at the end)
#
# Environment: BENCH_WORK (work directory; default a new one under /tmp),
# N_FILES (10000), DIFF_SIZES ("10000 100000 1000000"), DIFF_BARE_SIZES ("100000":
# the sizes also diffed without source comments), COMPILE_SIZES ("1000
# 10000 100000"), RUNS (10 timed runs of the quick comparisons), RUNS_SLOW (5:
# cold apply, 1M diff and 100k compile, no warm-up), TIMER (hyperfine if
# installed, else bench/timer.py; set TIMER=python to force it; the cold
# apply's runs always go through bench/timer.py, which takes them by turns).
#
# Prints markdown tables of medians and ratios (also in WORK/results.md);
# the timer's own output is in WORK/logs. Needs go, python3, GNU diff and cp;
# hyperfine and /usr/bin/time (Debian packages hyperfine and time) if present.
# About 3 to 5 minutes on 2 cores, and as long again for the compile section
# while its 100k compile takes half a minute.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
SECTIONS="diff cold noop compile agent gitload"
KEEP=0
while getopts "s:k" o; do
  case $o in s) SECTIONS=$OPTARG ;; k) KEEP=1 ;; *) sed -n '2,30p' "$0" >&2; exit 2 ;; esac
done
N_FILES=${N_FILES:-10000}
DIFF_SIZES=${DIFF_SIZES:-"10000 100000 1000000"}
COMPILE_SIZES=${COMPILE_SIZES:-"1000 10000 100000"}
RUNS=${RUNS:-10}
RUNS_SLOW=${RUNS_SLOW:-5}
NPROC=$(nproc)

W=${BENCH_WORK:-$(mktemp -d /tmp/cairn-bench.XXXXXX)}
mkdir -p "$W/bin" "$W/logs" "$W/res"
[ -n "${BENCH_WORK:-}" ] && KEEP=1
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$W"; else echo "work directory kept: $W" >&2; fi; }
trap cleanup EXIT

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if [ "${TIMER:-}" != python ] && command -v hyperfine >/dev/null; then
  TIMER_CMD=(hyperfine --style basic)
  TIMER_NAME="hyperfine $(hyperfine --version | awk '{print $2}')"
else
  TIMER_CMD=(python3 "$HERE/timer.py")
  TIMER_NAME="bench/timer.py (hyperfine not installed: apt-get install hyperfine)"
fi
GNU_TIME=""
[ -x /usr/bin/time ] && GNU_TIME=/usr/bin/time # Debian package time

log "building cairn, bench/gen, bench/hashall, bench/genconfig into $W/bin"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/bin/cairn" ./cmd/cairn && go build -o "$W/bin/gen" ./bench/gen &&
  go build -o "$W/bin/hashall" ./bench/hashall && go build -o "$W/bin/genconfig" ./bench/genconfig &&
  go build -o "$W/bin/gitload" ./bench/gitload) || die "build"
CAIRN=$W/bin/cairn GEN=$W/bin/gen HASHALL=$W/bin/hashall GENCONFIG=$W/bin/genconfig
ROWS=$W/rows.tsv
: >"$ROWS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# timeit NAME RUNS WARMUP PREPARE|- IGNORE(0|1) LABEL CMD [LABEL CMD ...]
timeit() {
  local name=$1 runs=$2 warm=$3 prep=$4 ign=$5
  shift 5
  local args=(--runs "$runs" --warmup "$warm" --export-json "$W/res/$name.json")
  [ "$prep" != - ] && args+=(--prepare "$prep")
  [ "$ign" = 1 ] && args+=(-i)
  while [ $# -gt 0 ]; do args+=(-n "$1" "$2"); shift 2; done
  log "timing $name ($runs runs)"
  "${TIMER_CMD[@]}" "${args[@]}" >"$W/logs/$name.log" 2>&1 || { cat "$W/logs/$name.log" >&2; die "timer: $name"; }
}

# rss NAME: a prefix for a timed command that appends its peak RSS (KiB) to
# WORK/res/NAME.rss, so that the timed runs give the memory figures too; empty
# without /usr/bin/time (then peak NAME ... measures it in runs of its own).
rss() { [ -n "$GNU_TIME" ] && echo "$GNU_TIME -f %M -a -o $W/res/$1.rss"; return 0; }

# peak NAME RUNS PREPARE|- CMD: one KiB figure a line into WORK/res/NAME.rss (the
# exit status is not checked: the commands were checked before they were timed)
peak() {
  local name=$1 runs=$2 prep=$3 cmd=$4 i
  : >"$W/res/$name.rss"
  for ((i = 0; i < runs; i++)); do
    [ "$prep" != - ] && sh -c "$prep"
    if [ -n "$GNU_TIME" ]; then
      $GNU_TIME -f %M -o "$W/res/$name.rss" -a sh -c "exec $cmd >/dev/null 2>&1" || true # diff exits 1
    else
      python3 -c 'import os,sys; p=os.posix_spawn("/bin/sh",["sh","-c",sys.argv[1]],os.environ); print(os.wait4(p,0)[2].ru_maxrss)' \
        "exec $cmd >/dev/null 2>&1" >>"$W/res/$name.rss" || true
    fi
  done
}

tree_meta() { (cd "$1" && find . -printf '%y %m %u %g %s %P\n' | LC_ALL=C sort); }
tree_stamp() { (cd "$1" && find . -printf '%i %T@ %C@ %P\n' | LC_ALL=C sort | md5sum); }

want_section() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- diff + plan
# Each size with source comments on every line, as the compiler writes them;
# 100k also without (DIFF_BARE_SIZES). cairn's and GNU diff's peak RSS come
# from the timed runs themselves (rss), so both are measured on the same files
# in the same run.
DIFF_BARE_SIZES=${DIFF_BARE_SIZES:-"100000"}
if want_section diff; then
  variants=""
  for n in $DIFF_SIZES; do variants="$variants $n:src"; done
  for n in $DIFF_BARE_SIZES; do variants="$variants $n:bare"; done
  for v in $variants; do
    n=${v%%:*} kind=${v#*:}
    d=$W/diff-$n-$kind name=diff-$n label="$n steps" flags=""
    [ "$kind" = bare ] && name=diff-$n-bare label="$n steps, no source comments" flags=-bare
    mkdir -p "$d"
    log "generating two journals of $n steps, 1% of the lines changed ($kind)"
    "$GEN" diff $flags "$n" "$d"
    rc=0; "$CAIRN" journal diff --plan "$d/a.journal" "$d/b.journal" >"$d/plan" || rc=$?
    [ $rc = 1 ] || die "cairn journal diff --plan on $n steps: exit $rc, want 1"
    ops=$(grep -vc '^#' "$d/plan" || true)
    lines=$(diff "$d/a.journal" "$d/b.journal" | grep -c '^[<>]' || true)
    [ "$ops" -gt 0 ] && [ "$ops" -le $((n / 50)) ] || die "$n steps: a plan of $ops ops for 1% of changed lines"
    log "$label: GNU diff sees $lines changed lines, cairn plans $ops ops"
    runs=$RUNS warm=1; [ "$n" -ge 1000000 ] && runs=$RUNS_SLOW warm=0
    : >"$W/res/$name.rss"; : >"$W/res/$name-gnu.rss"
    timeit "$name" "$runs" "$warm" - 1 \
      "cairn" "$(rss "$name") $CAIRN journal diff --plan $d/a.journal $d/b.journal" \
      "diff" "$(rss "$name-gnu") diff $d/a.journal $d/b.journal"
    tgt="ratio<1"; [ "$n" = 100000 ] && tgt="ratio<1,abs<0.1"; [ "$n" = 1000000 ] && tgt="ratio<1,abs<1"
    printf 'cmp\tdiff + plan, %s (%s ops)\t%s\tcairn\tdiff\t%s\n' "$label" "$ops" "$W/res/$name.json" "$tgt" >>"$ROWS"
    if [ "$n" = 100000 ]; then
      [ -z "$GNU_TIME" ] && peak "$name" 3 - "$CAIRN journal diff --plan $d/a.journal $d/b.journal" &&
        peak "$name-gnu" 3 - "diff $d/a.journal $d/b.journal"
      printf 'mem\tdiff --plan, %s (cairn)\t%s\tmib<64\n' "$label" "$W/res/$name.rss" >>"$ROWS"
      printf 'mem\tGNU diff, %s (reference)\t%s\t-\n' "$label" "$W/res/$name-gnu.rss" >>"$ROWS"
    fi
    # (the 1M journals, 360 MB, stay until the end: removing them now would put
    # their writeback and discards into the cold apply's timing)
  done
fi

# ---------------------------------------------------------------- cold apply
SRC=$W/src ROOT=$W/root STATE=$W/state J=$W/files.journal
APPLY="$CAIRN journal apply --root $ROOT --state $STATE --source $SRC $J"
# Between runs the trees are renamed into a trash directory, not removed: the
# removal of 20,000 files (and its writeback) is kept out of the timed runs,
# as /work/shared/bench/run.sh does. The trash goes after each section. Then
# the source is read, so that every run of either command finds it in the
# page cache: on the benchmark machines clean pages were dropped within a
# minute of their last use, and a run that read its 10,000 sources from disk
# took a second or more, which is not what the comparison is about.
TRASH=$W/trash
RESET="mkdir -p $TRASH/\$\$ && for t in $ROOT/dst $STATE $W/cpdst; do [ ! -e \$t ] || mv \$t $TRASH/\$\$/; done && sync && find $SRC -type f -exec cat {} + >/dev/null"
empty_trash() { rm -rf "$TRASH"; sync; }
if want_section cold || want_section noop; then
  log "generating $N_FILES files of 1 KiB in $((N_FILES / 20)) directories, and their journal"
  "$GEN" tree "$N_FILES" "$SRC"
  "$GEN" journal -o "$J" /dst "$SRC"
  mkdir -p "$ROOT"
  sh -c "$RESET"
  $APPLY >"$W/logs/apply-check.out" || die "cold apply"
  diff -r "$SRC" "$ROOT/dst" >/dev/null || die "cold apply: $ROOT/dst differs from $SRC"
  [ "$(tree_meta "$SRC")" = "$(tree_meta "$ROOT/dst")" ] || die "cold apply: types, modes or owners differ"
fi
if want_section cold; then
  # No warm-up run (RESET reads the source). The runs are interleaved (A B A
  # B, bench/timer.py even where hyperfine is installed): the speed of file
  # creation here drifts by a factor of two within minutes, and hyperfine's
  # ten runs of one command, then ten of the other, put that drift into the
  # ratio.
  saved_timer=("${TIMER_CMD[@]}")
  TIMER_CMD=(python3 "$HERE/timer.py")
  timeit cold "$RUNS_SLOW" 0 "$RESET" 0 \
    "cairn" "$(rss cold) $APPLY" \
    "cp -a && sync" "$(rss cold-cp) cp -a $SRC $W/cpdst && sync"
  TIMER_CMD=("${saved_timer[@]}")
  printf 'cmp\tcold apply, %s files\t%s\tcairn\tcp -a && sync\tratio<1.5\n' "$N_FILES" "$W/res/cold.json" >>"$ROWS"
  if [ -z "$GNU_TIME" ]; then
    log "peak memory of the cold apply"
    peak cold 3 "$RESET" "$APPLY"
    peak cold-cp 3 "$RESET" "cp -a $SRC $W/cpdst"
  fi
  printf 'mem\tcold apply, %s files (cairn)\t%s\tmib<32\n' "$N_FILES" "$W/res/cold.rss" >>"$ROWS"
  printf 'mem\tcp -a, %s files (reference)\t%s\t-\n' "$N_FILES" "$W/res/cold-cp.rss" >>"$ROWS"
  # The floor of the figure above: the same command for one file (the
  # binary's pages that the process touches, and the Go runtime).
  head -n 3 "$J" >"$W/one.journal"
  peak cold-one 3 "rm -rf $W/root1 $W/state1 && mkdir -p $W/root1" \
    "$CAIRN journal apply --root $W/root1 --state $W/state1 --source $SRC $W/one.journal"
  printf 'mem\tcold apply, 1 file (the floor: binary and runtime)\t%s\t-\n' "$W/res/cold-one.rss" >>"$ROWS"
  empty_trash
fi

# ---------------------------------------------------------------- no-op, verifying every file
if want_section noop; then
  sh -c "$RESET"
  $APPLY >/dev/null || die "cold apply before the no-op"
  out=$($APPLY --repair) || die "no-op apply --repair"
  [ "$out" = "$J: nothing to do" ] || die "no-op apply --repair said: $out"
  # a drifted file must be found and repaired: the no-op really checks
  victim=$ROOT/dst/d0000/f00000.txt
  echo drift >>"$victim"
  out=$($APPLY --repair) || die "apply --repair of a drifted file"
  cmp -s "$victim" "$SRC/d0000/f00000.txt" || die "apply --repair left the drifted file as it was: $out"
  sh -c "$RESET"
  $APPLY >/dev/null || die "cold apply before the no-op"
  # The stat cache trusts no file written within 50 ms of the check that
  # hashed it (racy entries): the warm-up run hashes and writes the cache.
  sleep 1
  # the stat cache must not hide drift: content changed, size and mtime kept
  $APPLY --repair >/dev/null && $APPLY --repair >/dev/null || die "no-op --repair with the stat cache"
  cp -p "$victim" "$W/victim.keep"
  printf X | dd of="$victim" bs=1 count=1 conv=notrunc status=none && touch -r "$W/victim.keep" "$victim"
  out=$($APPLY --repair) || die "apply --repair of a file changed under the stat cache"
  cmp -s "$victim" "$SRC/d0000/f00000.txt" || die "the stat cache hid a file changed with its size and mtime kept: $out"
  sleep 1
  before=$(tree_stamp "$ROOT/dst")
  timeit noop "$RUNS" 1 - 0 \
    "cairn" "$(rss noop) $APPLY --repair" \
    "cairn, 1 core" "GOMAXPROCS=1 $(rss noop-1) $APPLY --repair" \
    "cairn, every file hashed" "$(rss noop-hash) $APPLY --repair --rehash-every 1" \
    "cairn, no drift check" "$APPLY" \
    "hashall" "$(rss hashall) $HASHALL $ROOT/dst" \
    "hashall -j$NPROC" "$(rss hashall-j) $HASHALL -j $NPROC $ROOT/dst" \
    "lstat only" "$HASHALL -stat $ROOT/dst"
  [ "$before" = "$(tree_stamp "$ROOT/dst")" ] || die "the no-op runs changed inodes or times in $ROOT/dst"
  printf 'cmp\tno-op --repair (stat cache), %s files\t%s\tcairn\thashall\tratio<0.3\n' "$N_FILES" "$W/res/noop.json" >>"$ROWS"
  printf 'cmp\tno-op --repair, every file hashed\t%s\tcairn, every file hashed\thashall\tratio<1.5\n' "$W/res/noop.json" >>"$ROWS"
  printf 'cmp\tno-op without --repair (no drift check)\t%s\tcairn, no drift check\thashall\t-\n' "$W/res/noop.json" >>"$ROWS"
  printf 'cmp\tno-op (stat cache), both on 1 core\t%s\tcairn, 1 core\thashall\t-\n' "$W/res/noop.json" >>"$ROWS"
  printf 'cmp\tno-op (stat cache), both on %s cores\t%s\tcairn\thashall -j%s\t-\n' "$NPROC" "$W/res/noop.json" "$NPROC" >>"$ROWS"
  # The floor of any check through a stat cache: a walk that lstats every
  # file and reads nothing, against the hash floor (goal 3 asks 0.3x).
  printf 'cmp\tlstat of every file, no hashing (the stat floor)\t%s\tlstat only\thashall\t-\n' "$W/res/noop.json" >>"$ROWS"
  [ -n "$GNU_TIME" ] || peak noop 3 - "$APPLY --repair"
  printf 'mem\tno-op --repair, %s files\t%s\t-\n' "$N_FILES" "$W/res/noop.rss" >>"$ROWS"
  [ -n "$GNU_TIME" ] && printf 'mem\thashall, %s files (reference)\t%s\t-\n' "$N_FILES" "$W/res/hashall.rss" >>"$ROWS"
  empty_trash
fi

# ---------------------------------------------------------------- compile
# Each repository is compiled once before the timing, which checks the journal
# (as long as the generator says, and passing `cairn journal check`) and writes
# the content blobs to DIR/.cairn/blobs, as every later compile finds them.
COMPILED=$W/compiled.tsv # resources, steps, hyperfine JSON
: >"$COMPILED"
if want_section compile; then
  for n in $COMPILE_SIZES; do
    d=$W/config-$n
    log "generating a configuration of $n resources in $((n / 20)) directories over 20 modules"
    rm -rf "$d" # genconfig writes only into an empty directory (BENCH_WORK may be reused)
    stats=$("$GENCONFIG" -resources "$n" -dirs $((n / 20)) -modules 20 -out "$d") || die "genconfig of $n resources"
    steps=$(sed -n 's/.* steps=\([0-9]*\) .*/\1/p' <<<"$stats")
    COMPILE="$CAIRN compile --host web-01 --fact release=12 $d"
    $COMPILE >"$d.journal" || die "cairn compile of $n resources"
    got=$(wc -l <"$d.journal")
    [ "$got" = "$steps" ] || die "cairn compile of $n resources: $got steps, the generator expects $steps"
    "$CAIRN" journal check "$d.journal" >/dev/null || die "cairn journal check of the $n-resource journal"
    runs=$RUNS warm=1; [ "$n" -ge 100000 ] && runs=$RUNS_SLOW warm=0
    : >"$W/res/compile-$n.rss"
    timeit "compile-$n" "$runs" "$warm" - 0 "cairn compile" "$(rss "compile-$n") $COMPILE"
    printf '%s\t%s\t%s\t%s\n' "$n" "$steps" "$W/res/compile-$n.json" "$W/res/compile-$n.rss" >>"$COMPILED"
    [ -n "$GNU_TIME" ] || peak "compile-$n" 3 - "$COMPILE"
    printf 'mem\tcompile, %s resources\t%s\t-\n' "$n" "$W/res/compile-$n.rss" >>"$ROWS"
  done
fi

# compile_table: the compile section's medians, peak RSS, growth and the
# goals of issue 12 (10k: < 0.25 s and < 64 MiB; 100k: < 2.5 s and < 400 MiB),
# each as the ratio of the measured median to the goal (< 1 meets it), in markdown
compile_table() {
  python3 - "$COMPILED" <<'PY'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
fmt = lambda x: f"{x * 1000:.1f} ms" if x < 1 else f"{x:.3f} s"
goals = {10000: (0.25, 64), 100000: (2.5, 400)}  # seconds, MiB
print("| compile | resources | steps | median | min | max | cpu | peak RSS | resources/s | growth of the median | time / goal | RSS / goal |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
prev, verdicts = None, []
for res, steps, path, rsspath in rows:
    r = json.load(open(path))["results"][0]
    res, med = int(res), r["median"]
    try:
        kib = [float(x) for x in open(rsspath).read().splitlines() if x.strip().isdigit()]
    except OSError:
        kib = []
    mib = statistics.median(kib) / 1024 if kib else None
    growth = "-" if prev is None else f"{med / prev[1]:.2f}x for {res / prev[0]:g}x the resources"
    size = f"{res // 1000}k" if res % 1000 == 0 else str(res)
    tg, mg = "-", "-"
    if res in goals:
        gs, gm = goals[res]
        tg = f"{med / gs:.2f}x of {fmt(gs)}"
        mg = "-" if mib is None else f"{mib / gm:.2f}x of {gm} MiB"
        verdicts.append(f"{size}: {fmt(med)} ({'yes' if med < gs else '**NO**'}), "
                        f"{'-' if mib is None else f'{mib:.1f} MiB'} ({'yes' if mib is not None and mib < gm else '**NO**'})")
    print(f"| {size} | {res} | {steps} | {fmt(med)} | {fmt(r['min'])} | {fmt(r['max'])} | "
          f"{fmt(r['user'] + r['system'])} | {'-' if mib is None else f'{mib:.1f} MiB'} | {res / med:,.0f} | {growth} | {tg} | {mg} |")
    prev = (res, med)
print()
print("Median and cpu (mean user+system) of the timed runs of `cairn compile --host web-01 --fact release=12 DIR`;")
print("peak RSS: median of the runs' maximum resident set size. Goals of issue 12: 10k under 0.25 s and")
print("64 MiB, 100k under 2.5 s and 400 MiB, growth linear.")
if verdicts:
    print("Goals met: " + "; ".join(verdicts) + ".")
PY
}

# ---------------------------------------------------------------- agent
AGENT_MD=""
if want_section agent; then
  if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null; then
    log "the agent: bench/agent.sh (its log in $W/logs/agent.log)"
    BENCH_WORK=$W/agent "$HERE/agent.sh" >"$W/logs/agent.out" 2>"$W/logs/agent.log" || { tail -n 30 "$W/logs/agent.log" >&2; die "bench/agent.sh"; }
    AGENT_MD=$W/agent/agent-results.md
  else
    log "the agent section skipped: bench/agent.sh needs root and debootstrap"
  fi
fi

# ---------------------------------------------------------------- git server load
GITLOAD_MD=""
if want_section gitload; then
  if [ "$(id -u)" = 0 ]; then
    log "the git server's cost per poll: bench/gitload ${GITLOAD_FLAGS:-} (its log in $W/logs/gitload.log)"
    # shellcheck disable=SC2086 # GITLOAD_FLAGS is a list of flags
    "$W/bin/gitload" -o "$W/gitload.md" ${GITLOAD_FLAGS:-} >/dev/null 2>"$W/logs/gitload.log" || { tail -n 30 "$W/logs/gitload.log" >&2; die "bench/gitload"; }
    GITLOAD_MD=$W/gitload.md
  else
    log "the gitload section skipped: bench/gitload needs root (a cgroup for each server)"
  fi
fi

# ---------------------------------------------------------------- report
{
  echo "## cairn's journal core and compiler: whole-process benchmarks"
  echo
  echo "$(date -u +%F\ %T) UTC; $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] || echo ' with uncommitted changes');" \
    "$(go version | awk '{print $3}'); $NPROC cores; $(uname -r); timer: $TIMER_NAME (the cold apply's runs: bench/timer.py, interleaved);" \
    "load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -z "$GNU_TIME" ] && echo "(peak RSS from wait4 in python: /usr/bin/time is missing, apt-get install time)"
  echo
  python3 "$HERE/table.py" "$ROWS"
  if [ -s "$COMPILED" ]; then
    echo
    compile_table
  fi
  if [ -n "$AGENT_MD" ]; then
    echo
    cat "$AGENT_MD"
  fi
  if [ -n "$GITLOAD_MD" ]; then
    echo
    cat "$GITLOAD_MD"
  fi
} | tee "$W/results.md"
