#!/usr/bin/env bash
# Whole-process benchmarks of `cairn agent` on a repository of
# bench/genconfig's 10,000-resource configuration, each figure printed next
# to its goal (issue 9):
#
#   unchanged  a run that finds the tip unchanged (SIGHUP): CPU of the agent
#              process (user+sys, /proc/PID/stat) per run, and of the
#              programs it runs (dpkg-query, apt-mark, systemctl: the drift
#              check of packages and units); goal: no compile, under 20 ms
#              besides the drift check (the in-process split is
#              BenchmarkAgent10k/Unchanged in agent/bench_test.go)
#   push       `git push` of a one-line change, then POST /trigger, until
#              /metrics shows the new cairn_applied_commit_info, from an
#              agent at rest; goal < 1 s (issue 12, goal 5). Its split,
#              medians over the pushes: the git push, and from the agent's
#              log (the "run triggered" line and each "agent state" line)
#              trigger → fetching (opening the state), fetching, verifying,
#              compiling, planning, applying (until checking-drift, when
#              the metric shows the move); and the agent's CPU per push,
#              drift check included
#   memory     VmRSS at rest after the first apply (goal < 30 MiB) and VmHWM
#              of the process after its first, 10,000-resource apply (goal
#              < 100 MiB)
#
#   bench/agent.sh [-k]      -k keeps the work directory
#
# Environment: BENCH_WORK (work directory; default a new one under /tmp;
# kept), RUNS (unchanged runs, 10), PUSHES (one-line changes timed, 5).
#
# The host is a copy of the Debian root of scripts/debroot.sh (needs root
# and debootstrap; cached), into which the configuration's 160 packages are
# registered as installed (a dpkg status entry and a unit file each: they
# are in no archive), so that the agent runs the configuration's users,
# groups, packages and unit enables for real. No systemd runs that root's
# units, so the configuration's service blocks are made running = false
# (SYSTEMD-ENABLE, no start or restart); everything else is genconfig's.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
KEEP=0
while getopts "k" o; do
  case $o in k) KEEP=1 ;; *) sed -n '2,31p' "$0" >&2; exit 2 ;; esac
done
RUNS=${RUNS:-10}
PUSHES=${PUSHES:-5}
W=${BENCH_WORK:-$(mktemp -d /tmp/cairn-agent-bench.XXXXXX)}
[ -n "${BENCH_WORK:-}" ] && KEEP=1
mkdir -p "$W/bin"
W=$(cd "$W" && pwd)
AGENT_PID=""
cleanup() {
  [ -z "$AGENT_PID" ] || { kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null || true; }
  if [ "$KEEP" = 0 ]; then rm -rf "$W"; else echo "work directory kept: $W" >&2; fi
}
trap cleanup EXIT
log() { echo "[$(date +%T)] $*" >&2; }
die() {
  log "FAIL: $*"
  [ ! -f "$W/agent.log" ] || tail -n 20 "$W/agent.log" >&2
  exit 1
}
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
  GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.org \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.org
TCK=$(getconf CLK_TCK)

log "building cairn and bench/genconfig into $W/bin"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/bin/cairn" ./cmd/cairn && go build -o "$W/bin/genconfig" ./bench/genconfig) || die "build"
CAIRN=$W/bin/cairn

# ---------------------------------------------------------------- the repository
log "generating the 10,000-resource configuration"
rm -rf "$W/work" "$W/served.git"
stats=$("$W/bin/genconfig" -resources 10000 -out "$W/work") || die genconfig
sed -i 's/^  restart_on = .*/  running    = false/' "$W"/work/modules/*/main.cairn
git -C "$W/work" init -q -b main
git -C "$W/work" add -A
git -C "$W/work" commit -q -m "genconfig: $stats"
git clone -q --bare "$W/work" "$W/served.git"
git -C "$W/work" remote add served "$W/served.git"
FIRST=$(git -C "$W/work" rev-parse HEAD)
"$CAIRN" compile --host web-01 --fact release=12 "$W/work" >"$W/journal" || die "cairn compile"
rm -rf "$W/work/.cairn"
STEPS=$(wc -l <"$W/journal")

# ---------------------------------------------------------------- the host
ROOT=$W/root
rm -rf "$ROOT"
log "copying the Debian root (scripts/debroot.sh)"
"$REPO/scripts/debroot.sh" "$ROOT" >"$W/debroot.log" 2>&1 || die "scripts/debroot.sh: $(tail -n 3 "$W/debroot.log")"
mkdir -p "$ROOT/usr/lib/systemd/system"
n=0
while read -r _ name ver _; do
  case $ver in version=*) ver=${ver#version=} ;; *) ver=1.0-1 ;; esac
  printf 'Package: %s\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: bench <bench@example.org>\nArchitecture: all\nVersion: %s\nDescription: a stand-in of bench/agent.sh\n\n' \
    "$name" "$ver" >>"$ROOT/var/lib/dpkg/status"
  : >"$ROOT/var/lib/dpkg/info/$name.list" # else dpkg --audit finds the database unclean
  printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n' \
    "$name" >"$ROOT/usr/lib/systemd/system/$name.service"
  n=$((n + 1))
done < <(grep '^APT-INSTALL ' "$W/journal")
log "$STEPS steps; $n packages registered in the root"

# ---------------------------------------------------------------- the agent
: >"$W/agent.log"
"$CAIRN" agent --repo "$W/served.git" --host web-01 --fact release=12 --root "$ROOT" \
  --allow-unsigned --listen 127.0.0.1:0 --log-format json --interval 24h --splay 1s \
  2>"$W/agent.log" &
AGENT_PID=$!
ADDR=""
for _ in $(seq 300); do
  ADDR=$(sed -n 's/.*"msg":"listening","addr":"\([^"]*\)".*/\1/p' "$W/agent.log" | head -n 1)
  [ -n "$ADDR" ] && break
  kill -0 "$AGENT_PID" 2>/dev/null || die "the agent exited"
  sleep 0.1
done
[ -n "$ADDR" ] || die "the agent did not listen"
metrics() { curl -sf "http://$ADDR/metrics"; }
# (no grep -q on a pipe: with pipefail, curl's SIGPIPE would fail the test)
applied() { local m; m=$(metrics) || return 1; grep -q "^cairn_applied_commit_info{.*commit=\"$1\"" <<<"$m"; }
runs_ended() { grep -c '"msg":"run ended"' "$W/agent.log" || true; }
# wait_run N WHAT SECONDS: wait until more than N runs have ended (from the
# log: polling the agent would add to its CPU)
wait_run() {
  local i
  for ((i = 0; i < $3 * 100; i++)); do
    [ "$(runs_ended)" -gt "$1" ] && return 0
    kill -0 "$AGENT_PID" 2>/dev/null || die "the agent exited"
    sleep 0.01
  done
  die "$2 did not end within $3 s"
}
# cpu PID: user+sys of the process, and of its waited-for children, in ticks
cpu() { awk '{ print $14 + $15, $16 + $17 }' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

log "first apply of $FIRST"
t0=$(date +%s.%N)
wait_run 0 "the first run" 600
applied "$FIRST" || die "the first run did not apply $FIRST: $(grep '"run ended"' "$W/agent.log")"
FIRST_S=$(echo "$(date +%s.%N) - $t0" | bc)
HWM_FIRST=$(status_kib "$AGENT_PID" VmHWM)
sleep 5
RSS_IDLE=$(status_kib "$AGENT_PID" VmRSS)
ANON_IDLE=$(status_kib "$AGENT_PID" RssAnon)
log "first apply ended (about ${FIRST_S%.*} s); VmHWM $HWM_FIRST KiB, VmRSS at rest $RSS_IDLE KiB"

# ---------------------------------------------------------------- unchanged runs
log "$RUNS runs that find the tip unchanged (SIGHUP)"
compiles=$(grep -c '"state":"compiling"' "$W/agent.log" || true)
read -r self0 child0 < <(cpu "$AGENT_PID")
s0=$(date +%s.%N)
for ((i = 0; i < RUNS; i++)); do
  before=$(runs_ended)
  kill -HUP "$AGENT_PID"
  wait_run "$before" "unchanged run $i" 60
done
s1=$(date +%s.%N)
read -r self1 child1 < <(cpu "$AGENT_PID")
[ "$(grep -c '"state":"compiling"' "$W/agent.log" || true)" = "$compiles" ] || die "an unchanged run compiled"
grep '"msg":"run ended"' "$W/agent.log" | tail -n "$RUNS" | grep -vq '"result":"unchanged"' && die "a run was not unchanged"
UNCH_SELF=$(echo "scale=1; ($self1 - $self0) * 1000 / $TCK / $RUNS" | bc)
UNCH_CHILD=$(echo "scale=1; ($child1 - $child0) * 1000 / $TCK / $RUNS" | bc)
UNCH_WALL=$(echo "scale=1; ($s1 - $s0) * 1000 / $RUNS" | bc)
HWM_UNCH=$(status_kib "$AGENT_PID" VmHWM)
sleep 5
RSS_IDLE_UNCH=$(status_kib "$AGENT_PID" VmRSS)
ANON_IDLE_UNCH=$(status_kib "$AGENT_PID" RssAnon)

# ---------------------------------------------------------------- push → applied
log "$PUSHES one-line changes: git push, POST /trigger, until /metrics shows the commit"
: >"$W/push.ms"
: >"$W/gitpush.ms"
read -r pself0 _ < <(cpu "$AGENT_PID")
for ((i = 0; i < PUSHES; i++)); do
  f=$(find "$W/work/modules/m07/files" -name '*.conf' | sort | sed -n "$((i + 1))p")
  echo "# change $i" >>"$f"
  git -C "$W/work" commit -q -am "one line more in ${f#"$W"/work/}"
  want=$(git -C "$W/work" rev-parse HEAD)
  before=$(runs_ended)
  t0=$(date +%s%N)
  git -C "$W/work" push -q served main
  echo $((($(date +%s%N) - t0) / 1000000)) >>"$W/gitpush.ms"
  curl -sf -X POST "http://$ADDR/trigger" >/dev/null || die "POST /trigger"
  ok=0
  for _ in $(seq 3000); do
    if applied "$want"; then ok=1; break; fi
    sleep 0.01
  done
  t1=$(date +%s%N)
  [ "$ok" = 1 ] || die "commit $want not applied within 30 s"
  echo $(((t1 - t0) / 1000000)) >>"$W/push.ms"
  # The metric shows the move before the run's drift check ends: the next
  # push waits for that end, as the RSS at rest below does.
  wait_run "$before" "the run to $want" 60
done
read -r pself1 _ < <(cpu "$AGENT_PID")
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
PUSH_MED=$(median <"$W/push.ms")
PUSH_ALL=$(paste -sd' ' "$W/push.ms")
GITPUSH_MED=$(median <"$W/gitpush.ms")
PUSH_CPU=$(echo "scale=1; ($pself1 - $pself0) * 1000 / $TCK / $PUSHES" | bc)
# The split of the pushes' runs, from the log: milliseconds from each line
# to the next, per phase, of the last PUSHES runs.
jq -r 'select(.msg == "run triggered over HTTP" or .msg == "agent state") | [.time, (.state // "triggered")] | @tsv' "$W/agent.log" |
  awk -F'\t' '
    function secs(t) { split(substr(t, 12), p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
    $2 == "triggered" { run++; prev = ""; }
    run > 0 && prev != "" { d = (secs($1) - secs(at)) * 1000; if (d < 0) d += 86400000; printf "%d\t%s\t%.0f\n", run, prev, d }
    run > 0 { prev = $2; at = $1 }
  ' >"$W/phases.tsv"
PHASES=""
for ph in triggered fetching verifying compiling planning applying; do
  v=$(awk -F'\t' -v ph="$ph" '$2 == ph { print $3 }' "$W/phases.tsv" | tail -n "$PUSHES" | median)
  PHASES="$PHASES${PHASES:+, }$ph ${v:-?}"
done
sleep 5
RSS_IDLE2=$(status_kib "$AGENT_PID" VmRSS)
ANON_IDLE2=$(status_kib "$AGENT_PID" RssAnon)
HWM_END=$(status_kib "$AGENT_PID" VmHWM)

# ---------------------------------------------------------------- report
mib() { echo "scale=1; $1 / 1024" | bc; }
verdict() { if [ "$(echo "$1 < $2" | bc)" = 1 ]; then echo yes; else echo "**NO**"; fi; }
{
  echo "## cairn agent: whole-process benchmarks"
  echo
  echo "$(date -u +%F\ %T) UTC; $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'); $(go version | awk '{print $3}');" \
    "$(nproc) cores; $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "bench/genconfig -resources 10000 ($STEPS steps, service blocks running = false), served from a local bare repository;"
  echo "first apply in ${FIRST_S%.*} s"
  echo
  echo "| what | figure | goal | met |"
  echo "|---|---|---|---|"
  echo "| unchanged run (SIGHUP): agent CPU per run, drift check included | $UNCH_SELF ms | < 20 ms besides the drift check | BenchmarkAgent10k/Unchanged |"
  echo "| unchanged run: CPU of the programs it runs (dpkg-query, apt-mark, systemctl) | $UNCH_CHILD ms | - | - |"
  echo "| unchanged run: wall time | $UNCH_WALL ms | - | - |"
  echo "| unchanged run: compiles | 0 | 0 | yes |"
  echo "| push → applied, one-line change (median of $PUSHES: $PUSH_ALL ms) | $PUSH_MED ms | < 1000 ms | $(verdict "$PUSH_MED" 1000) |"
  echo "| push → applied: its split, medians in ms (git push; from the agent's log, each state until the next) | git push $GITPUSH_MED; $PHASES | - | - |"
  echo "| push → applied: agent CPU per push, drift check included | $PUSH_CPU ms | - | - |"
  echo "| VmRSS at rest after the first apply (anonymous: $(mib "$ANON_IDLE") MiB) | $(mib "$RSS_IDLE") MiB | < 30 MiB | $(verdict "$RSS_IDLE" 30720) |"
  echo "| VmRSS at rest after the unchanged runs (anonymous: $(mib "$ANON_IDLE_UNCH") MiB) | $(mib "$RSS_IDLE_UNCH") MiB | < 30 MiB | $(verdict "$RSS_IDLE_UNCH" 30720) |"
  echo "| VmRSS at rest after the pushes (anonymous: $(mib "$ANON_IDLE2") MiB) | $(mib "$RSS_IDLE2") MiB | < 30 MiB | $(verdict "$RSS_IDLE2" 30720) |"
  echo "| VmHWM after the first (10,000-resource) apply | $(mib "$HWM_FIRST") MiB | < 100 MiB | $(verdict "$HWM_FIRST" 102400) |"
  echo "| VmHWM after the unchanged runs / at the end | $(mib "$HWM_UNCH") / $(mib "$HWM_END") MiB | < 100 MiB | $(verdict "$HWM_END" 102400) |"
} | tee "$W/agent-results.md"
