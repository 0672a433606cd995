#!/usr/bin/env bash
# testhost.sh: Debian 12 (bookworm) hosts with systemd as PID 1, booted
# with systemd-nspawn, for the tests that need a real systemd (units started
# over D-Bus, sd_notify, the watchdog, the journal, maintainer scripts).
#
#   scripts/testhost.sh --build
#       build the cached root if need be, print its path
#   scripts/testhost.sh boot [--private-network] [--bind SRC[:DST]]...
#                            [--bind-ro SRC[:DST]]... [--timeout SECONDS]
#                            [--owner PID] NAME DEST
#       make DEST (missing or empty) a fresh copy of the root, named NAME
#       (host name and machine id), boot it in the background and wait
#       until systemd says it is running (or degraded); print the PID of
#       its systemd (the leader), as the host sees it. With --owner, reap
#       stops the host once process PID is gone
#   scripts/testhost.sh run NAME CMD [ARG]...
#       run CMD inside NAME, with the environment of its PID 1, and exit
#       with CMD's exit code
#   scripts/testhost.sh stop NAME
#       power NAME off (systemctl poweroff, then SIGKILL after 30 seconds)
#       and remove its DEST
#   scripts/testhost.sh reap
#       stop the hosts whose owner is gone (a test killed before its
#       cleanup)
#
# The root is built once per machine with debootstrap (variant minbase, and
# systemd, systemd-sysv, dbus, ca-certificates, curl and procps), with an
# empty machine id and the .debs of PACKAGES below in its apt cache, so that
# a test can install them with no network. It is cached in
# $CAIRN_TEST_CACHE (default /var/cache/cairn-test) as
# testhost-bookworm-HASH, HASH being that of the part of this script that
# makes it (PACKAGES and build): editing that part builds a new one (roots
# unused for a week are removed then). Every DEST is
# a copy (cp -a, a reflink where the file system can). A build holds the
# cache's lock (.testhost.lock) exclusively, copies hold it shared: callers
# wait for one build, and copy at the same time.
#
# A host shares the host's network unless --private-network is given
# (then it has a loopback device only). --bind and --bind-ro share a
# directory of the host (at DST inside, SRC when DST is not given), as
# systemd-nspawn's options of those names do. Each host runs in cgroups of
# its own, cairn-testhost-NAME beneath the caller's (in cgroup2 and in v1's
# name=systemd hierarchy), which stop empties and removes. What stop and
# run need (DEST, the PIDs, the cgroups, the console log) is kept in
# /run/cairn-testhost/NAME/.
#
# The mirror is the one scripts/debroot.sh uses (this host's apt's for
# bookworm, or $CAIRN_DEBIAN_MIRROR, else http://deb.debian.org/debian).
# Needs root, debootstrap and systemd-nspawn (systemd-container); exits 1
# with the reason otherwise, 2 on a usage error.
set -euo pipefail

# The packages whose .debs the root holds (not installed), with their
# dependencies: nginx-light, a real service for the unit tests.
PACKAGES="nginx-light"

die() {
	echo "testhost.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '/^#   scripts/,/^# *$/p' "$self" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

self=$(readlink -f "$0")
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, systemd-nspawn, nsenter)"

# The hash of what makes the root (PACKAGES and build), so that editing the
# rest of the script does not build a new one.
hash=$(sed -n '/^PACKAGES=/p; /^build() {$/,/^}$/p' "$self" | sha256sum | cut -c1-12)
cache=${CAIRN_TEST_CACHE:-/var/cache/cairn-test}
built=$cache/testhost-bookworm-$hash
state=/run/cairn-testhost

# mirror() is debroot.sh's, one definition for both scripts.
eval "$(sed -n '/^mirror() {$/,/^}$/p' "$(dirname "$self")/debroot.sh")"
declare -F mirror >/dev/null || die "no mirror() in $(dirname "$self")/debroot.sh"

# build makes the cached root, once: into a scratch directory renamed into
# place when complete. The caller holds the lock exclusively.
build() {
	if [ -d "$built" ]; then
		touch "$built"
		return
	fi
	command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"
	local tmp=$cache/.testhost-build-$hash log=$cache/.testhost-build.log url
	rm -rf "$tmp"
	url=$(mirror)
	echo "testhost.sh: building a Debian 12 root with systemd from $url into $built (once per machine)" >&2
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates,curl,procps \
		bookworm "$tmp" "$url" >"$log" 2>&1 ||
		die "debootstrap failed; its log is $log: $(tail -n 5 "$log")"
	echo 'Acquire::Languages "none";' >"$tmp/etc/apt/apt.conf.d/99cairn-test"
	echo "deb $url bookworm main" >"$tmp/etc/apt/sources.list"
	chroot "$tmp" apt-get update -q >>"$log" 2>&1 ||
		die "apt-get update in the root failed; see $log"
	# debootstrap leaves the .debs of what it installed: only those of
	# PACKAGES stay, to keep copies small.
	chroot "$tmp" apt-get clean >>"$log" 2>&1
	# shellcheck disable=SC2086 # PACKAGES is a list
	chroot "$tmp" apt-get install -q -y --download-only $PACKAGES >>"$log" 2>&1 ||
		die "downloading $PACKAGES into the root failed; see $log"
	rm -f "$tmp"/var/cache/apt/*.bin
	# Each boot writes its own machine id; an empty file (not a missing
	# one) is what systemd expects of an image.
	: >"$tmp/etc/machine-id"
	rm -f "$tmp/var/lib/dbus/machine-id"
	# No login prompt on the console, and nothing that waits for a network
	# the host manages.
	chroot "$tmp" systemctl mask console-getty.service getty@.service systemd-networkd-wait-online.service >>"$log" 2>&1 || true
	mv "$tmp" "$built"
	find "$cache" -mindepth 1 -maxdepth 1 -name 'testhost-bookworm-*' ! -path "$built" -mtime +7 -exec rm -rf {} +
}

# lock takes the cache's lock; builds the root (exclusive) if need be, then
# keeps the lock shared for the caller's copy.
lock() {
	mkdir -p "$cache"
	exec 9>"$cache/.testhost.lock"
	flock 9
	build
	flock -s 9
}

# load reads the state of host NAME into nspawn, leader and dest.
load() {
	local f=$state/$1/state
	[ -r "$f" ] || die "no host $1 (no $f)"
	cgroups=() owner=""
	# shellcheck disable=SC1090 # written by boot
	. "$f"
}

alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# inside runs a command in host NAME's namespaces (loaded), with the
# environment of its PID 1 less NOTIFY_SOCKET (which is nspawn's).
inside() {
	local -a env=()
	local kv
	while IFS= read -r -d '' kv; do
		case $kv in NOTIFY_SOCKET=*) ;; *) env+=("$kv") ;; esac
	done <"/proc/$leader/environ"
	exec nsenter -t "$leader" -a -- /usr/bin/env -i HOME=/root USER=root LOGNAME=root "${env[@]}" "$@"
}

# start_time prints when process PID started (in clock ticks since boot),
# which tells it from a later process given the same PID.
start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	# PID (COMM) STATE PPID ...: the 22nd field, 20th after COMM.
	stat=${stat##*) }
	echo "$stat" | cut -d' ' -f20
}

# reap stops the hosts whose owner has gone, one caller at a time.
reap() {
	mkdir -p "$state"
	exec 8>"$state/.reap.lock"
	flock -n 8 || return 0
	local f name
	for f in "$state"/*/state; do
		[ -r "$f" ] || continue
		name=$(basename "$(dirname "$f")")
		(
			load "$name"
			[ -n "$owner" ] || exit 0
			[ "$owner" != "${owner%% *} $(start_time "${owner%% *}")" ] || exit 0
			echo "testhost.sh: $name: its owner (PID ${owner%% *}) is gone; stopping it" >&2
			halt "$name"
		) || true
	done
	exec 8>&-
}

# cgroup_dirs prints the directories of host NAME's cgroups: beneath this
# process's cgroup in each hierarchy systemd uses (cgroup2, where mounted,
# and cgroup v1's name=systemd).
cgroup_dirs() {
	local mnt own
	mnt=$(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
	own=$(sed -n 's/^0:://p' /proc/self/cgroup)
	[ -n "$mnt" ] && [ -n "$own" ] && echo "$mnt${own%/}/cairn-testhost-$1"
	mnt=$(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup" && $(i+3) ~ /(^|,)name=systemd(,|$)/) { print $5; exit } }' /proc/self/mountinfo)
	own=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup)
	[ -n "$mnt" ] && [ -n "$own" ] && echo "$mnt${own%/}/cairn-testhost-$1"
	return 0
}

# find_leader prints the PID of the child of nspawn PID that runs systemd,
# if any.
find_leader() {
	local child
	# shellcheck disable=SC2013 # children is a list of PIDs, not lines
	for child in $(cat "/proc/$1/task/"*/children 2>/dev/null); do
		if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then
			echo "$child"
			return
		fi
	done
}

# kill_runs kills the commands that run runs in host NAME (loaded), if
# any: each nsenter, and its child inside. An nsenter left there would
# deadlock the poweroff: systemd-shutdown stops every process (SIGSTOP)
# before it kills them, nsenter (waitpid with WUNTRACED) then stops itself
# too, and never reaps its child, whose PID namespace cannot end until it
# is reaped.
kill_runs() {
	[ -n "$leader" ] || return 0
	local p cmd
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = nsenter ] || continue
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		[[ $cmd == "nsenter -t $leader -a "* ]] || continue
		# shellcheck disable=SC2046 # a list of PIDs
		kill -KILL $(cat "$p"/task/*/children 2>/dev/null) "${p#/proc/}" 2>/dev/null || true
	done
}

# halt stops host NAME (loaded) and removes what boot made.
halt() {
	local name=$1
	kill_runs
	# SIGTERM is nspawn's signal to power the host off, as poweroff inside.
	if alive "$leader"; then
		nsenter -t "$leader" -a -- systemctl poweroff --no-block >/dev/null 2>&1 || kill -TERM "$nspawn" 2>/dev/null || true
	elif alive "$nspawn"; then
		kill -TERM "$nspawn" 2>/dev/null || true
	fi
	local i
	for ((i = 0; i < 300; i++)); do
		alive "$nspawn" || break
		((i % 10 != 9)) || kill_runs
		sleep 0.1
	done
	if alive "$nspawn"; then
		echo "testhost.sh: $name did not power off in 30 s; killing it" >&2
		# The leader is the PID namespace's init: killing it kills every
		# process of the host, and nspawn then exits.
		[ -n "$leader" ] || leader=$(find_leader "$nspawn")
		alive "$leader" && kill -KILL "$leader" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			alive "$nspawn" || break
			sleep 0.1
		done
		alive "$nspawn" && kill -KILL "$nspawn" 2>/dev/null
	fi
	for ((i = 0; i < 50; i++)); do
		alive "$nspawn" || alive "$leader" || break
		sleep 0.1
	done
	if alive "$nspawn" || alive "$leader"; then
		die "$name: nspawn ($nspawn) or its systemd ($leader) is still running"
	fi
	# Whatever else ran in the host's cgroups (the leader was not known
	# yet, or a process left its PID namespace), then the cgroups.
	local cg pids
	for cg in "${cgroups[@]}"; do
		[ -d "$cg" ] || continue
		for ((i = 0; i < 50; i++)); do
			pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
			[ -n "$pids" ] || break
			# shellcheck disable=SC2086 # a list of PIDs
			kill -KILL $pids 2>/dev/null || true
			sleep 0.1
		done
		[ -z "$pids" ] || die "$name: processes $pids are still in $cg"
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ ! -d "$cg" ] || die "$name: cannot remove its cgroup $cg"
	done
	# nspawn's directory for mounts into the host, which it leaves when it
	# is stopped early.
	rmdir "/run/systemd/nspawn/propagate/$name" 2>/dev/null || true
	if [ -n "$dest" ] && [ -d "$dest" ]; then
		if grep -q " $(readlink -f "$dest")/" /proc/self/mountinfo; then
			die "$name: something is still mounted under $dest; not removing it"
		fi
		rm -rf "$dest"
		# The directory internal/testhost made for DEST, now empty: by
		# any way the host goes (stop, reap, a boot that failed or whose
		# caller was killed).
		case $(basename "$(dirname "$dest")") in
		cairn-testhost-*) rmdir "$(dirname "$dest")" 2>/dev/null || true ;;
		esac
	fi
	rm -rf "${state:?}/$name"
}

boot() {
	local -a nspawn_args=()
	local timeout=90 owner=""
	while [ $# -gt 0 ]; do
		case $1 in
		--private-network) nspawn_args+=(--private-network) ;;
		--bind | --bind-ro)
			[ $# -ge 2 ] || usage
			nspawn_args+=("$1=$2")
			shift
			;;
		--owner)
			[ $# -ge 2 ] || usage
			owner="$2 $(start_time "$2")"
			shift
			;;
		--timeout)
			[ $# -ge 2 ] || usage
			timeout=$2
			shift
			;;
		-*) usage ;;
		*) break ;;
		esac
		shift
	done
	[ $# -eq 2 ] || usage
	local name=$1 dest=$2
	[[ $name =~ ^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$ ]] || die "$name: not a valid machine name (letters, digits and -, at most 63)"
	command -v systemd-nspawn >/dev/null || die "needs systemd-nspawn (apt-get install systemd-container)"
	if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
		die "$dest is not empty"
	fi
	local dir=$state/$name id
	mkdir -p "$state"
	# mkdir claims the name, at most one caller succeeds.
	mkdir "$dir" 2>/dev/null || die "a host $name is already booted ($dir); stop it first"
	mkdir -p "$dest"
	dest=$(readlink -f "$dest")
	local -a cgroups=()
	local nspawn="" leader=""
	save() {
		printf 'nspawn=%s\nleader=%s\ndest=%q\ncgroups=(' "$nspawn" "$leader" "$dest"
		printf ' %q' "${cgroups[@]}"
		printf ' )\nowner=%q\n' "$owner"
	}
	# From here on, stop (or reap) can undo what boot did.
	save >"$dir/state"
	lock
	cp -a --reflink=auto "$built/." "$dest/"
	exec 9>&-

	id=$(printf %s "$name" | md5sum | cut -c1-32)
	echo "$name" >"$dest/etc/hostname"
	echo "$id" >"$dest/etc/machine-id"
	local log=$dir/console.log
	mapfile -t cgroups < <(cgroup_dirs "$name")
	# nspawn --keep-unit puts the host in the cgroup it runs in (its
	# payload subgroup): each host gets one of its own, else two hosts'
	# systemds would share their units' cgroups.
	# setsid: the host outlives the caller's session and its terminal's
	# signals; stop ends it.
	(
		for cg in "${cgroups[@]}"; do
			mkdir -p "$cg"
			echo "$BASHPID" >"$cg/cgroup.procs"
		done
		exec setsid systemd-nspawn -q -D "$dest" -b -M "$name" --uuid="$id" --register=no --keep-unit \
			--console=read-only "${nspawn_args[@]}"
	) </dev/null >"$log" 2>&1 &
	nspawn=$!
	disown
	save >"$dir/state"

	local deadline=$((SECONDS + timeout)) failed=""
	# The leader is nspawn's child, once it runs systemd.
	while [ -z "$leader" ]; do
		alive "$nspawn" || {
			failed="systemd-nspawn exited"
			break
		}
		((SECONDS < deadline)) || {
			failed="no systemd after ${timeout}s"
			break
		}
		leader=$(find_leader "$nspawn")
		[ -n "$leader" ] || sleep 0.05
	done
	if [ -n "$leader" ]; then
		save >"$dir/state"
		local s=""
		while :; do
			s=$(timeout 10 nsenter -t "$leader" -a -- systemctl is-system-running --wait 2>/dev/null) || true
			case $s in running | degraded) break ;; esac
			alive "$nspawn" || {
				failed="systemd-nspawn exited (systemd said: ${s:-nothing})"
				break
			}
			((SECONDS < deadline)) || {
				failed="not running after ${timeout}s (systemd says: ${s:-nothing})"
				break
			}
			sleep 0.1
		done
	fi
	if [ -n "$failed" ]; then
		{
			echo "testhost.sh: $name did not boot: $failed"
			if [ -n "$leader" ] && alive "$leader"; then
				echo "--- failed units:"
				nsenter -t "$leader" -a -- systemctl --failed --no-legend --no-pager 2>&1 || true
				echo "--- journal:"
				nsenter -t "$leader" -a -- journalctl -b --no-pager -n 100 2>&1 || true
			fi
			echo "--- console:"
			tail -n 100 "$log"
		} >&2
		halt "$name" || true
		exit 1
	fi
	echo "$leader"
}

case "${1:-}" in
--build)
	lock
	echo "$built"
	;;
boot)
	shift
	boot "$@"
	;;
run)
	[ $# -ge 3 ] || usage
	load "$2"
	alive "$leader" || die "$2 is not running"
	shift 2
	inside "$@"
	;;
reap)
	[ $# -eq 1 ] || usage
	reap
	;;
stop)
	[ $# -eq 2 ] || usage
	load "$2"
	halt "$2"
	;;
*)
	usage
	;;
esac
