#!/usr/bin/env bash
# demo.sh: cairn's main job, the agent. It makes a git repository from
# examples/fleet whose commits are signed with a throw-away SSH key, and runs
# two agents under scratch roots in /tmp: web-01, the canary (branch canary),
# and web-02, a web server (branch main). Then: a change pushed to the canary
# branch moves the canary and not web-02; a commit whose CHECK fails is
# undone and reported; `cairn status` and /metrics show it; the canary is
# rolled back and held, then resumed; the canary branch is promoted to main
# and web-02 follows. Last it stops the agents and checks that both roots
# hold what they should and nothing drifted. Exits non-zero if any of it
# fails, and then keeps the scratch directory (logs included).
#
# Why a switch: a scratch root holds no Debian system for apt to install
# into and no systemd to start units, so the demo's repository sets the
# fleet's `packages` variable to false (examples/fleet/main.cairn): the
# agents apply the fleet's files, directories, users and groups, and the
# checks of them; packages, services and the checks that talk to services
# are left out. Each root starts as the skeleton a Debian host with those
# packages has (the accounts of base-passwd, /etc/nginx, /etc/ssh, ...).
#
# The journals add users (useradd --root) and give files to them, so the
# demo runs as root: a user namespace of one mapped user (unshare
# --map-root-user, as demo-journal.sh uses) cannot chown to alice's uid.
# Needs git, ssh-keygen (openssh-client) and curl.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run it as root: the agents add users and set owners under their scratch roots" >&2
	exit 1
fi
for tool in git ssh-keygen curl; do
	command -v $tool >/dev/null || {
		echo "demo.sh: needs $tool (apt-get install git openssh-client curl)" >&2
		exit 1
	}
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ -t 1 ]; then
	heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	heading() { printf '\n== %s\n' "$*"; }
fi
# run prints a command line, quoting the words that need it, and runs it.
run() {
	local line='$' word
	for word in "$@"; do
		if [[ -z $word || $word =~ [^A-Za-z0-9_./:=@,+-] ]]; then
			line+=" '$word'"
		else
			line+=" $word"
		fi
	done
	echo "$line"
	"$@"
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

heading "Build cairn"
run env CGO_ENABLED=0 "${GO:-go}" build -o bin/cairn ./cmd/cairn
cairn() { "$repo/bin/cairn" "$@"; }

scratch=$(mktemp -d /tmp/cairn-demo.XXXXXX)
declare -A pid addr
cleanup() {
	local status=$?
	for host in "${!pid[@]}"; do
		kill "${pid[$host]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ $status -eq 0 ]; then
		rm -rf "$scratch"
	else
		echo "demo failed; the repositories, roots, states and agent logs are kept in $scratch" >&2
	fi
}
trap cleanup EXIT
# Everything happens in the scratch directory, named relative to it: the
# operator's clone (work), the repository the agents fetch from
# (origin.git), the key, and each host's root and state.
cd "$scratch"
echo "(in $scratch)"

# git runs in the operator's clone, as the operator: every commit signed
# with the throw-away key.
g() { git -C work "$@"; }
# commit commits everything in the clone with message $1 and prints the
# commit's hash.
commit() {
	g add -A
	g commit -q -m "$1"
	g rev-parse HEAD
}
short() { echo "${1:0:7}"; }

heading "1. A configuration repository from examples/fleet; commits signed with a throw-away key"
run ssh-keygen -q -t ed25519 -N '' -C ops@example.org -f key
printf 'ops@example.org namespaces="git" %s\n' "$(cat key.pub)" >allowed_signers
run cut -c1-60 allowed_signers
git init -q --bare -b main origin.git
git init -q -b main work
g config user.name "Ops"
g config user.email ops@example.org
g config gpg.format ssh
g config user.signingkey "$scratch/key"
g config gpg.ssh.allowedSignersFile "$scratch/allowed_signers"
g config commit.gpgsign true
g remote add origin "$scratch/origin.git"
(cd "$repo/examples/fleet" && tar --exclude=.cairn -cf - .) | tar -xf - -C work
# The one change to the example: no packages under a scratch root (see the
# top of this script).
sed -i '/^variable "packages" {/,/^}/s/default     = true/default     = false/' work/main.cairn
grep -q 'default     = false' work/main.cairn || fail "could not set packages = false in main.cairn"
echo "work/: examples/fleet, with variable \"packages\" set to false in main.cairn: a scratch root"
echo "has no Debian system to install packages into and no systemd to start units"
c1=$(commit "fleet: examples/fleet, without packages (scratch roots)")
g push -q origin main main:canary
run git -C work log --show-signature --format='%h %s' -1 2>&1

# A root for each host: the skeleton of a Debian host with the fleet's
# packages installed, as far as the journal without them relies on it.
seed() {
	local r=$1
	mkdir -p "$r"/etc/{sudoers.d,apt/apt.conf.d,ssh/sshd_config.d,nginx/sites-available,nginx/sites-enabled} \
		"$r"/home "$r"/srv "$r"/var/backups
	printf '%s\n' root:x:0:0:root:/root:/bin/bash daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin \
		www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin backup:x:34:34:backup:/var/backups:/usr/sbin/nologin \
		nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin >"$r/etc/passwd"
	printf '%s\n' root:x:0: daemon:x:1: www-data:x:33: backup:x:34: users:x:100: nogroup:x:65534: >"$r/etc/group"
	sed 's/:.*/:*:20000:0:99999:7:::/' "$r/etc/passwd" >"$r/etc/shadow"
	sed 's/:.*/:*::/' "$r/etc/group" >"$r/etc/gshadow"
	chmod 0640 "$r/etc/shadow" "$r/etc/gshadow"
	printf 'server {\n\tlisten 80 default_server;\n\troot /var/www/html;\n}\n' >"$r/etc/nginx/sites-available/default"
	ln -s /etc/nginx/sites-available/default "$r/etc/nginx/sites-enabled/default"
}

# start runs the agent of host $1 in the background, logging to HOST.log,
# and waits until it listens (on a free loopback port).
start() {
	local host=$1
	local args=("${common[@]}" --host "$host" --root "$host" --state "$host.state" --listen 127.0.0.1:0 --interval 2s)
	echo "\$ cairn agent ${args[*]} 2>$host.log &"
	"$repo/bin/cairn" agent "${args[@]}" 2>"$host.log" &
	pid[$host]=$!
	for _ in $(seq 100); do
		addr[$host]=$(sed -n 's/.*msg=listening addr=\([0-9.:]*\).*/\1/p' "$host.log")
		[ -n "${addr[$host]}" ] && return
		kill -0 "${pid[$host]}" 2>/dev/null || break
		sleep 0.1
	done
	cat "$host.log" >&2
	fail "the agent of $host did not start"
}

# status prints host $1's status document (JSON) from its agent, on one
# line with no space after the colons.
status() { curl -fsS "http://${addr[$1]}/status" | sed 's/^ *//; s/": /":/' | tr -d '\n'; }

# applied prints the commit host $1 is at.
applied() { status "$1" | sed -n 's/.*"applied":{"commit":"\([0-9a-f]*\)".*/\1/p'; }

# wait_for waits (60 s at most) until host $1's status matches the
# extended regular expression $2, $3 saying what for.
wait_for() {
	for _ in $(seq 600); do
		status "$1" | grep -Eq "$2" && return
		sleep 0.1
	done
	status "$1" >&2 || true
	fail "$1: waited 60 s for $3"
}

# at waits until host $1 is at commit $2 and idle after a run.
at() { wait_for "$1" "\"state\":\"(idle|held)\".*\"applied\":\\{\"commit\":\"$2\"" "commit $(short "$2")"; }

# assert checks that file $2 beneath host $1's root holds the extended
# regular expression $3.
assert() {
	grep -Eq "$3" "$1$2" || fail "$1: $2 does not hold /$3/: $(cat "$1$2")"
}

# Flags every cairn command of the demo shares; the facts are those of a
# Debian 12 host, given so that the journals do not depend on this machine.
# The confirm window (the CHECKs must keep holding after a move) is 2 s
# rather than 30.
common=(--repo "file://$scratch/origin.git" --trust allowed_signers --confirm 2s
	--fact release=12 --fact codename=bookworm --fact arch=amd64)
canary=(--log-level warn "${common[@]}" --host web-01 --root web-01 --state web-01.state)

heading "2. Two agents under scratch roots: web-01 (group canary, branch canary), web-02 (group web, branch main)"
for host in web-01 web-02; do
	seed $host
	start $host
	echo "  listening on ${addr[$host]}"
done
for host in web-01 web-02; do
	at $host "$c1"
done
echo "both at $(short "$c1"):"
for host in web-01 web-02; do
	printf '  %s: ' $host
	head -n1 "$host/etc/motd"
done
assert web-01 /etc/passwd '^alice:x:3001:3000:'
assert web-01 /etc/ssh/sshd_config.d/50-fleet.conf '^ClientAliveInterval 300$'
[ ! -e "web-01/etc/nginx/sites-enabled/default" ] || fail "nginx's default site is still enabled"
[ "$(readlink "web-02/etc/nginx/sites-enabled/example.org")" = ../sites-available/example.org ] ||
	fail "web-02: the site is not enabled"

heading "3. A change pushed to the canary branch: the canary moves, web-02 does not"
g checkout -q -b canary
sed -i 's/^ClientAliveInterval 300$/ClientAliveInterval 120/' work/common/files/sshd-fleet.conf
c2=$(commit "ssh: drop idle sessions after 2 minutes")
run git -C work push -q origin canary
at web-01 "$c2"
sleep 3 # a run of web-02's, at least
[ "$(applied web-02)" = "$c1" ] || fail "web-02 moved to $(applied web-02)"
for host in web-01 web-02; do
	printf '  %s at %s: %s\n' $host "$(short "$(applied $host)")" "$(grep ClientAlive "$host/etc/ssh/sshd_config.d/50-fleet.conf")"
done
assert web-01 /etc/ssh/sshd_config.d/50-fleet.conf '^ClientAliveInterval 120$'
assert web-02 /etc/ssh/sshd_config.d/50-fleet.conf '^ClientAliveInterval 300$'

heading "4. A commit whose CHECK fails: undone, reported, not tried again"
sed -i 's|<title>example.org</title>|<title>Welcome</title>|' work/roles/files/index.html
c3=$(commit "www: a new front page")
run git -C work push -q origin canary
echo "(The canary checks that its page is example.org's: roles/web.cairn, check \"canary-has-site\".)"
wait_for web-01 "\"bad_commits\":\\[\\{\"commit\":\"$c3\"" "the failed move to $(short "$c3")"
at web-01 "$c2"
assert web-01 /srv/www/example.org/index.html '<title>example.org</title>'
echo "web-01 is back at $(short "$c2"); the error its log gives for the run:"
grep -m1 'msg="run ended" result=failed' web-01.log | sed 's/.* err="//; s/"$//' | perl -pe 's/\\(.)/$1/g' |
	fold -s -w 100 | sed 's/^/  /'
sleep 3 # a run of web-01's, at least
curl -fsS "http://${addr[web-01]}/metrics" | grep -q '^cairn_runs_total{result="failed"} 1$' ||
	fail "web-01 tried the bad commit again"
echo "and does not try $(short "$c3") again from $(short "$c2")"

heading "5. cairn status and /metrics"
rc=0
run cairn status --listen "${addr[web-01]}" || rc=$?
[ $rc -eq 1 ] || fail "cairn status exited $rc for a canary that is not at its target; want 1"
echo "(exit 1: not converged, the target is the bad commit)"
echo "\$ curl -s http://${addr[web-01]}/metrics | grep ..."
curl -fsS "http://${addr[web-01]}/metrics" |
	grep -E '^cairn_(applied_commit_info|target_commit_info|converged|held|runs_total|state\{state="idle"\})' |
	grep -v ' 0$'

heading "6. Roll the canary back (it stays there), push the fix, resume"
run cairn rollback "${canary[@]}" --listen "${addr[web-01]}" --reason "hold until the page is fixed"
at web-01 "$c1"
wait_for web-01 '"held":\{"reason":"hold until the page is fixed"' "the hold"
assert web-01 /etc/ssh/sshd_config.d/50-fleet.conf '^ClientAliveInterval 300$'
echo "\$ cairn status --listen ${addr[web-01]} | grep -E '^(state|held|applied):'"
cairn status --listen "${addr[web-01]}" | grep -E '^(state|held|applied):' || true
run git -C work revert --no-edit HEAD
c4=$(g rev-parse HEAD)
run git -C work push -q origin canary
wait_for web-01 "\"target\":\\{\"commit\":\"$c4\"" "the fetch of $(short "$c4")"
sleep 2
[ "$(applied web-01)" = "$c1" ] || fail "the held canary moved to $(applied web-01)"
echo "web-01 saw $(short "$c4") and stays held at $(short "$c1")"
run cairn resume "${canary[@]}" --listen "${addr[web-01]}"
at web-01 "$c4"
assert web-01 /etc/ssh/sshd_config.d/50-fleet.conf '^ClientAliveInterval 120$'
assert web-01 /srv/www/example.org/index.html '<title>example.org</title>'
echo "web-01 at $(short "$c4")"

heading "7. Promote: the canary branch to main; web-02 follows"
run git -C work push -q origin canary:main
at web-02 "$c4"
assert web-02 /etc/ssh/sshd_config.d/50-fleet.conf '^ClientAliveInterval 120$'
for host in web-01 web-02; do
	wait_for $host '"converged":true' "convergence"
	echo "\$ cairn status --listen ${addr[$host]} | grep -E '^(host|group|state|applied|converged):'"
	cairn status --listen "${addr[$host]}" | grep -E '^(host|group|state|applied|converged):'
done

heading "8. Stop the agents; check the roots"
for host in web-01 web-02; do
	kill -TERM "${pid[$host]}"
	rc=0
	wait "${pid[$host]}" || rc=$?
	unset "pid[$host]"
	[ $rc -eq 0 ] || fail "the agent of $host exited $rc on SIGTERM"
done
echo "both agents exited 0 on SIGTERM"
for host in web-01 web-02; do
	run cairn journal drift --root $host --state $host.state
	assert $host /etc/motd "^$host: group (canary|web), following branch (canary|main)\.$"
	assert $host /etc/passwd '^bob:x:3002:3000::/home/bob:/bin/bash$'
	assert $host /etc/group '^ops:x:3000:'
	assert $host /etc/sudoers.d/ops '^%ops ALL=\(ALL:ALL\) ALL$'
	assert $host /srv/www/example.org/index.html '<title>example.org</title>'
	[ -d "$host/var/backups/spool/$host" ] || fail "$host: no backup spool"
	[ ! -e "$host/etc/nginx/sites-enabled/default" ] || fail "$host: nginx's default site is enabled"
done
assert web-01 /etc/nginx/nginx.conf '^worker_processes 2;$'
assert web-02 /etc/nginx/nginx.conf '^worker_processes 4;$'
echo "ok: both roots at $(short "$c4"), no drift; each with its own motd, nginx workers and spool"
