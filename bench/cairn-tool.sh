# cairn as a column of the peer benchmark (/work/shared/bench/run.sh):
#
#   EXTRA_TOOLS=bench/cairn-tool.sh /work/shared/bench/run.sh -N "1000 10000" -T "cp hashsync_manifest cairn"
#
# Sourced by that run.sh (which defines B, its work directory). It builds cairn
# and bench/gen from this checkout into $B/bin once, then defines tool_cairn:
#
#   tool_cairn N SRC DST CFGDIR SCEN
#
# writes CFGDIR/site.journal (MKDIR DST, then a MKDIR per directory and a COPY
# per file of SRC, with their sha256) and echoes one command:
#
#   cold    sh CFGDIR/cold.sh: rename the state directory away (like DST, whose
#           removal is not timed), then `cairn journal apply` with a new state
#   noop    `cairn journal apply --repair`: plans nothing, and checks the live
#           state of every step (lstat, and the sha256 of every file)
#   change  sh CFGDIR/change.sh: write the journal again from SRC (hashing every
#           source file: the compile step, since a source file changed), then
#           `cairn journal apply --repair` (one update, every other file checked)
#
# The root is /, the objects are DST's absolute paths, the state is CFGDIR/state.

_cairn_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$B/bin"
if ! (cd "$_cairn_repo" && CGO_ENABLED=0 go build -o "$B/bin/cairn" ./cmd/cairn && go build -o "$B/bin/cairn-gen" ./bench/gen); then
  echo "cairn-tool.sh: cannot build cairn from $_cairn_repo" >&2
  exit 1
fi

tool_cairn() {
  local n=$1 src=$2 dst=$3 cfg=$4 scen=$5
  local j=$cfg/site.journal st=$cfg/state
  "$B/bin/cairn-gen" journal -o "$j" "$dst" "$src" || return 1
  local apply="$B/bin/cairn journal apply --root / --state $st --source $src"
  case $scen in
    cold)
      printf '%s\n' "mkdir -p $B/trash" "[ ! -e $st ] || mv $st $B/trash/cairn-state.\$\$" "exec $apply $j" >"$cfg/cold.sh"
      echo "sh $cfg/cold.sh" ;;
    noop)
      echo "$apply --repair $j" ;;
    change)
      printf '%s\n' "$B/bin/cairn-gen journal -o $j $dst $src || exit 2" "exec $apply --repair $j" >"$cfg/change.sh"
      echo "sh $cfg/change.sh" ;;
    *) return 1 ;;
  esac
}
