#!/bin/sh
# reboot-required-metric FILE: write node_reboot_required to FILE for the node
# exporter's textfile collector: 1 while /run/reboot-required exists (a
# package upgrade asked for a reboot), else 0. The file is replaced
# atomically, so the exporter never reads half of it.
set -eu

out=${1:?usage: reboot-required-metric FILE}
value=0
if [ -e /run/reboot-required ]; then
	value=1
fi

tmp="$out.$$"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<METRIC
# HELP node_reboot_required Whether a package upgrade asked for a reboot (/run/reboot-required exists).
# TYPE node_reboot_required gauge
node_reboot_required $value
METRIC
chmod 0644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
