#!/usr/bin/env bash
# demo-journal.sh: the journal applier driven by hand (`cairn journal`), on
# the bundled example (examples/journal), under a scratch root in /tmp:
# apply v1, show it, see drift and repair it, diff v1 and v2, apply v2, roll
# back to v1 and then to the empty journal, and check
# that the scratch root ends exactly as it started (paths, types, modes,
# owners, link targets and contents). Exits non-zero if any step or that
# last check fails.
#
# The journals set owners (root by default), so the demo runs as root; as
# another user it runs itself in a user namespace where that user is root
# (unshare --map-root-user), which Debian 12 allows by default.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	if [ -z "${CAIRN_DEMO_USERNS:-}" ] && unshare --map-root-user true 2>/dev/null; then
		CAIRN_DEMO_USERNS=1 exec unshare --map-root-user "$0" "$@"
	fi
	echo "demo-journal.sh: run it as root (cairn sets the owner of what it writes), or where 'unshare --map-root-user' works" >&2
	exit 1
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
ex=examples/journal

if [ -t 1 ]; then
	heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	heading() { printf '\n== %s\n' "$*"; }
fi
run() {
	printf '$ %s\n' "$*"
	"$@"
}

heading "Build cairn"
run "${GO:-go}" build -o bin/cairn ./cmd/cairn
cairn=$repo/bin/cairn

scratch=$(mktemp -d /tmp/cairn-demo.XXXXXX)
root=$scratch/root
state=$scratch/state
trap 'status=$?; if [ $status -eq 0 ]; then rm -rf "$scratch"; else echo "demo failed; the scratch root is kept in $scratch" >&2; fi' EXIT

# A small Debian-like tree for the host: a login message and nginx's default
# site, which v2 disables and the rollback must bring back.
mkdir -p "$root/etc/nginx/sites-enabled" "$root/var/www/html"
printf 'Debian GNU/Linux 12\n' >"$root/etc/motd"
printf 'server {\n    listen 80 default_server;\n    root /var/www/html;\n}\n' >"$root/etc/nginx/sites-enabled/default"
printf '<h1>Welcome to nginx!</h1>\n' >"$root/var/www/html/index.nginx-debian.html"

# snapshot lists every object beneath the root, one a line: path, type,
# mode, owner, link target, and the sha256 of a file's content.
snapshot() {
	(
		cd "$root"
		find . -printf '%p %y %m %U:%G %l' -exec sh -c 'if [ -f "$1" ] && [ ! -L "$1" ]; then sha256sum <"$1" | cut -c1-64; else echo; fi' sh {} \; | LC_ALL=C sort
	)
}
snapshot >"$scratch/before"
flags=(--root "$root" --state "$state")

heading "0. Compile configuration to journals (examples/fleet, for two hosts of two groups)"
facts=(--fact release=12 --fact codename=bookworm --fact arch=amd64)
run "$cairn" fmt --check examples/fleet
for host in web-01 web-02; do
	printf '$ %s >%s\n' "$cairn compile --host $host ${facts[*]} --blobs $scratch/blobs examples/fleet" "$scratch/$host.journal"
	"$cairn" compile --host $host "${facts[@]}" --blobs "$scratch/blobs" examples/fleet >"$scratch/$host.journal"
done
head -n 5 "$scratch/web-01.journal"
echo "..."
run "$cairn" journal check "$scratch/web-01.journal" "$scratch/web-02.journal"
echo "web-01 (canary) gets $(wc -l <"$scratch/web-01.journal") steps, web-02 (web) $(wc -l <"$scratch/web-02.journal"); what the canary does differently:"
rc=0
run "$cairn" journal diff --plan "$scratch/web-02.journal" "$scratch/web-01.journal" || rc=$?
if [ $rc -ne 1 ]; then
	echo "demo-journal.sh: expected the two hosts' journals to differ" >&2
	exit 1
fi
run "$cairn" explain --host web-01 "${facts[@]}" /etc/nginx/nginx.conf examples/fleet
echo "(These journals install packages and start units: applying them needs a Debian system under"
echo " --root, or the host itself; the steps below apply the file-only journals of examples/journal.)"

heading "1. Check the journals (parse and static checks; no host needed)"
run "$cairn" journal check $ex/v1.journal $ex/v2.journal $ex/empty.journal
echo "ok"

heading "2. Apply v1 to the scratch root"
run "$cairn" journal apply "${flags[@]}" $ex/v1.journal

heading "3. Show the applied journal (INCLUDEs expanded, source positions as comments)"
run "$cairn" journal show "${flags[@]}"

heading "4. Drift: someone edits a managed file by hand"
run "$cairn" journal drift "${flags[@]}"
echo "no drift"
echo "\$ echo 'net.core.somaxconn = 4096' >$root/etc/sysctl.d/60-web.conf"
echo 'net.core.somaxconn = 4096' >"$root/etc/sysctl.d/60-web.conf"
rc=0
run "$cairn" journal drift "${flags[@]}" || rc=$?
if [ $rc -ne 1 ]; then
	echo "journal drift exited $rc, want 1 (drift found)" >&2
	exit 1
fi
run "$cairn" journal apply --repair "${flags[@]}" $ex/v1.journal
run "$cairn" journal drift "${flags[@]}"
echo "no drift"

heading "5. What moving to v2 changes"
rc=0
run "$cairn" journal diff $ex/v1.journal $ex/v2.journal || rc=$?
if [ $rc -ne 1 ]; then
	echo "journal diff exited $rc, want 1 (the journals differ)" >&2
	exit 1
fi

heading "6. Apply v2"
run "$cairn" journal apply "${flags[@]}" $ex/v2.journal
run ls "$root/etc/nginx/sites-enabled" "$root/srv/www"
run "$cairn" journal drift "${flags[@]}"
echo "no drift"

heading "7. Roll back: apply v1 again"
run "$cairn" journal apply "${flags[@]}" $ex/v1.journal
run ls "$root/etc/nginx/sites-enabled" "$root/srv/www"
run "$cairn" journal drift "${flags[@]}"
echo "no drift"

heading "8. Roll back everything: apply the empty journal"
echo "(An empty journal would remove every managed object, as a failed 'cairn compile > FILE'"
echo " would: refused with exit 2 unless --allow-removal says it is meant.)"
if "$cairn" journal apply "${flags[@]}" $ex/empty.journal 2>"$scratch/refused"; then
	echo "FAIL: the empty journal was applied without --allow-removal" >&2
	exit 1
fi
cat "$scratch/refused"
run "$cairn" journal apply --allow-removal "${flags[@]}" $ex/empty.journal
run cat "$root/etc/motd"

heading "9. The scratch root is exactly as it started"
snapshot >"$scratch/after"
if ! diff -u "$scratch/before" "$scratch/after"; then
	echo "FAIL: the scratch root differs from how it started" >&2
	exit 1
fi
echo "ok: all $(wc -l <"$scratch/before") objects as before (path, type, mode, owner, link target, content)"
