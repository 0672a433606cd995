#!/bin/sh
# A cairn plugin: prints the journal steps of this host's backup spool, a
# directory named after the host, from which backups are shipped to the
# backup server (which files them by host name).
#
# cairn runs it at compile time with CAIRN_HOST, CAIRN_GROUP, CAIRN_BLOBS and
# CAIRN_FACT_* set, plus the block's env (SPOOL), and splices what it prints
# into the journal. It must print the same steps for the same inputs, and it
# uses only the shell's builtins, so it needs no PATH.
set -eu

host=${CAIRN_HOST:?CAIRN_HOST is not set}
spool=${SPOOL:-/var/backups/spool}

case $host in
'' | . | .. | */* | *[!A-Za-z0-9._-]*)
	printf 'backup-spool: %s is not a usable host name\n' "$host" >&2
	exit 1
	;;
esac

printf 'MKDIR %s group=backup mode=0750 owner=backup\n' "$spool"
printf 'MKDIR %s/%s group=backup mode=0750 owner=backup\n' "$spool" "$host"
