#!/usr/bin/env bash
# debroot.sh: a minimal Debian 12 (bookworm) system to run apt and dpkg in,
# for the tests that need a real Debian root (and for test hosts, e.g. under
# systemd-nspawn).
#
#   scripts/debroot.sh DEST    make DEST (missing or empty) a fresh copy
#   scripts/debroot.sh --build build the cached root if need be, print its path
#
# The root is built once per machine with debootstrap (variant minbase: apt
# and dpkg, nothing more), with apt's package lists fetched (apt-get update)
# and the .debs of the packages the tests install (PACKAGES below) already
# in its apt cache, so that installing them needs no network. Its lists are
# then cut down to the packages installed and those whose .debs it holds:
# apt resolves them as before, and every apt-get there takes a tenth of a
# second instead of one or two (it no longer reads the whole archive). It is cached
# in $CAIRN_TEST_CACHE (default /var/cache/cairn-test) as
# bookworm-HASH, HASH being that of this script: editing the script builds a
# new one (roots unused for a week are removed then). Every DEST is a copy
# (cp -a, a reflink where the file system can), so what one test does to
# its root never reaches another. Builds and copies hold a lock on the
# cache, so that concurrent callers wait for one build.
#
# The mirror is the one this host's apt uses for bookworm (from
# /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list), or
# $CAIRN_DEBIAN_MIRROR, else http://deb.debian.org/debian. Needs root and
# debootstrap; exits 1 with the reason otherwise.
set -euo pipefail

# The packages whose .debs the root holds, with their dependencies: the
# APT-INSTALL tests' (steps/aptinstall_test.go): jq (brings libjq1 and
# libonig5), bfs (shares libonig5 with jq) and nginx-light (brings about
# twenty).
PACKAGES="jq bfs nginx-light"

die() {
	echo "debroot.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and device nodes)"
command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"

self=$(readlink -f "$0")
hash=$(sha256sum "$self" | cut -c1-12)
cache=${CAIRN_TEST_CACHE:-/var/cache/cairn-test}
built=$cache/bookworm-$hash

# mirror prints the Debian mirror this host's apt uses for bookworm.
mirror() {
	if [ -n "${CAIRN_DEBIAN_MIRROR:-}" ]; then
		echo "$CAIRN_DEBIAN_MIRROR"
		return
	fi
	local m=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822 stanzas: the first URI of a stanza whose suites hold bookworm
		# and that is not the security archive.
		m=$(awk '
			/^[ \t]*$/ { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && uri !~ /security/) { print uri; exit } uri = ""; suites = ""; next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { suites = ""; for (i = 2; i <= NF; i++) suites = suites " " $i; suites = suites " " }
			END { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && uri !~ /security/) print uri }
		' "$f" | head -n1)
		[ -n "$m" ] && break
	done
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 ~ / bookworm / && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

# build makes the cached root, once: into a scratch directory renamed into
# place when complete. The caller holds the cache's lock.
build() {
	if [ -d "$built" ]; then
		touch "$built"
		return
	fi
	local tmp=$cache/.build-$hash
	rm -rf "$tmp"
	local url
	url=$(mirror)
	echo "debroot.sh: building a Debian 12 root from $url into $built (once per machine)" >&2
	debootstrap --variant=minbase bookworm "$tmp" "$url" >"$cache/.build.log" 2>&1 ||
		die "debootstrap failed; its log is $cache/.build.log: $(tail -n 5 "$cache/.build.log")"
	# No translations: smaller lists, nothing the tests read.
	echo 'Acquire::Languages "none";' >"$tmp/etc/apt/apt.conf.d/99cairn-test"
	echo "deb $url bookworm main" >"$tmp/etc/apt/sources.list"
	chroot "$tmp" apt-get update -q >>"$cache/.build.log" 2>&1 ||
		die "apt-get update in the root failed; see $cache/.build.log"
	# shellcheck disable=SC2086 # PACKAGES is a list
	chroot "$tmp" apt-get install -q -y --download-only $PACKAGES >>"$cache/.build.log" 2>&1 ||
		die "downloading $PACKAGES into the root failed; see $cache/.build.log"
	local keep=$cache/.build-keep
	{
		chroot "$tmp" dpkg-query -W -f '${Package}\n'
		for deb in "$tmp"/var/cache/apt/archives/*.deb; do
			basename "$deb" | cut -d_ -f1
		done
	} | sort -u >"$keep"
	for list in "$tmp"/var/lib/apt/lists/*_Packages; do
		# Paragraph mode: one stanza a record; RS is set after the names
		# are read, one a line.
		awk -v keep="$keep" '
			BEGIN { while ((getline name < keep) > 0) want[name] = 1; RS = ""; ORS = "\n\n" }
			{
				n = split($0, line, "\n"); pkg = ""
				for (i = 1; i <= n; i++) if (line[i] ~ /^Package: /) { pkg = substr(line[i], 10); break }
				if (pkg in want) print
			}
		' "$list" >"$list.cut"
		mv "$list.cut" "$list"
	done
	rm -f "$keep" "$tmp"/var/cache/apt/*.bin
	chroot "$tmp" apt-cache gencaches >>"$cache/.build.log" 2>&1 ||
		die "apt-cache gencaches in the root failed; see $cache/.build.log"
	chroot "$tmp" apt-get -s install $PACKAGES >>"$cache/.build.log" 2>&1 ||
		die "the cut lists do not resolve $PACKAGES; see $cache/.build.log"
	mv "$tmp" "$built"
	# Roots of other versions of this script that no one used for a week.
	find "$cache" -mindepth 1 -maxdepth 1 -name 'bookworm-*' ! -path "$built" -mtime +7 -exec rm -rf {} +
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

case "${1:-}" in
--build)
	build
	echo "$built"
	;;
"" | -*)
	echo "usage: scripts/debroot.sh DEST | --build" >&2
	exit 2
	;;
*)
	dest=$1
	if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
		die "$dest is not empty"
	fi
	build
	mkdir -p "$dest"
	cp -a --reflink=auto "$built/." "$dest/"
	;;
esac
